"""``check --verify``: build the module on the meta device, compare torch's shapes to the Plan."""

from __future__ import annotations

import torch

from archspec.compile.network import build
from archspec.errors import Problem, SpecError
from archspec.shapes.plan import Plan


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


def verify(plan: Plan, device: str = "meta") -> None:
    """Raise :class:`SpecError` naming every layer whose real shape or parameter count differs.

    On the meta device nothing is allocated, so even very large networks verify instantly.
    """
    network = build(plan, device=device)
    shapes = network.trace(*example_inputs(plan, 2, device))
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
