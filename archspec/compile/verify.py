"""``check --verify``: build the module in torch, run it, compare torch's shapes to the Plan."""

from __future__ import annotations

import math

import torch

from archspec.compile.network import build
from archspec.errors import Problem, SpecError
from archspec.shapes.plan import Plan

# Below this (parameters + every layer's output at batch 2, float32) the network is built and
# run for real on the CPU; above it, on the meta device. The meta device allocates nothing,
# but its first operation makes torch import torch._dynamo (its Python meta kernels are
# wrapped in `torch._compile._disable_dynamo`), ~2.4 s of a --verify that otherwise takes
# about as long: issue #13's 5 s bar. 256 MiB keeps the command under its 1 GB bound.
CPU_BYTES = 256 * 2**20
BATCH = 2


def example_inputs(
    plan: Plan,
    batch: int,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """A batch for each input, in `inputs:` order: normal values for a float input, random
    ids in [0, vocab) for token ids (on the meta device: no values, just shapes and dtypes)."""
    out = []
    for inp in plan.all_inputs:
        size = (batch, *inp.shape)
        if torch.device(device).type == "meta":
            dtype = torch.long if inp.vocab is not None else torch.float32
            out.append(torch.empty(size, dtype=dtype, device=device))
        elif inp.vocab is not None:
            out.append(torch.randint(0, inp.vocab, size, generator=generator).to(device))
        else:
            out.append(torch.randn(size, generator=generator).to(device))
    return tuple(out)


def verify_device(plan: Plan) -> str:
    """``"cpu"`` when running ``plan`` for real costs at most ``CPU_BYTES``, else ``"meta"``."""
    params = sum(node.num_params for node in plan.nodes)
    outputs = sum(math.prod(shape) for node in plan.nodes for shape in node.shapes)
    return "cpu" if 4 * (params + BATCH * outputs) <= CPU_BYTES else "meta"


def verify(plan: Plan, device: str | None = None) -> None:
    """Raise :class:`SpecError` naming every layer whose real shape or parameter count differs.

    ``device`` defaults to :func:`verify_device`: small networks run on the CPU (random
    inputs, no gradients), large ones on the meta device, where nothing is allocated.
    """
    device = device or verify_device(plan)
    network = build(plan, device="meta") if device == "meta" else build(plan)
    with torch.no_grad():
        shapes = network.trace(*example_inputs(plan, BATCH, device))
    counts = network.num_params()
    problems = []
    for node in plan.nodes:
        if shapes[node.name] != node.shapes or counts[node.name] != node.num_params:
            real = " · ".join(str(list(s)) for s in shapes[node.name])
            planned = " · ".join(str(list(s)) for s in node.shapes)
            problems.append(
                Problem(
                    f"torch disagrees with the inferred plan for '{node.name}': shape "
                    f"{real} vs {planned}, parameters "
                    f"{counts[node.name]:,} vs {node.num_params:,}",
                    "this is an archspec bug: please report it with the spec",
                    node.location,
                )
            )
    if problems:
        raise SpecError(problems)
