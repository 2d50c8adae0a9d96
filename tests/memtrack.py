"""Measure memory the way torch really uses it: live tensor storage bytes, op by op.

``LiveBytes`` is a ``TorchDispatchMode`` that sees every op torch runs (forward, the
autograd engine's backward ops, the optimizer's step), registers each output's storage
once (views and in-place results share one), and subtracts its bytes when torch frees it
(a weakref finalizer on the storage). ``peak`` is the most bytes live at once. Tensors
created before the mode (parameters, the input batch, optimizer state) are added with
``track``. Intra-op scratch (oneDNN's workspaces) is not a tensor and is not counted, as
it is not on CUDA's ``max_memory_allocated`` either when cuDNN reuses its workspace.

Used by tests/test_memory_model.py (per-kind rules at tiny sizes) and bench/memory.py
(whole shipped networks against ``archspec.shapes.memory``'s estimate).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}  # id(storage object) -> bytes counted
        self._refs: dict[int, weakref.ref[Any]] = {}

    def track(self, *tensors: Any) -> None:
        """Count tensors that exist already (parameters, inputs, optimizer state)."""
        for t in tree_leaves(tensors):
            if isinstance(t, torch.Tensor):
                self._add(t)

    def _add(self, t: torch.Tensor) -> None:
        if t.device.type == "meta":
            return
        st = t.untyped_storage()
        key, size = id(st), st.nbytes()
        ref = self._refs.get(key)
        if ref is not None and ref() is st:
            old = self._sizes[key]
            if old != size:  # resized in place
                self.live += size - old
                self._sizes[key] = size
        else:
            self._sizes[key] = size
            self._refs[key] = weakref.ref(st, lambda _r, k=key: self._free(k))
            self.live += size
        self.peak = max(self.peak, self.live)

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)
        self._refs.pop(key, None)

    def reset_peak(self) -> None:
        self.peak = self.live

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._add(t)
        return out


def saved_bytes(fn: Any, *inputs: torch.Tensor, exclude: tuple[torch.Tensor, ...] = ()) -> int:
    """Bytes of the distinct storages autograd saves for backward while running
    ``fn(*inputs)``, not counting ``exclude`` (parameters, which are counted apart)."""
    seen: dict[int, int] = {}
    skip = {id(t.untyped_storage()) for t in exclude}
    keep: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if id(st) not in skip:
            seen[id(st)] = st.nbytes()
        keep.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    del out
    keep.clear()
    return sum(seen.values())


@contextmanager
def tracking(*existing: Any) -> Iterator[LiveBytes]:
    mode = LiveBytes()
    mode.track(*existing)
    with mode:
        yield mode


def _inputs(plan: Any, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    out = []
    for inp in plan.all_inputs:
        if inp.vocab is None:
            out.append(torch.randn(batch, *inp.shape, generator=generator))
        else:
            out.append(torch.randint(0, inp.vocab, (batch, *inp.shape), generator=generator))
    return out


def measure(spec: Any, batch: int, *, inference: bool = True) -> dict[str, int]:
    """The real peaks of ``spec`` at ``batch`` on the CPU, in bytes: one steady-state
    training step as ``archspec train`` runs it (zero_grad → forward → cross entropy →
    backward → optimizer step; the optimizer's state exists from a first step) and one
    inference forward (eval mode, no_grad). Parameters, buffers, optimizer state and the
    batch count: they are live."""
    from archspec.train.loop import make_optimizer

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    plan = spec.plan()
    net = spec.build()
    net.logits_only = True
    net.train()
    config = spec.train
    if config is not None:
        opt = make_optimizer(config, net.parameters())
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xs = _inputs(plan, batch, gen)
    shape = plan.output_shape
    y = torch.randint(0, shape[0], (batch, *shape[1:]), generator=gen)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")

    def loss_of(out: Any) -> torch.Tensor:
        if isinstance(out, tuple):  # several outputs: each one's sum
            return sum((o.float().sum() for o in out), torch.zeros(()))
        return loss_fn(out.float(), y) * (1.0 / batch)

    def step() -> None:
        out = net(*xs)
        loss = loss_of(out)
        loss.backward()
        del out, loss
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # creates the optimizer state, as any step but the first finds it
    state = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    existing = [*net.parameters(), *net.buffers(), *state, *xs, y]
    result: dict[str, int] = {}
    with tracking(existing) as mode:
        result["base"] = mode.live
        out = net(*xs)
        loss = loss_of(out)
        result["forward"] = mode.peak
        result["saved"] = mode.live - result["base"]
        mode.reset_peak()
        loss.backward()
        del out, loss
        result["backward"] = mode.peak
        mode.reset_peak()
        opt.step()
        result["step"] = mode.peak
        opt.zero_grad(set_to_none=True)
    result["train"] = max(result["forward"], result["backward"], result["step"])
    if inference:
        net.eval()
        with torch.no_grad(), tracking([*net.parameters(), *net.buffers(), *xs]) as mode:
            out = net(*xs)
            del out
        result["inference"] = mode.peak
    return result


def saved_per_layer(spec: Any, batch: int) -> dict[str, int]:
    """Bytes each layer's forward newly hands autograd to keep for backward (storages no
    earlier layer saved; not parameters, buffers or the network's inputs), layer by layer
    in a training-mode run of the built network, as archspec runs it."""
    from archspec.compile.network import _pick

    torch.manual_seed(0)
    plan = spec.plan()
    net = spec.build()
    net.train()
    net.logits_only = True
    fixed = {id(t.untyped_storage()) for t in [*net.parameters(), *net.buffers()]}
    xs = _inputs(plan, batch, torch.Generator().manual_seed(0))
    fixed |= {id(x.untyped_storage()) for x in xs}
    values: list[Any] = list(xs)
    seen: set[int] = set()
    keep: list[torch.Tensor] = []
    out: dict[str, int] = {}
    for node, (module, inputs), picks in zip(plan.nodes, net._steps, net._picks, strict=True):
        args = [_pick(values[j], k) for j, k in zip(inputs, picks, strict=True)]
        new: dict[int, int] = {}

        def pack(t: torch.Tensor, new: dict[int, int] = new) -> torch.Tensor:
            st = t.untyped_storage()
            if id(st) not in fixed and id(st) not in seen:
                new[id(st)] = st.nbytes()
            keep.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            values.append(module(*args))
        seen.update(new)
        out[node.name] = sum(new.values())
    return out
