"""The torch side of tests/test_symbolic.py: build a spec's module once at its nominal
sizes, run it on the meta device at other sizes, and record each layer's output shape."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from archspec import api
from archspec.compile import build
from archspec.shapes.plan import Plan
from archspec.shapes.symbolic import Symbol


def default_symbols(plan: Plan, maximum: int = 65536) -> list[Symbol]:
    """A symbol for each size axis of each input: the spatial axes of a grid, the tokens
    of a sequence or of token ids (channels and features stay fixed)."""
    out: list[Symbol] = []
    for k, inp in enumerate(plan.all_inputs):
        if inp.vocab is not None:
            axes = [0]
        elif inp.layout == "grid" and len(inp.shape) > 1:
            axes = list(range(1, len(inp.shape)))
        elif inp.layout == "sequence":
            axes = [0]
        else:
            axes = []
        for a in axes:
            name = f"{'HWD'[a - 1] if inp.layout == 'grid' and inp.vocab is None else 'T'}{k or ''}"
            out.append(Symbol(name, inp.name, a, inp.shape[a], 1, maximum))
    return out


class Oracle:
    """One module per spec, built at the nominal sizes on the meta device."""

    def __init__(self, path: Path) -> None:
        self.plan = api.load(path).plan()
        # torch runs an LSTM/GRU on the meta device one step at a time in Python (a minute
        # for 1,000 steps): those small networks run for real on the CPU instead
        recurrent = any(node.kind in ("lstm", "gru") for node in self.plan.nodes)
        self.device = "cpu" if recurrent else "meta"
        self.net = build(self.plan, device=self.device).eval()
        self.shapes: dict[str, tuple[int, ...]] = {}
        names = {node.name for node in self.plan.nodes if not node.outputs}
        for name, module in self.net.named_modules():
            if name in names:
                module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):  # type: ignore[no-untyped-def]
        def hook(module: object, args: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                self.shapes[name] = tuple(output.shape[1:])

        return hook

    def run(self, symbols: list[Symbol], values: Mapping[str, int]) -> bool:
        """Whether the module runs with ``values`` for the symbols."""
        args = []
        for inp in self.plan.all_inputs:
            shape = list(inp.shape)
            for s in symbols:
                if s.input == inp.name:
                    shape[s.axis] = values.get(s.name, s.nominal)
            dtype = torch.long if inp.vocab is not None else torch.float32
            args.append(torch.zeros((1, *shape), dtype=dtype, device=self.device))
        self.shapes = {}
        try:
            with torch.no_grad():
                self.net(*args)
        except (RuntimeError, ValueError, IndexError, TypeError):
            return False
        return True
