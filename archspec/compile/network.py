"""The compiled network: the Plan's nodes as submodules, run in the Plan's order."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archspec.compile.builders import build_node
from archspec.shapes import kinds
from archspec.shapes.plan import Plan


class Network(nn.Module):
    """An ``nn.Module`` compiled from a :class:`~archspec.shapes.plan.Plan`.

    A chain (every layer reads the one before) runs as a plain loop, exactly like
    ``nn.Sequential``; a graph keeps each value only until its last reader.
    """

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self.logits_only = False  # when True, skip a final softmax/log_softmax (for training)
        self._steps: list[tuple[nn.Module, tuple[int, ...]]] = []
        # per step, which output each input reads: -1 for a producer with one output, else
        # the index into the tuple a layer with several outputs (split, chunk) returns
        self._picks: list[tuple[int, ...]] = []
        slot = {"input": 0}
        several = {"input": False}
        for i, node in enumerate(plan.nodes, start=1):
            module = build_node(node)
            _attach(self, node.name, module)
            self._steps.append((module, tuple(slot[x] for x in node.inputs)))
            self._picks.append(
                tuple(node.port(k) if several[x] else -1 for k, x in enumerate(node.inputs))
            )
            slot[node.name] = i
            several[node.name] = bool(node.outputs)
        self._out_pick = plan.output_port if several[plan.output] else -1
        self._chain = plan.is_chain
        self._last_use = _last_uses(self._steps)

    @property
    def output_activation(self) -> str | None:
        """``softmax``/``log_softmax`` when the network ends in one, else ``None``."""
        last = self.plan.nodes[-1].kind
        return last if kinds.get(last).output_activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self._steps
        if self.logits_only and self.output_activation is not None:
            steps = steps[:-1]
        if self._chain:
            for module, _ in steps:
                x = module(x)
            return x
        return self._run_graph(x, steps)

    def _run_graph(
        self, x: torch.Tensor, steps: list[tuple[nn.Module, tuple[int, ...]]]
    ) -> torch.Tensor:
        values: list[Any] = [x] + [None] * len(steps)  # a tensor, or a tuple of them
        for i, (module, inputs) in enumerate(steps, start=1):
            picks = self._picks[i - 1]
            values[i] = module(*[_pick(values[j], k) for j, k in zip(inputs, picks, strict=True)])
            for j in inputs:
                if self._last_use[j] == i:
                    values[j] = None
        out = _pick(values[len(steps)], self._out_pick if len(steps) == len(self._steps) else -1)
        assert isinstance(out, torch.Tensor)
        return out

    def trace(self, x: torch.Tensor) -> dict[str, tuple[tuple[int, ...], ...]]:
        """Run ``x`` through every layer and return each layer's output shapes (no batch
        axis; one per output, so most layers have one).

        On the meta device an op costs about a millisecond of Python (issue #13: a
        100,000-layer chain took minutes to verify), so a layer identical to one already
        run (same class, settings and parameter shapes) on inputs of the same shapes
        reuses that run's output shape.
        """
        meta = x.device.type == "meta"
        seen: dict[tuple[object, ...], Any] = {}
        values: list[Any] = [x]  # a tensor, or a tuple of them
        shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        steps = zip(self.plan.nodes, self._steps, self._picks, strict=True)
        for node, (module, inputs), picks in steps:
            args = [_pick(values[j], k) for j, k in zip(inputs, picks, strict=True)]
            key = _signature(module, args) if meta else None
            out = seen.get(key) if key is not None else None
            if out is None:
                out = module(*args)
                if key is not None:
                    seen[key] = out
            values.append(out)
            outs = out if isinstance(out, tuple) else (out,)
            shapes[node.name] = tuple(tuple(o.shape[1:]) for o in outs)
        return shapes

    def num_params(self) -> dict[str, int]:
        """Parameter count per layer, as torch counts it."""
        out = {}
        for node in self.plan.nodes:
            module = self.get_submodule(node.name)
            out[node.name] = sum(p.numel() for p in module.parameters())
        return out


def _pick(value: Any, index: int) -> Any:
    """``value`` itself (``index`` -1), or output ``index`` of a layer with several."""
    return value if index < 0 else value[index]


def _attach(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Add ``module`` at ``a.b.c``, creating plain containers for ``a`` and ``a.b``."""
    *parents, leaf = dotted.split(".")
    parent = root
    for name in parents:
        if name not in parent._modules:
            parent.add_module(name, nn.Module())
        child = parent._modules[name]
        assert child is not None
        parent = child
    parent.add_module(leaf, module)


def _signature(module: nn.Module, args: list[torch.Tensor]) -> tuple[object, ...]:
    """What a meta-device output shape depends on: the module's class, its settings and
    parameter shapes, and the input shapes (training flag included)."""
    params = tuple((name, tuple(p.shape)) for name, p in module.named_parameters())
    buffers = tuple((name, tuple(b.shape)) for name, b in module.named_buffers())
    inputs = tuple((tuple(a.shape), a.dtype) for a in args)
    return (type(module), module.extra_repr(), module.training, params, buffers, inputs)


def _last_uses(steps: list[tuple[nn.Module, tuple[int, ...]]]) -> dict[int, int]:
    last: dict[int, int] = {}
    for i, (_, inputs) in enumerate(steps, start=1):
        for j in inputs:
            last[j] = i
    last[len(steps)] = len(steps) + 1  # the output is never freed
    return last


def build(plan: Plan, *, device: Any = None, dtype: torch.dtype | None = None) -> Network:
    """Compile ``plan`` into a :class:`Network` on ``device`` (``"meta"`` allocates nothing)."""
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            network = Network(plan)
    else:
        network = Network(plan)
    if device is not None or dtype is not None:
        network = network.to(device=device, dtype=dtype)
    return network
