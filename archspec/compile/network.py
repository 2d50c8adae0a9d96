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
        # the network inputs, in `inputs:` order: values[0..n-1] of a run
        self.input_names = tuple(i.name for i in plan.all_inputs)
        self._n = n = len(self.input_names)
        slot = {name: k for k, name in enumerate(self.input_names)}
        several = dict.fromkeys(self.input_names, False)
        for i, node in enumerate(plan.nodes, start=n):
            module = build_node(node)
            _attach(self, node.name, module)
            self._steps.append((module, tuple(slot[x] for x in node.inputs)))
            self._picks.append(
                tuple(node.port(k) if several[x] else -1 for k, x in enumerate(node.inputs))
            )
            slot[node.name] = i
            several[node.name] = bool(node.outputs)
        self._out_pick = plan.output_port if several[plan.output] else -1
        # every output as (slot, pick), in `outputs:` order; a tuple is returned when several
        self._outs = tuple(
            (slot[name], port if several[name] else -1) for name, port in plan.all_outputs
        )
        self._chain = plan.is_chain
        self._last_use = _last_uses(self._steps, n, [j for j, _ in self._outs])

    @property
    def output_activation(self) -> str | None:
        """``softmax``/``log_softmax`` when the network ends in one, else ``None``."""
        last = self.plan.nodes[-1].kind
        return last if kinds.get(last).output_activation else None

    def forward(
        self,
        input: torch.Tensor | None = None,  # `inputs:` refuses the name `input`
        *rest: torch.Tensor,
        **named: torch.Tensor,
    ) -> Any:
        """The network's output for its inputs, given in `inputs:` order or by name (a
        network with one input takes one tensor); one tensor, or a tuple in `outputs:`
        order for a network with several. The first parameter is called ``input``, a name
        `inputs:` refuses, so every input's name can be a keyword."""
        xs = (input, *rest) if input is not None else rest
        if named or len(xs) != self._n:
            xs = self._arguments(xs, named)
        steps = self._steps
        if self.logits_only and self.output_activation is not None and len(self._outs) == 1:
            steps = steps[:-1]
        if self._chain:
            (x,) = xs
            for module, _ in steps:
                x = module(x)
            return x
        return self._run_graph(xs, steps)

    def _arguments(
        self, xs: tuple[torch.Tensor, ...], named: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        """Positional and keyword inputs in `inputs:` order; a missing, unknown or
        doubly given one is a TypeError (as for any Python call)."""
        names = self.input_names
        if len(xs) > len(names):
            raise TypeError(f"the network takes {len(names)} inputs ({', '.join(names)}), "
                            f"but {len(xs)} were given")  # fmt: skip
        values = dict(zip(names, xs, strict=False))
        for key, value in named.items():
            if key not in names:
                raise TypeError(f"the network has no input '{key}'; its inputs: {', '.join(names)}")
            if key in values:
                raise TypeError(f"input '{key}' is given twice (by position and by name)")
            values[key] = value
        missing = [name for name in names if name not in values]
        if missing:
            raise TypeError(f"missing input{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        return tuple(values[name] for name in names)

    def _run_graph(
        self, xs: tuple[torch.Tensor, ...], steps: list[tuple[nn.Module, tuple[int, ...]]]
    ) -> Any:
        n = self._n
        values: list[Any] = [*xs] + [None] * len(steps)  # a tensor, or a tuple of them
        for i, (module, inputs) in enumerate(steps, start=n):
            picks = self._picks[i - n]
            values[i] = module(*[_pick(values[j], k) for j, k in zip(inputs, picks, strict=True)])
            for j in inputs:
                if self._last_use[j] == i:
                    values[j] = None
        if len(steps) < len(self._steps):  # logits_only: the final activation's input
            return values[n + len(steps) - 1]
        outs = tuple(_pick(values[j], k) for j, k in self._outs)
        return outs[0] if len(outs) == 1 else outs

    def trace(self, *xs: torch.Tensor) -> dict[str, tuple[tuple[int, ...], ...]]:
        """Run the inputs ``xs`` (in `inputs:` order) through every layer and return each
        layer's output shapes (no batch axis; one per output, so most layers have one).

        On the meta device an op costs about a millisecond of Python (issue #13: a
        100,000-layer chain took minutes to verify), so a layer identical to one already
        run (same class, settings and parameter shapes) on inputs of the same shapes
        reuses that run's output shape.
        """
        meta = xs[0].device.type == "meta"
        seen: dict[tuple[object, ...], Any] = {}
        values: list[Any] = list(xs)  # a tensor, or a tuple of them
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


def _last_uses(
    steps: list[tuple[nn.Module, tuple[int, ...]]], first: int, outputs: list[int]
) -> dict[int, int]:
    """The step after which each value is no longer read (``first``: the first step's slot,
    after the inputs); outputs are never freed."""
    last: dict[int, int] = {}
    for i, (_, inputs) in enumerate(steps, start=first):
        for j in inputs:
            last[j] = i
    for j in (*outputs, first + len(steps) - 1):
        last[j] = first + len(steps)
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
