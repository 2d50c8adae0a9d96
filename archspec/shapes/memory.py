"""The memory a network needs, layer by layer, for training and for inference.

Torch-free: ``archspec check`` refuses a spec that cannot train on this machine
(:func:`check_plan`), ``archspec check --memory`` prints the per-layer table
(:func:`profile`), and ``archspec train`` checks again with the real dataset size and
device before it builds the module (:func:`check`). All three use :func:`profile`.

The rules are measured, not guessed: ``tests/test_memory_model.py`` runs every rule's
layer under a tracking allocator (``tests/memtrack.py``) and ``bench/memory.py`` compares
the training and inference peaks of every shipped spec with torch 2.13's on the CPU.

What one training step holds, in float32 (4 bytes):

* parameters (and batch-norm buffers), always;
* optimizer state (:func:`optimizer_slots`): Adam/AdamW 2 tensors per parameter, SGD with
  momentum 1, without 0;
* the tensors autograd saves for backward (:func:`keeps`, one line per kind below), each
  storage once however many layers save it (a conv saving the ReLU output the ReLU saved
  too); views (flatten, reshape, slices, split …) share their input's storage;
* during backward: the gradients of the activations (one per storage, from its last reader's
  backward to its producer's), the parameter gradients accumulated so far, while saved
  tensors are freed layer by layer;
* at the optimizer step: parameters + gradients + state + the step's temporaries on the
  largest tensor (Adam: ``sqrt(v)`` and its quotient, 2×; with L2 weight decay 3×; SGD:
  1× with weight decay or Nesterov, else 0).

The training peak is the largest of the forward, each backward layer and the step; the
inference peak is parameters + the most activations live at once (each value kept until
its last reader, plus a layer's own temporaries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archspec.errors import Problem, ResourceError
from archspec.shapes.plan import Plan, PlanNode, numel

if TYPE_CHECKING:
    from archspec.language.train import TrainConfig

BYTES = 4  # float32
ID_BYTES = 8  # int64 token ids and max-pool indices
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Keeps:
    """What autograd keeps of one layer for its backward (and what it allocates)."""

    inputs: tuple[int, ...] = ()  # which of its inputs it saves
    output: bool = False  # whether it saves its output
    extra: int = 0  # bytes per sample beyond those (indices, masks, statistics, internals)
    fixed: int = 0  # bytes per batch (batch norm's mean and inverse std)
    view: bool = False  # the output shares input 0's storage (allocates nothing)
    scratch: int = 0  # bytes per sample of temporaries live inside the layer at inference
    transient: int = 0  # bytes per sample of temporaries inside it while training (unsaved)
    free: bool = False  # the output is no activation (a parameter broadcast over the batch)


def _in(node: PlanNode, i: int = 0) -> int:
    return numel(node.in_shapes[i]) if i < len(node.in_shapes) else 0


def _out(node: PlanNode) -> int:
    return sum(numel(s) for s in node.shapes)


def _get(node: PlanNode, name: str, default: object = None) -> object:
    return getattr(node.params, name, default)


def _all_inputs(node: PlanNode) -> Keeps:
    return Keeps(inputs=tuple(range(len(node.in_shapes))))


def _input(node: PlanNode) -> Keeps:
    return Keeps(inputs=(0,))


def _output(node: PlanNode) -> Keeps:
    return Keeps(output=True)


def _nothing(node: PlanNode) -> Keeps:
    return Keeps()


def _view(node: PlanNode) -> Keeps:
    return Keeps(view=True)


def _pool(node: PlanNode) -> Keeps:
    kind = _get(node, "kind")
    if kind == "max":  # input + int64 argmax indices, one per output element
        one_d = len(node.shape) == 2  # 1-D max pooling computes the indices at inference too
        indices = ID_BYTES * _out(node)
        return Keeps(inputs=(0,), extra=indices, scratch=indices if one_d else 0)
    if kind == "lp":  # input, x^p (input-sized) and four output-sized intermediates
        return Keeps(
            inputs=(0,),
            extra=BYTES * (_in(node) + 4 * _out(node)),
            scratch=BYTES * (_in(node) + _out(node)),
        )
    return Keeps(inputs=(0,))  # avg: the input (for its shape)


def _adaptive_pool(node: PlanNode) -> Keeps:
    if _get(node, "kind") == "max":
        return Keeps(inputs=(0,), extra=ID_BYTES * _out(node))
    return Keeps()


def _global_pool(node: PlanNode) -> Keeps:
    return Keeps(inputs=(0,), output=True) if _get(node, "kind") == "max" else Keeps()


def _batchnorm(node: PlanNode) -> Keeps:
    return Keeps(inputs=(0,), fixed=2 * BYTES * node.shape[0])


def _groupnorm(node: PlanNode) -> Keeps:
    groups = _get(node, "groups", 1)
    assert isinstance(groups, int)
    return Keeps(inputs=(0,), extra=2 * BYTES * groups)


def _instancenorm(node: PlanNode) -> Keeps:
    return Keeps(inputs=(0,), extra=3 * BYTES * node.shape[0])


def _layernorm(node: PlanNode) -> Keeps:
    over = node.shape[-1] if _get(node, "over") == "last" else node.shape[0]
    return Keeps(inputs=(0,), extra=2 * BYTES * (_out(node) // max(over, 1)))


def _local_response_norm(node: PlanNode) -> Keeps:
    size = _get(node, "size", 1)
    assert isinstance(size, int)
    c = node.shape[0]
    padded = _out(node) // max(c, 1) * (c + size - 1)
    return Keeps(
        inputs=(0,), extra=BYTES * (2 * _out(node) + padded), scratch=2 * BYTES * _out(node)
    )


def _dropout(node: PlanNode) -> Keeps:
    p = _get(node, "p", 0.0)
    return Keeps(extra=BYTES * _out(node)) if p else Keeps()  # a float32 mask (CPU)


def _drop_path(node: PlanNode) -> Keeps:
    return Keeps(extra=BYTES) if _get(node, "p", 0.0) else Keeps()  # one scale per sample


def _attention(node: PlanNode) -> Keeps:
    g = node.geometry
    t, s = getattr(g, "query_len", 1), getattr(g, "key_len", 1)
    d, h = getattr(g, "embed", 1), getattr(g, "heads", 1)
    if _get(node, "dropout", 0.0):  # the math path: weights, dropped weights, the mask
        extra = 2 * t * d + 2 * s * d + 3 * h * t * s
    else:  # flash attention: q, k, v, the output, the log-sum-exp
        extra = 2 * t * d + 2 * s * d + h * t
    live = 2 * t * d + 2 * s * d  # q, k, v and the output, at inference (flash: no weights)
    return Keeps(
        inputs=tuple(range(len(node.in_shapes))), extra=BYTES * extra, scratch=BYTES * live
    )


def _encoder_layer(node: PlanNode) -> Keeps:
    g = node.geometry
    t, d, h = getattr(g, "query_len", 1), getattr(g, "embed", 1), getattr(g, "heads", 1)
    ff = _get(node, "feedforward", 1)
    assert isinstance(ff, int)
    first = 1 if _get(node, "norm_first") else 0
    if _get(node, "dropout", 0.0):  # measured: 12 (11 norm first)·TD + 3·T·FF + 3·hT² + 4T
        extra = (12 - first) * t * d + 3 * t * ff + 3 * h * t * t + 4 * t
    else:  # measured: 8 (7)·TD + T·FF + hT + 4T
        extra = (8 - first) * t * d + t * ff + h * t + 4 * t
    # at inference torch runs one fused kernel whose temporaries are not tensors: no scratch
    return Keeps(extra=BYTES * extra)


def _recurrent(node: PlanNode) -> Keeps:
    g = node.geometry
    t = node.in_shapes[0][0]
    d, hidden = getattr(g, "input_size", 1), getattr(g, "hidden", 1)
    layers, dirs = getattr(g, "layers", 1), 2 if getattr(g, "bidirectional", False) else 1
    h, deeper = hidden, layers - 1
    # returning the last state, the whole output sequence is still made, then dropped
    dropped = t * h * dirs if getattr(g, "last", False) else 0
    if node.kind == "lstm":  # oneDNN's workspace: ~16·H per step, at least ~16 KiB a layer
        extra = 16 * h * t * layers * dirs
        # inference: a copy of the input, the states, each deeper layer's input
        live = t * d + 6 * h * dirs + deeper * (t * h * dirs + 2 * h) + (dirs - 1) * t * h * dirs
        return Keeps(
            inputs=(0,),
            extra=BYTES * extra,
            fixed=16 * 1024 * layers * dirs,
            scratch=BYTES * (live + dropped),
            transient=BYTES * (2 * h * layers * dirs + dropped),
        )
    # GRU (native cell): its layer input and 7·H gate values per step and direction
    extra = dirs * t * (d + 7 * h) + deeper * dirs * t * (dirs * h + 7 * h)
    live = dirs * (5 * t * h + h) + deeper * 2 * h + dropped
    return Keeps(
        extra=BYTES * extra,
        scratch=BYTES * live,
        transient=BYTES * (3 * t * h * dirs + h + dropped),
    )


def _embedding(node: PlanNode) -> Keeps:
    return Keeps(inputs=(0,))  # the int64 ids


def _multiply(node: PlanNode) -> Keeps:
    return _all_inputs(node)


def _conv(node: PlanNode) -> Keeps:
    g = node.geometry
    if g is None or getattr(g, "symmetric", True):  # 1-D: a 2-D conv on a copy at inference
        return Keeps(inputs=(0,), scratch=BYTES * _in(node) if len(node.shape) == 2 else 0)
    # asymmetric padding ('same' with an even kernel, causal): a padded copy, saved instead
    pads = getattr(g, "pads", ())
    padded = node.in_shapes[0][0]
    for size, (left, right) in zip(node.in_shapes[0][1:], pads, strict=False):
        padded *= size + left + right
    return Keeps(extra=BYTES * padded, scratch=BYTES * padded)


# kind → what its backward keeps; each rule measured with torch 2.13 on the CPU
RULES: dict[str, Callable[[PlanNode], Keeps]] = {
    "conv": _conv,  # its input (asymmetric padding: the padded copy)
    "conv_transpose": _input,  # its input
    "dense": _input,  # its input
    "pool": _pool,  # max: input + int64 indices; avg: input; lp: input + 1× in + 4× out
    "adaptive_pool": _adaptive_pool,  # max: input + int64 indices; avg: nothing
    "global_pool": _global_pool,  # avg (a mean): nothing; max (amax): input and output
    "relu": _output,  # its output (the mask is read from it)
    "sigmoid": _output,  # its output
    "tanh": _output,  # its output
    "softmax": _output,  # its output
    "log_softmax": _output,  # its output
    "leaky_relu": _input,  # its input
    "elu": _input,  # its input
    "gelu": _input,  # its input
    "silu": _input,  # its input
    "hardswish": _input,  # its input
    "relu6": _input,  # its input (hardtanh)
    "hardsigmoid": _input,  # its input
    "mish": _input,  # its input
    "softplus": _input,  # its input
    "prelu": _input,  # its input
    "layer_scale": _input,  # its input (for the scale's gradient)
    "identity": _view,  # nothing: returns its input
    "batchnorm": _batchnorm,  # input + mean and inverse std per channel (per batch)
    "groupnorm": _groupnorm,  # input + mean and rstd per sample and group
    "instancenorm": _instancenorm,  # input + 3 per sample and channel (batch norm inside)
    "layernorm": _layernorm,  # input + mean and rstd per normalised position
    "local_response_norm": _local_response_norm,  # input + 2× its size + the padded squares
    "dropout": _dropout,  # a float32 mask the input's size (p > 0)
    "drop_path": _drop_path,  # one float per sample
    "pad": _input,  # its input
    "crop": _nothing,  # negative padding: a copy, nothing saved
    "channel_shuffle": _nothing,  # a copy, nothing saved
    "pixel_shuffle": _nothing,  # a copy, nothing saved
    "pixel_unshuffle": _nothing,  # a copy, nothing saved
    "flatten": _view,  # a view
    "reshape": _view,  # a view
    "permute": _view,  # a view
    "transpose": _view,  # a view
    "select": _view,  # a view
    "slice": _view,  # a view
    "split": _view,  # views
    "chunk": _view,  # views
    "to_tokens": _view,  # a view (flatten + transpose)
    "from_tokens": _view,  # transpose + reshape: a view
    "mean": _nothing,  # nothing (its input's shape only)
    "add": _nothing,  # nothing
    "multiply": _multiply,  # every input
    "concat": _nothing,  # nothing
    "upsample": _nothing,  # nearest: nothing; linear: its input's shape only
    "attention": _attention,  # inputs + q, k, v, output, log-sum-exp (dropout: weights)
    "transformer_encoder_layer": _encoder_layer,  # measured formula (see the function)
    "lstm": _recurrent,  # input + oneDNN workspace
    "gru": _recurrent,  # per-step gates
    "parameter": lambda node: Keeps(free=True),  # a view of the parameter: no activation
    "positional_embedding": _nothing,  # input + a parameter: nothing saved
    "embedding": _embedding,  # the ids
}


def keeps(node: PlanNode) -> Keeps:
    """What ``node``'s backward keeps (an unknown kind: its input, like most)."""
    # A rule reads the node's kind, parameters, input and output shapes and geometry:
    # memoized like shapes.infer's rule verdicts, keyed by all of them with the Params
    # object by identity (held by the entry, so the id is not reused), so the unchanged
    # layers of a buffer the editor re-checks cost a lookup.
    key = (node.kind, id(node.params), node.in_shapes, node.shapes, node.geometry)
    hit = _KEEPS_MEMO.get(key)
    if hit is not None and hit[0] is node.params:
        return hit[1]
    out = RULES.get(node.kind, _input)(node)
    if len(_KEEPS_MEMO) >= KEEPS_MEMO_SIZE:
        _KEEPS_MEMO.clear()
    _KEEPS_MEMO[key] = (node.params, out)
    return out


_KEEPS_MEMO: dict[tuple[object, ...], tuple[object, Keeps]] = {}
KEEPS_MEMO_SIZE = 50_000


# ----------------------------------------------------------------------------- optimizer
def optimizer_slots(config: TrainConfig | None) -> int:
    """Tensors of optimizer state per parameter (no ``train:`` section: Adam's 2)."""
    if config is None:
        return 2
    from archspec.language.train import SGD  # imported already: the spec has `train:`

    if isinstance(config.optimizer, SGD):
        return 1 if config.optimizer.momentum else 0
    return 2


def step_temporaries(config: TrainConfig | None) -> int:
    """Temporaries the (single-tensor, CPU) optimizer step allocates, in largest tensors."""
    if config is None:
        return 2
    from archspec.language.train import SGD, Adam, AdamW  # imported already (`train:`)

    opt = config.optimizer
    if isinstance(opt, SGD):
        return int(bool(opt.weight_decay) or opt.nesterov)
    if isinstance(opt, Adam) and not isinstance(opt, AdamW) and opt.weight_decay:
        return 3  # grad + wd·param, then sqrt(v) and its quotient
    return 2


# ----------------------------------------------------------------------------- the profile
@dataclass(frozen=True)
class Row:
    """One layer's share: parameters, gradients, optimizer state, what backward keeps of
    it (at the batch size), and the activations live while it runs at inference."""

    node: PlanNode
    params: int
    grads: int
    optimizer: int
    saved: int
    inference: int
    output: int = 0  # its output at the batch size (0 for a view), or that output's gradient

    @property
    def total(self) -> int:
        """What it holds at training's peak at most: weights, gradients, state, what
        backward keeps of it, and its output (or the output's gradient)."""
        return self.params + self.grads + self.optimizer + self.saved + self.output


@dataclass(frozen=True)
class Profile:
    batch_size: int
    params: int  # parameters + buffers
    optimizer: int
    saved: int  # everything autograd keeps after the forward
    train_peak: int
    train_phase: str  # "forward", "backward of <layer>", "optimizer step"
    inference_peak: int
    inference_layer: str
    rows: tuple[Row, ...] = field(default=())


def _buffers(node: PlanNode) -> int:
    return 2 * BYTES * node.shape[0] + ID_BYTES if node.kind == "batchnorm" else 0


_EVAL_IDENTITY = frozenset({"dropout", "drop_path"})  # return their input at inference


class _Values:
    """Each value's storage (a view's is its input's) with its bytes for the batch, and
    the index of the last layer reading each storage."""

    def __init__(self, plan: Plan, rules: list[Keeps], batch: int, inference: bool) -> None:
        self.root: dict[str, str] = {}
        self.size: dict[str, int] = {}
        for inp in plan.all_inputs:
            self.root[inp.name] = inp.name
            width = ID_BYTES if inp.vocab is not None else BYTES
            self.size[inp.name] = numel(inp.shape) * width * batch
        for node, rule in zip(plan.nodes, rules, strict=True):
            alias = rule.view or (inference and node.kind in _EVAL_IDENTITY)
            if alias and node.inputs:
                self.root[node.name] = self.root[node.inputs[0]]
            else:
                self.root[node.name] = node.name
                self.size[node.name] = 0 if rule.free else _out(node) * BYTES * batch
        self.inputs = {inp.name for inp in plan.all_inputs}
        self.outputs = {self.root[name] for name, _ in plan.all_outputs}
        root = self.root
        last_read: dict[str, int] = {}
        for i, node in enumerate(plan.nodes):
            last_read.setdefault(root[node.name], i)
            for x in node.inputs:
                last_read[root[x]] = i
        # a storage dies after the layer that reads it last (the network's inputs and
        # outputs stay): that layer touches it, as its input or its output
        self._dies: list[list[str]] = [[] for _ in plan.nodes]
        for r, i in last_read.items():
            if r not in self.outputs and r not in self.inputs:
                self._dies[i].append(r)

    def new(self, node: PlanNode) -> int:
        """Bytes ``node`` allocates for its output (0 for a view)."""
        r = self.root[node.name]
        return self.size[r] if r == node.name else 0

    def dying(self, i: int) -> list[str]:
        """Storages nobody reads after layer ``i`` (the network's outputs stay)."""
        return self._dies[i]


def _inference(plan: Plan, rules: list[Keeps], batch: int) -> tuple[list[int], int, str]:
    """Activations live while each layer runs at inference; the peak and its layer."""
    values = _Values(plan, rules, batch, inference=True)
    live, at, peak, where = 0, [], 0, ""
    for i, (node, rule) in enumerate(zip(plan.nodes, rules, strict=True)):
        live += values.new(node)
        now = live + rule.scratch * batch
        at.append(now)
        if now > peak:
            peak, where = now, node.name
        for r in values.dying(i):
            live -= values.size[r]
    return at, peak, where


def profile(
    plan: Plan, config: TrainConfig | None, batch_size: int | None = None, detail: bool = True
) -> Profile:
    """The per-layer memory of ``plan`` at ``batch_size`` (default: the spec's, else 1).
    ``detail=False``: the training peak only (no rows, no inference pass), for the checks
    that run on every keystroke in the editor."""
    batch = batch_size or (config.batch_size if config is not None else 1)
    slots, temps = optimizer_slots(config), step_temporaries(config)
    nodes = plan.nodes
    rules = [keeps(node) for node in nodes]
    values = _Values(plan, rules, batch, inference=False)
    size, root = values.size, values.root

    # what each layer saves: storages (its first saver holds them) and its own extras
    saver: dict[str, int] = {}
    saved_by: list[list[str]] = [[] for _ in nodes]
    extras = [rule.extra * batch + rule.fixed for rule in rules]
    for i, (node, rule) in enumerate(zip(nodes, rules, strict=True)):
        refs = [root[node.inputs[k]] for k in rule.inputs if k < len(node.inputs)]
        if rule.output:
            refs.append(root[node.name])
        for r in dict.fromkeys(refs):
            if r not in values.inputs and r not in saver:
                saver[r] = i
                saved_by[i].append(r)
    own = [extras[i] + sum(size[r] for r in saved_by[i]) for i in range(len(nodes))]

    weights = plan.total_params * BYTES
    params = weights + sum(_buffers(n) for n in nodes)
    optimizer = slots * weights
    batch_in = sum(size[r] for r in values.inputs) + ID_BYTES * batch  # the batch + labels
    base = params + optimizer + batch_in

    # forward: saved storages and extras accumulate; unsaved values die at their last reader
    saved, unsaved, fwd_peak = 0, 0, 0
    kept: set[str] = set()
    for i, (node, rule) in enumerate(zip(nodes, rules, strict=True)):
        unsaved += values.new(node)
        fwd_peak = max(fwd_peak, base + saved + unsaved + extras[i] + rule.transient * batch)
        saved += own[i]
        for r in saved_by[i]:
            kept.add(r)
            unsaved -= size[r]  # counted as saved from now on
        for r in values.dying(i):
            if r not in kept:
                unsaved -= size[r]
    saved_after = saved

    # backward, last layer first: an activation's gradient lives from its last reader's
    # backward to its producer's; a layer's saved tensors go after its backward
    grads, live_saved, bwd_peak, bwd_layer = 0, saved, 0, ""
    grad_live = set(values.outputs)
    grad_bytes = sum(size[r] for r in grad_live)
    for i in range(len(nodes) - 1, -1, -1):
        node, rule = nodes[i], rules[i]
        for x in node.inputs:
            r = root[x]
            if r not in values.inputs and r not in grad_live:
                grad_live.add(r)
                grad_bytes += size[r]
        grads += node.num_params * BYTES
        now = base + grads + live_saved + grad_bytes
        if now > bwd_peak:
            bwd_peak, bwd_layer = now, node.name
        live_saved -= own[i]
        r = root[node.name]
        if r == node.name and r in grad_live:
            grad_live.discard(r)
            grad_bytes -= size[r]
    largest = max((node.num_params for node in nodes), default=0) * BYTES
    step = params + weights + optimizer + temps * largest + batch_in
    phases = [(fwd_peak, "forward"), (bwd_peak, f"backward of {bwd_layer}"), (step, "step")]
    train_peak, phase = max(phases, key=lambda p: p[0])

    rows: tuple[Row, ...] = ()
    inference_peak, inf_layer = 0, ""
    if detail:
        inf_at, inf_peak, inf_layer = _inference(plan, rules, batch)
        rows = tuple(
            Row(node, node.num_params * BYTES + _buffers(node), node.num_params * BYTES,
                slots * node.num_params * BYTES, own[i], inf_at[i], values.new(node))
            for i, node in enumerate(nodes)
        )  # fmt: skip
        inf_in = sum(v for k, v in size.items() if k in values.inputs)
        inference_peak = params + inf_in + inf_peak
    return Profile(
        batch_size=batch,
        params=params,
        optimizer=optimizer,
        saved=saved_after,
        train_peak=train_peak,
        train_phase=phase,
        inference_peak=inference_peak,
        inference_layer=inf_layer,
        rows=rows,
    )


# ----------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class Estimate:
    weights: int  # parameters + gradients
    optimizer: int
    activations: int  # the rest of the training peak: activations, gradients of them, temporaries
    data: int
    batch_size: int = 1
    heaviest: PlanNode | None = None  # the layer that holds the most bytes
    heaviest_bytes: int = 0
    profile: Profile | None = None

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.data


def estimate(
    plan: Plan, config: TrainConfig | None, data_bytes: int = 0, batch_size: int | None = None
) -> Estimate:
    """Bytes needed to train ``plan`` with ``config`` (``None``: Adam, batch 1): the
    training peak of :func:`profile` plus the in-memory dataset."""
    prof = profile(plan, config, batch_size)
    weights = 2 * plan.total_params * BYTES
    heaviest = max(prof.rows, key=lambda row: row.total, default=None)
    return Estimate(
        weights=weights,
        optimizer=prof.optimizer,
        activations=max(prof.train_peak - weights - prof.optimizer, 0),
        data=data_bytes,
        batch_size=prof.batch_size,
        heaviest=heaviest.node if heaviest is not None else None,
        heaviest_bytes=heaviest.total if heaviest is not None else 0,
        profile=prof,
    )


def training_estimate(plan: Plan, config: TrainConfig | None) -> Estimate:
    """The estimate ``archspec check`` uses: the spec's batch size (1 without ``train:``)."""
    return estimate(plan, config)


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def human(n: int) -> str:
    """``12.50 GiB`` — binary units, integer arithmetic (``n`` may be astronomically large).

    >>> human(3 * 2**30 // 2), human(512), human(5 * 2**40)
    ('1.50 GiB', '512 bytes', '5.00 TiB')
    """
    if n < 1024:
        return f"{n} bytes"
    unit = 0
    while n >= 1024 * 1024**unit and unit < len(_UNITS) - 1:
        unit += 1
    if n.bit_length() > 1000:  # beyond a float
        return f"about 2^{n.bit_length() - 1} bytes"
    return f"{n / 1024**unit:,.2f} {_UNITS[unit]}"


def gib(n: int) -> str:
    return human(n)


def count(n: int) -> str:
    """``3,136,000,001,000``; an astronomically large count as a power of two."""
    return f"{n:,}" if n.bit_length() <= 128 else f"about 2^{n.bit_length() - 1}"


def _breakdown(plan: Plan, est: Estimate) -> str:
    return (
        f"{count(plan.total_params)} parameters: {human(est.weights)} weights+gradients, "
        f"{human(est.optimizer)} optimizer state; {human(est.activations)} activations for "
        f"batch {est.batch_size} and temporaries{_phase(est)}"
    )


def _phase(est: Estimate) -> str:
    return f", peaking at the {est.profile.train_phase}" if est.profile is not None else ""


def _heaviest(est: Estimate) -> str:
    node = est.heaviest
    if node is None:
        return ""
    return (
        f"; layer '{node.name}' holds most of it ({count(node.num_params)} parameters, "
        f"{human(est.heaviest_bytes)})"
    )


def check_plan(plan: Plan, config: TrainConfig | None, available: int | None) -> Problem | None:
    """For ``archspec check``: a problem located at the heaviest layer when training the
    spec would need more memory than ``available`` (``None``: unknown, no check)."""
    if available is None:
        return None
    peak = profile(plan, config, detail=False)  # the total alone first: cheap, and enough
    weights = 2 * plan.total_params * BYTES
    if max(peak.train_peak, weights + peak.optimizer) <= available:
        return None
    est = training_estimate(plan, config)
    node = est.heaviest
    return Problem(
        f"training {plan.name} needs about {human(est.total)} but this machine has "
        f"{human(available)} available ({_breakdown(plan, est)}){_heaviest(est)}",
        "make that layer smaller or lower train.batch_size; for a spec meant for a bigger "
        "machine, pass --no-memory-check",
        node.location if node is not None else None,
    )


def check(
    plan: Plan, config: TrainConfig, available: int | None, where: str, data_bytes: int = 0
) -> Estimate:
    """Raise :class:`ResourceError` with the numbers when the estimate exceeds ``available``."""
    est = estimate(plan, config, data_bytes)
    if available is not None and est.total > available:
        raise ResourceError(
            f"training {plan.name} needs about {human(est.total)} but {where} has "
            f"{human(available)} available ({_breakdown(plan, est)}; {human(est.data)} data)"
            f"{_heaviest(est)}",
            "lower --batch-size, or make the layers smaller",
        )
    return est
