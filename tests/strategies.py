"""Hypothesis strategies that draw archspec networks as YAML text.

A drawn network is a :class:`Net`: an input shape and a list of :class:`Entry`,
one YAML layer entry each (a kind, its parameters as written, and the
``name:``/``from:``/``repeat:``/``when:`` keys). Drawing is *guided* by
archspec — a candidate layer is kept only when ``archspec.loads`` accepts the
spec so far — but never *judged* by it: the tests compare the result with torch.

- :func:`valid_nets`: specs that archspec accepts (chains, and skip connections
  merged with add/multiply/concat), covering every registered kind.
- :func:`rejected_nets`: an accepted prefix plus one last entry that archspec
  rejects (a layer with out-of-range parameters, or a merge of mismatched branches).
- :func:`expand`: the test's own reading of ``from``/``repeat``/``when`` and of
  the default names (``relu1``, ``conv2``…), so the torch reference in
  ``test_differential.py`` can run a drawn net without archspec's graph code.

Every parameter drawn is well-typed (Pydantic accepts it), so each rejection is
about shapes and options, never about a typo.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import reject
from hypothesis import strategies as st

import archspec
from archspec.errors import SpecError
from archspec.shapes.kinds import REGISTRY

Shape = tuple[int, ...]
Params = dict[str, Any]
ParamStrategy = Callable[[Shape, bool], st.SearchStrategy[Params]]

MERGES = tuple(sorted(name for name, kind in REGISTRY.items() if kind.inputs != (1, 1)))
SINGLE = tuple(sorted(name for name, kind in REGISTRY.items() if kind.inputs == (1, 1)))
SPATIAL = (
    "conv",
    "conv_transpose",
    "pool",
    "global_pool",
    "adaptive_pool",
    "upsample",
    "instancenorm",
    "local_response_norm",
    "channel_shuffle",
    "pixel_shuffle",
    "pixel_unshuffle",
    "pad",
    "crop",
)
ACTIVATIONS = (
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "relu6",
    "hardsigmoid",
    "mish",
    "softplus",
    "identity",
    "prelu",
    "softmax",
    "log_softmax",
)
NORMS = ("groupnorm", "instancenorm", "layernorm", "local_response_norm")
KEEP_SHAPE = (*ACTIVATIONS, "batchnorm", "dropout", "drop_path", "layer_scale", "groupnorm")
# Kinds that read a [T, D] sequence: drawn on 2-D shapes (a [C, L] grid read as [T, D]).
SEQUENCE = ("attention", "transformer_encoder_layer", "lstm", "gru")
# How often a kind is tried, most interesting first (Hypothesis favours early choices).
WEIGHTS = {
    "conv": 5,
    "pool": 4,
    "conv_transpose": 3,
    "dense": 3,
    "flatten": 2,
    "upsample": 2,
    "adaptive_pool": 2,
    "global_pool": 2,
    "batchnorm": 2,
    "dropout": 1,
    "drop_path": 1,
    "layer_scale": 1,
    "pad": 2,
    "crop": 2,
    "channel_shuffle": 1,
    "pixel_shuffle": 1,
    "pixel_unshuffle": 1,
    **dict.fromkeys(NORMS, 1),
    **dict.fromkeys(ACTIVATIONS, 1),
    "to_tokens": 2,
    "from_tokens": 1,
    "reshape": 1,
    "permute": 1,
    "transpose": 1,
    "select": 1,
    "slice": 1,
    "mean": 1,
    "split": 1,
    "chunk": 1,
    "attention": 2,
    "transformer_encoder_layer": 1,
    "lstm": 2,
    "gru": 2,
    "parameter": 1,
    "positional_embedding": 1,
}
CHOICES = tuple(kind for kind, weight in WEIGHTS.items() for _ in range(weight))
# Kinds tried as a last layer that archspec should reject: those with shape rules.
WILD_WEIGHTS = {
    "pool": 5,
    "conv": 4,
    "conv_transpose": 3,
    "dense": 1,
    "upsample": 1,
    "adaptive_pool": 1,
    "global_pool": 1,
    "flatten": 1,
    "to_tokens": 1,
    "from_tokens": 2,
    "reshape": 2,
    "permute": 2,
    "transpose": 1,
    "select": 2,
    "slice": 2,
    "mean": 2,
    "split": 2,
    "chunk": 2,
    "pad": 2,
    "crop": 2,
    "groupnorm": 1,
    "instancenorm": 1,
    "local_response_norm": 1,
    "channel_shuffle": 1,
    "pixel_shuffle": 1,
    "pixel_unshuffle": 1,
    "attention": 2,
    "transformer_encoder_layer": 1,
    "lstm": 1,
    "gru": 1,
    "embedding": 1,  # on float values: archspec and nn.Embedding both refuse
}
WILD = tuple(kind for kind, weight in WILD_WEIGHTS.items() for _ in range(weight))
# Parameter names a spec may also write (`filters: 8` for `depth: 8`).
KEY_ALIASES = {
    "conv": {"depth": "filters"},
    "conv_transpose": {"depth": "filters"},
    "dense": {"units": "features"},
    "dropout": {"p": "rate"},
    "drop_path": {"p": "rate"},
    "leaky_relu": {"slope": "negative_slope"},
    "lstm": {"units": "hidden", "returns": "return"},
    "gru": {"units": "hidden", "returns": "return"},
}


# --------------------------------------------------------------------------- the drawn data
@dataclass(frozen=True)
class Entry:
    """One layer entry of a spec, as the YAML will say it."""

    name: str  # this entry's id, `l3`; written as `name:` when `named` or referenced
    kind: str  # the registered kind
    params: Mapping[str, Any]  # canonical parameter names → values
    sources: tuple[str, ...] = ()  # `from:` entry ids ("input" allowed); () = the previous entry
    repeat: int = 1
    when: bool = True
    named: bool = True
    spelling: str = ""  # the kind as written: "" = its registered name, else an alias
    shorthand: bool = False  # write the one parameter as the bare value (`dense: 10`)
    renamed: Mapping[str, str] = field(default_factory=dict)  # parameter → alias written
    # a kind with several outputs (split, chunk): how many `outputs:` names it writes
    # (`l3_0`, `l3_1`…), and which one the entries reading it read (`from: l3_1`)
    outputs: int = 0
    pick: int = 0

    def read(self) -> str:
        """The name a `from:` that reads this entry writes."""
        return f"{self.name}_{self.pick}" if self.outputs else self.name


@dataclass(frozen=True)
class Net:
    input_shape: Shape
    entries: tuple[Entry, ...]
    vocab: int | None = None  # the input is int token ids in [0, vocab) (an embedding first)

    @property
    def text(self) -> str:
        return render(self.input_shape, self.entries, self.vocab)


@dataclass(frozen=True)
class Node:
    """A layer after expansion: what runs, with the plan's name for it."""

    name: str
    kind: str
    params: Mapping[str, Any]
    inputs: tuple[str, ...]  # node names, or "input"
    entry: int  # index of the entry it comes from


def referenced(entries: Sequence[Entry]) -> set[str]:
    return {source for entry in entries for source in entry.sources}


def render(input_shape: Shape, entries: Sequence[Entry], vocab: int | None = None) -> str:
    """The spec as YAML text. An entry with several outputs names them (`outputs: [l3_0,
    l3_1]`); whatever reads it, the next entry included, says which (`from: l3_1`), and so
    does `output:` when it is the last."""
    refs = referenced(entries)
    reads = {entry.name: entry.read() for entry in entries}
    layers = []
    for i, entry in enumerate(entries):
        sources = tuple(reads.get(s, s) for s in entry.sources)
        if not sources and i and entries[i - 1].outputs:
            sources = (entries[i - 1].read(),)
        entry = dataclasses.replace(entry, sources=sources)
        layers.append(_render_entry(entry, entry.named or entry.name in refs))
    declared: Any = list(input_shape)
    if vocab is not None:
        declared = {"shape": list(input_shape), "dtype": "int", "vocab": vocab}
    data: dict[str, Any] = {"name": "drawn", "input": declared, "layers": layers}
    if entries and entries[-1].outputs:
        data["output"] = entries[-1].read()
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def _render_entry(entry: Entry, named: bool) -> Any:
    key = entry.spelling or entry.kind
    value: Any = None
    if entry.shorthand:
        (value,) = entry.params.values()
    elif entry.params:
        value = {entry.renamed.get(k, k): v for k, v in entry.params.items()}
    meta: dict[str, Any] = {}
    if named:
        meta["name"] = entry.name
    if entry.sources:
        meta["from"] = entry.sources[0] if len(entry.sources) == 1 else list(entry.sources)
    if entry.repeat != 1:
        meta["repeat"] = entry.repeat
    if not entry.when:
        meta["when"] = False
    if entry.outputs:
        meta["outputs"] = [f"{entry.name}_{j}" for j in range(entry.outputs)]
    if value is None and not meta:
        return key  # `- relu`
    return {key: value, **meta}


def expand(net: Net) -> list[Node]:
    """The nodes a spec means, named as the language names them.

    ``from:`` names an entry (its last repetition); an entry with ``when: false``
    passes its first input through; ``repeat: k`` chains k copies named
    ``name.0 … name.{k-1}``; an unnamed layer is called after its kind with a
    per-kind counter (``relu1``, ``relu2``). What reads an entry with several outputs
    reads ``node#pick`` (the test's name for one output).
    """
    refs = referenced(net.entries)
    outputs: dict[str, str] = {"input": "input"}
    counters: Counter[str] = Counter()
    nodes: list[Node] = []
    previous = "input"
    for index, entry in enumerate(net.entries):
        current = [outputs[s] for s in entry.sources] or [previous]
        if entry.when:
            for r in range(entry.repeat):
                if entry.named or entry.name in refs:
                    name = entry.name if entry.repeat == 1 else f"{entry.name}.{r}"
                else:
                    counters[entry.kind] += 1
                    name = f"{entry.kind}{counters[entry.kind]}"
                nodes.append(Node(name, entry.kind, entry.params, tuple(current), index))
                current = [f"{name}#{entry.pick}" if entry.outputs else name]
        outputs[entry.name] = previous = current[0]
    return nodes


def ancestors(entries: Sequence[Entry]) -> list[Entry]:
    """The entries the last one depends on (itself included), in order: a spec with no
    dead branches whose output is the last entry."""
    index = {entry.name: i for i, entry in enumerate(entries)}
    keep: set[int] = set()
    stack = [len(entries) - 1]
    while stack:
        i = stack.pop()
        if i in keep:
            continue
        keep.add(i)
        sources = entries[i].sources
        stack += [index[s] for s in sources if s != "input"] if sources else [i - 1] * (i > 0)
    return [entries[i] for i in sorted(keep)]


# --------------------------------------------------------------------------- small draws
def chance(draw: st.DrawFn, percent: int) -> bool:
    """True with about ``percent`` % probability (shrinks towards False)."""
    return draw(st.integers(0, 99)) >= 100 - percent


def per_dim(draw: st.DrawFn, lo: int, his: Sequence[int], wild: bool) -> int | list[int]:
    """An int, or one value per axis (``his``: the largest value per axis).

    ``wild``: lists may also have the wrong length for the input's rank.
    """
    if not chance(draw, 40):
        return draw(st.integers(lo, max(lo, min(his))))
    length = len(his)
    if wild and chance(draw, 40):
        length = draw(st.integers(1, 4))
    top = max(lo, max(his))
    return [draw(st.integers(lo, max(lo, his[i]) if i < len(his) else top)) for i in range(length)]


def spatial(shape: Shape) -> Shape:
    """The spatial sizes; a flat vector (drawn into a spatial kind only in wild mode)
    pretends to be one axis of length 4."""
    return shape[1:] or (4,)


def _largest(value: int | list[int]) -> int:
    return max(value) if isinstance(value, list) else value


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# --------------------------------------------------------------------------- parameters
def groups_and_depth(draw: st.DrawFn, channels: int, wild: bool) -> tuple[int, int]:
    """Groups dividing the channels and the depth; when wild, often groups that do not."""
    if wild and chance(draw, 40):
        others = [g for g in range(2, 7) if channels % g]
        groups = (
            draw(st.sampled_from(others))
            if others and chance(draw, 50)
            else draw(st.integers(1, 6))
        )
        return groups, draw(st.integers(1, 8))
    groups = draw(st.sampled_from(divisors(channels)))
    return groups, groups * draw(st.integers(1, 3))


@st.composite
def conv_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    channels, sizes = shape[0], spatial(shape)
    groups, depth = groups_and_depth(draw, channels, wild)
    extra = 3 if wild else 1
    p: Params = {
        "depth": depth,
        "kernel": per_dim(draw, 1, [min(n, 6) + extra for n in sizes], wild),
    }
    if chance(draw, 50):
        p["stride"] = per_dim(draw, 1, [3] * len(sizes), wild)
    if chance(draw, 60):
        p["padding"] = draw(st.sampled_from(["same", "valid", "int", "list", "causal"]))
        if p["padding"] in ("int", "list"):
            top = max(sizes) + 1 if wild else 2  # wild: beyond reflect/circular's limit
            p["padding"] = (
                per_dim(draw, 0, [top] * len(sizes), wild)
                if p["padding"] == "list"
                else draw(st.integers(0, top))
            )
    if chance(draw, 30):
        p["dilation"] = per_dim(draw, 1, [3 if wild else 2] * len(sizes), wild)
    if groups != 1 or chance(draw, 10):
        p["groups"] = groups
    if chance(draw, 30):
        p["bias"] = draw(st.booleans())
    if chance(draw, 35):
        p["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        if p["padding_mode"] != "zeros" and chance(draw, 60):
            # around the input size: reflect needs padding < size, circular ≤ size
            edge = min(sizes)
            p["padding"] = draw(st.sampled_from([n for n in (edge, edge - 1, edge + 1) if n >= 0]))
    return p


@st.composite
def conv_transpose_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    channels, rank = shape[0], len(spatial(shape))
    groups, depth = groups_and_depth(draw, channels, wild)
    p: Params = {"depth": depth, "kernel": per_dim(draw, 1, [3] * rank, wild)}
    if chance(draw, 50):
        p["stride"] = per_dim(draw, 1, [3] * rank, wild)
    if chance(draw, 40):
        p["padding"] = per_dim(draw, 0, [4 if wild else 1] * rank, wild)
    if chance(draw, 30):
        p["dilation"] = per_dim(draw, 1, [2] * rank, wild)
    if chance(draw, 40):
        # torch wants output_padding < max(stride, dilation): the edge, or random
        edge = max(_largest(p.get("stride", 1)), _largest(p.get("dilation", 1))) - 1 + wild
        p["output_padding"] = (
            draw(st.sampled_from([edge, 0]))
            if chance(draw, 50)
            else per_dim(draw, 0, [3 if wild else 1] * rank, wild)
        )
    if groups != 1 or chance(draw, 10):
        p["groups"] = groups
    if chance(draw, 30):
        p["bias"] = draw(st.booleans())
    return p


# Options a pool kind does not have, with a value archspec must refuse.
FOREIGN_POOL_OPTIONS = {
    "dilation": (2, ("avg", "lp")),
    "norm": (1, ("max", "avg")),
    "padding": (1, ("lp",)),
    "count_include_pad": (False, ("max", "lp")),
}


@st.composite
def pool_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    sizes = spatial(shape)
    kind = draw(st.sampled_from(["max", "avg", "lp"]))
    p: Params = {"kind": kind} if kind != "max" or chance(draw, 30) else {}
    p["size"] = per_dim(draw, 1, [min(n, 4) + (3 if wild else 1) for n in sizes], wild)
    if chance(draw, 50):
        p["stride"] = per_dim(draw, 1, [3] * len(sizes), wild)
    if kind == "max" and chance(draw, 50):
        p["dilation"] = per_dim(draw, 2, [3] * len(sizes), wild)  # 1 is the default
    if kind != "lp" and chance(draw, 50):
        # torch allows kernel // 2; the edges around it and around half the dilated window
        kernel, dilation = _largest(p["size"]), _largest(p.get("dilation", 1))
        half = effective_kernel(kernel, dilation) // 2
        # the likeliest first: Hypothesis favours early choices
        edges = dict.fromkeys([half, kernel // 2 + 1, kernel // 2, 0, half + wild])
        p["padding"] = (
            draw(st.sampled_from(list(edges)))
            if chance(draw, 60)
            else per_dim(draw, 0, [half + wild] * len(sizes), wild)
        )
    if chance(draw, 40):
        p["ceil_mode"] = draw(st.booleans())
    if kind == "lp" and chance(draw, 60):
        p["norm"] = draw(st.sampled_from([1, 2]))
    if kind == "avg" and chance(draw, 40):
        p["count_include_pad"] = draw(st.booleans())
    foreign = [key for key, (_, kinds) in FOREIGN_POOL_OPTIONS.items() if kind in kinds]
    if wild and chance(draw, 25):
        key = draw(st.sampled_from(foreign))
        p[key] = FOREIGN_POOL_OPTIONS[key][0]
    return p


@st.composite
def global_pool_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    return {"kind": draw(st.sampled_from(["avg", "max"]))} if chance(draw, 70) else {}


@st.composite
def adaptive_pool_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {"kind": draw(st.sampled_from(["avg", "max"]))} if chance(draw, 60) else {}
    p["size"] = per_dim(draw, 1, [n + 2 for n in spatial(shape)], wild)
    return p


@st.composite
def upsample_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 70):
        p["scale"] = per_dim(draw, 1, [2] * len(spatial(shape)), wild)
    if chance(draw, 50):
        p["mode"] = draw(st.sampled_from(["nearest", "linear"]))
    return p


@st.composite
def dense_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {"units": draw(st.integers(1, 8))}
    if chance(draw, 30):
        p["bias"] = draw(st.booleans())
    return p


@st.composite
def batchnorm_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 20):
        p["eps"] = draw(floats(1e-6, 1e-2))
    if chance(draw, 20):
        p["momentum"] = draw(floats(0.0, 0.9))
    if chance(draw, 30):
        p["affine"] = draw(st.booleans())
    return p


def axis(draw: st.DrawFn, rank: int, wild: bool) -> int:
    """An axis of a ``rank``-axis tensor (negative now and then); when wild, maybe beyond."""
    spread = rank + 2 if wild else rank
    return draw(st.integers(-spread, spread - 1))


@st.composite
def flatten_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 40):
        p["start"] = axis(draw, len(shape), wild)
    if chance(draw, 30):
        p["end"] = axis(draw, len(shape), wild)
    return p


@st.composite
def from_tokens_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    tokens = shape[0]
    if wild:
        return {"size": per_dim(draw, 1, [6, 6], True)}
    first = draw(st.sampled_from(divisors(tokens)))
    return {"size": draw(st.sampled_from([[tokens], [first, tokens // first]]))}


@st.composite
def reshape_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    total = 1
    for n in shape:
        total *= n
    if wild:
        return {"shape": draw(st.lists(st.integers(-2, 12), min_size=1, max_size=4))}
    first = draw(st.sampled_from(divisors(total)))
    rest = total // first
    second = draw(st.sampled_from(divisors(rest)))
    options = [[total], [-1], [first, rest], [first, -1], [first, second, rest // second]]
    return {"shape": draw(st.sampled_from(options))}


@st.composite
def permute_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    rank = len(shape)
    if wild:
        order = draw(st.lists(st.integers(-rank, rank), min_size=1, max_size=rank + 1))
    else:
        order = draw(st.permutations(range(rank)))
        order = [a - rank if chance(draw, 20) else a for a in order]
    return {"order": list(order)}


@st.composite
def transpose_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    if chance(draw, 30):
        return {}
    return {"axes": [axis(draw, len(shape), wild), axis(draw, len(shape), wild)]}


@st.composite
def select_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    a = axis(draw, len(shape), wild)
    size = shape[a] if -len(shape) <= a < len(shape) else 2
    spread = size + 2 if wild else size
    return {"axis": a, "index": draw(st.integers(-spread, spread - 1))}


@st.composite
def slice_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    a = axis(draw, len(shape), wild)
    size = shape[a] if -len(shape) <= a < len(shape) else 2
    p: Params = {"axis": a}
    if chance(draw, 70):
        p["start"] = draw(st.integers(-size - 1, size))
    if chance(draw, 60):
        p["stop"] = draw(st.integers(-size - 1, size + 1))
    if chance(draw, 40):
        p["step"] = draw(st.integers(1, 3))
    return p


@st.composite
def mean_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    rank = len(shape)
    axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique=True))
    if wild and chance(draw, 50):
        axes.append(axis(draw, rank, True))
    p: Params = {"axes": axes}
    if chance(draw, 30):
        p["keepdims"] = draw(st.booleans())
    return p


def _cut_axis(draw: st.DrawFn, shape: Shape, wild: bool) -> tuple[int, int]:
    """An axis to cut (maybe out of range when wild) and its size (2 when out of range)."""
    a = axis(draw, len(shape), wild)
    return a, shape[a] if -len(shape) <= a < len(shape) else 2


@st.composite
def split_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    """Sizes adding up to the axis, or (wild) near it."""
    a, size = _cut_axis(draw, shape, wild)
    if size < 2 or (wild and chance(draw, 60)):
        sizes = draw(st.lists(st.integers(1, size + 2), min_size=2, max_size=4))
    else:
        cuts = sorted(draw(st.sets(st.integers(1, size - 1), min_size=1, max_size=3)))
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
    p: Params = {"sizes": sizes}
    if a != 0 or chance(draw, 30):
        p["axis"] = a
    return p


@st.composite
def chunk_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    """Parts torch.chunk makes exactly, or (wild) any (5 into 4 makes only 3)."""
    a, size = _cut_axis(draw, shape, wild)
    fits = [n for n in range(2, size + 1) if len(range(0, size, -(-size // n))) == n]
    parts = draw(st.integers(2, 6)) if wild or not fits else draw(st.sampled_from(fits))
    p: Params = {"parts": parts}
    if a != 0 or chance(draw, 30):
        p["axis"] = a
    return p


def output_count(kind: str, params: Params) -> int:
    """How many outputs an entry of a kind with several names (0: a one-output kind)."""
    if not REGISTRY[kind].several_outputs:
        return 0
    return len(params["sizes"]) if kind == "split" else int(params["parts"])


@st.composite
def attention_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    features = shape[-1]
    if wild:
        p["heads"] = draw(st.integers(1, 6))
    elif chance(draw, 70):
        p["heads"] = draw(st.sampled_from(divisors(features)))
    if chance(draw, 20):
        p["dropout"] = draw(floats(0.0, 0.5))
    if chance(draw, 40):
        p["causal"] = draw(st.booleans())
    if chance(draw, 30):
        p["bias"] = draw(st.booleans())
    return p


@st.composite
def sides_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    """pad/crop amounts: both sides, or before/after; wild: beyond the input."""
    sizes = spatial(shape)
    top = [n + 1 if wild else max(n // 2, 1) for n in sizes]
    p: Params = {}
    if chance(draw, 50):
        p["size"] = per_dim(draw, 0, top, wild)
    if chance(draw, 40):
        p["before"] = per_dim(draw, 0, top, wild)
    if chance(draw, 40):
        p["after"] = per_dim(draw, 0, top, wild)
    return p


@st.composite
def pad_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p = draw(sides_params(shape, wild))
    if chance(draw, 60):
        p["mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if p.get("mode", "zeros") == "zeros" and chance(draw, 20):
        p["value"] = draw(floats(-2.0, 2.0))
    return p


@st.composite
def groups_of(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    """groups dividing the channels; wild: often not."""
    if wild and chance(draw, 50):
        return {"groups": draw(st.integers(1, 7))}
    return {"groups": draw(st.sampled_from(divisors(shape[0])))}


@st.composite
def groupnorm_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p = draw(groups_of(shape, wild))
    if chance(draw, 30):
        p["eps"] = draw(floats(1e-6, 1e-2))
    if chance(draw, 30):
        p["affine"] = draw(st.booleans())
    return p


@st.composite
def norm_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 30):
        p["eps"] = draw(floats(1e-6, 1e-2))
    if chance(draw, 50):
        p["affine"] = draw(st.booleans())
    return p


@st.composite
def encoder_layer_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {k: v for k, v in draw(attention_params(shape, wild)).items() if k != "bias"}
    p["feedforward"] = draw(st.integers(1, 8))
    if chance(draw, 30):
        p["activation"] = draw(st.sampled_from(["relu", "gelu"]))
    if chance(draw, 30):
        p["norm_first"] = draw(st.booleans())
    return p


@st.composite
def recurrent_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {"units": draw(st.integers(1, 6))}
    if chance(draw, 40):
        p["layers"] = draw(st.integers(1, 3))
    if chance(draw, 40):
        p["bidirectional"] = draw(st.booleans())
    if chance(draw, 50):
        p["returns"] = draw(st.sampled_from(["sequence", "last"]))
    if p.get("layers", 1) > 1 and chance(draw, 30):
        p["dropout"] = draw(floats(0.0, 0.5))
    if chance(draw, 20):
        p["bias"] = draw(st.booleans())
    return p


@st.composite
def layernorm_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p = draw(norm_params(shape, wild))
    if chance(draw, 50):
        p["over"] = draw(st.sampled_from(["channels", "last"]))
    return p


@st.composite
def embedding_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    """A table of 1–24 rows (fewer than the input's vocab now and then: refused) of 1–8."""
    vocab = draw(st.integers(1, 24))
    p: Params = {"vocab": vocab, "dim": draw(st.integers(1, 8))}
    if chance(draw, 30):
        p["padding_idx"] = draw(st.integers(0, vocab + 2 if wild else vocab - 1))
    return p


@st.composite
def lrn_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {"size": draw(st.integers(1, shape[0] + 2))}
    if chance(draw, 30):
        p["alpha"] = draw(floats(1e-5, 1e-2))
    if chance(draw, 30):
        p["beta"] = draw(floats(0.5, 1.0))
    if chance(draw, 30):
        p["k"] = draw(floats(0.5, 2.0))
    return p


@st.composite
def shuffle_factor(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    return {"factor": draw(st.integers(1, 4 if wild else 2))}


@st.composite
def prelu_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 50):
        p["per_channel"] = draw(st.booleans())
    if chance(draw, 30):
        p["init"] = draw(floats(-1.0, 1.0))
    return p


@st.composite
def softplus_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {}
    if chance(draw, 40):
        p["beta"] = draw(floats(0.1, 3.0))
    if chance(draw, 30):
        p["threshold"] = draw(floats(0.5, 20.0))
    return p


@st.composite
def parameter_params(draw: st.DrawFn, shape: Shape, wild: bool) -> Params:
    p: Params = {"shape": draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))}
    if chance(draw, 30):
        p["init"] = draw(st.sampled_from(["zeros", "normal", "constant"]))
        if p["init"] == "constant" and chance(draw, 50):
            p["value"] = draw(st.floats(-2.0, 2.0))
    if chance(draw, 30):
        p["batch_axis"] = draw(st.booleans())
    return p


def optional(key: str, values: st.SearchStrategy[Any]) -> ParamStrategy:
    """Parameters that are empty or ``{key: value}``."""
    return lambda shape, wild: st.one_of(st.just({}), st.fixed_dictionaries({key: values}))


def nothing(shape: Shape, wild: bool) -> st.SearchStrategy[Params]:
    return st.just({})


# One parameter strategy per registered kind; test_differential checks the keys
# equal archspec.shapes.kinds.REGISTRY, so a new kind without a strategy fails the suite.
PARAMS: dict[str, ParamStrategy] = {
    "conv": conv_params,
    "conv_transpose": conv_transpose_params,
    "pool": pool_params,
    "global_pool": global_pool_params,
    "adaptive_pool": adaptive_pool_params,
    "upsample": upsample_params,
    "dense": dense_params,
    "flatten": flatten_params,
    "batchnorm": batchnorm_params,
    "dropout": optional("p", floats(0.0, 0.9)),
    "relu": nothing,
    "leaky_relu": optional("slope", floats(-1.0, 1.0)),
    "elu": optional("alpha", floats(0.1, 2.0)),
    "gelu": optional("approximate", st.sampled_from(["none", "tanh"])),
    "silu": nothing,
    "sigmoid": nothing,
    "tanh": nothing,
    "hardswish": nothing,
    "relu6": nothing,
    "hardsigmoid": nothing,
    "mish": nothing,
    "softplus": softplus_params,
    "identity": nothing,
    "prelu": prelu_params,
    "drop_path": optional("p", floats(0.0, 0.9)),
    "layer_scale": optional("init", floats(-1.0, 1.0)),
    "groupnorm": groupnorm_params,
    "instancenorm": norm_params,
    "layernorm": layernorm_params,
    "local_response_norm": lrn_params,
    "channel_shuffle": groups_of,
    "pixel_shuffle": shuffle_factor,
    "pixel_unshuffle": shuffle_factor,
    "pad": pad_params,
    "crop": sides_params,
    "softmax": nothing,
    "log_softmax": nothing,
    "add": nothing,
    "multiply": nothing,
    "concat": nothing,  # its axis is drawn by Growing.merge
    "to_tokens": nothing,
    "from_tokens": from_tokens_params,
    "reshape": reshape_params,
    "permute": permute_params,
    "transpose": transpose_params,
    "select": select_params,
    "slice": slice_params,
    "mean": mean_params,
    "split": split_params,
    "chunk": chunk_params,
    "attention": attention_params,
    "transformer_encoder_layer": encoder_layer_params,
    "lstm": recurrent_params,
    "gru": recurrent_params,
    "parameter": parameter_params,
    "positional_embedding": optional("std", floats(0.01, 1.0)),
    "embedding": embedding_params,
}


# --------------------------------------------------------------------------- input shapes
@st.composite
def input_shapes(draw: st.DrawFn, ranks: Sequence[int] = (0, 1, 2, 3)) -> Shape:
    """``[F]`` (flat), ``[C, L]``, ``[C, H, W]`` or ``[C, D, H, W]``, small."""
    rank = draw(st.sampled_from(list(ranks)))
    top = (16, 16, 10, 6)[rank]
    channels = draw(st.integers(1, 6))
    return (channels, *(draw(st.integers(1, top)) for _ in range(rank)))


# --------------------------------------------------------------------------- growing a net
class Growing:
    """A network being drawn; every committed entry is accepted by archspec and live."""

    def __init__(self, input_shape: Shape, vocab: int | None = None) -> None:
        self.input_shape = input_shape
        self.vocab = vocab  # token ids: only an embedding reads them
        self.entries: list[Entry] = []
        self.shapes: dict[str, Shape] = {"input": input_shape}
        self.count = 0

    @property
    def current(self) -> str:
        return self.entries[-1].name if self.entries else "input"

    def net(self, extra: Sequence[Entry] = ()) -> Net:
        return Net(self.input_shape, (*self.entries, *extra), self.vocab)

    def accepts(self, entries: Sequence[Entry]) -> Shape | None:
        """The output shape of the spec made of the last entry and what it depends on,
        or ``None`` when archspec rejects it."""
        text = render(self.input_shape, ancestors(entries), self.vocab)
        try:
            return archspec.loads(text).plan().output_shape
        except SpecError:
            return None

    def entry(
        self, draw: st.DrawFn, kind: str, source: str | None, wild: bool, meta: bool = True
    ) -> Entry:
        """An entry of ``kind`` reading ``source`` (``None``: the previous entry)."""
        self.count += 1
        shape = self.shapes[source or self.current]
        params = draw(PARAMS[kind](shape, wild))
        aliases = REGISTRY[kind].aliases
        short = REGISTRY[kind].params.shorthand
        renames = KEY_ALIASES.get(kind, {})
        outputs = output_count(kind, params)
        meta = meta and not outputs  # several outputs: never repeated (archspec refuses)
        return Entry(
            name=f"l{self.count}",
            kind=kind,
            params=params,
            sources=(source,) if source else (),
            repeat=draw(st.integers(2, 3)) if meta and chance(draw, 8) else 1,
            when=not (meta and chance(draw, 5)),
            outputs=outputs,
            pick=draw(st.integers(0, outputs - 1)) if outputs else 0,
            named=chance(draw, 70),
            spelling=draw(st.sampled_from(aliases)) if aliases and chance(draw, 25) else "",
            shorthand=list(params) == [short] and chance(draw, 50),
            renamed={k: v for k, v in renames.items() if k in params and chance(draw, 30)},
        )

    def kinds_for(self, shape: Shape, wild: bool) -> tuple[str, ...]:
        """Single-input kinds worth trying on ``shape``; when ``wild``, those with shape rules."""
        if wild:
            return WILD
        if len(shape) == 1:
            return tuple(k for k in CHOICES if k not in (*SPATIAL, *SEQUENCE))
        # dense and the sequence kinds: on sequences yes, on grids no (archspec decides, by
        # layout)
        return CHOICES

    def try_layer(self, draw: st.DrawFn, kind: str | None = None, tries: int = 2) -> bool:
        """Append one accepted layer (of ``kind``, or a random one); False if none fits."""
        for _ in range(tries):
            # now and then out-of-range parameters: what archspec accepts of them, torch must run
            wild = chance(draw, 30)
            chosen = kind or draw(st.sampled_from(self.kinds_for(self.shapes[self.current], wild)))
            entry = self.entry(draw, chosen, None, wild=wild)
            shape = self.accepts([*self.entries, entry])
            if shape is not None:
                self.entries.append(entry)
                self.shapes[entry.name] = shape
                return True
        return False

    def branch(
        self, draw: st.DrawFn, source: str | None, length: int, wild: bool, before: Sequence[Entry]
    ) -> list[Entry]:
        """Up to ``length`` accepted layers after ``source`` (``None``: the current end)."""
        out: list[Entry] = []
        for _ in range(length):
            start = out[-1].name if out else source or self.current
            shape = self.shapes[start]
            kinds = self.kinds_for(shape, False)
            if not wild and chance(draw, 70):
                kinds = tuple(k for k in kinds if k in (*KEEP_SHAPE, "conv"))
            kind = draw(st.sampled_from(kinds))
            first_explicit = source if not out else None
            entry = self.entry(draw, kind, first_explicit, wild=False, meta=False)
            if kind == "conv" and not wild:
                entry = _keep_size(draw, entry, shape)
            got = self.accepts([*before, *out, entry])
            if got is not None:
                out.append(entry)
                self.shapes[entry.name] = got
        return out

    def merge(self, draw: st.DrawFn, kind: str | None, wild: bool) -> list[Entry]:
        """Two branches — one from the current end, one from an earlier entry — and
        the merge of their ends (a third input now and then); not committed."""
        start = draw(st.sampled_from(["input", *(e.name for e in self.entries)]))
        lengths = st.integers(0, 2 if wild else 1)
        a = self.branch(draw, None, draw(lengths), wild, self.entries)
        b = self.branch(draw, start, draw(lengths), wild, [*self.entries, *a])
        ends = [a[-1].name if a else self.current, b[-1].name if b else start]
        chosen = kind or draw(st.sampled_from(MERGES))
        most = REGISTRY[chosen].inputs[1]
        if chance(draw, 15) and (most is None or most > 2):  # attention takes at most 2
            ends.append(draw(st.sampled_from([self.current, start])))
        self.count += 1
        params: Params = {}
        if chosen == "concat" and chance(draw, 30):
            params["axis"] = axis(draw, len(self.shapes[ends[0]]), wild)
        merge = Entry(f"l{self.count}", chosen, params, tuple(ends), named=chance(draw, 60))
        return [*a, *b, merge]

    def try_merge(self, draw: st.DrawFn, kind: str | None = None) -> bool:
        """Append an accepted branch-and-merge; concat is the fallback for add/multiply."""
        tail = self.merge(draw, kind, wild=False)
        shape = self.accepts([*self.entries, *tail])
        if shape is None and kind is None and tail[-1].kind != "concat":
            tail[-1] = Entry(
                tail[-1].name, "concat", tail[-1].params, tail[-1].sources, named=tail[-1].named
            )
            shape = self.accepts([*self.entries, *tail])
        if shape is None:
            return False
        self.entries += tail
        self.shapes[tail[-1].name] = shape
        return True

    def grow(self, draw: st.DrawFn, steps: int) -> None:
        for _ in range(steps):
            if chance(draw, 25):
                self.try_merge(draw)
            else:
                self.try_layer(draw)


def _keep_size(draw: st.DrawFn, entry: Entry, shape: Shape) -> Entry:
    """Mostly a stride-1 `same` conv, so that branches of a skip connection still fit."""
    params = {k: v for k, v in entry.params.items() if k not in ("stride", "padding_mode")}
    params["padding"] = "same"
    groups = params.get("groups", 1)
    if chance(draw, 60) and shape[0] % groups == 0:
        params["depth"] = shape[0]
    return Entry(
        entry.name, entry.kind, params, entry.sources, named=entry.named, spelling=entry.spelling
    )


# --------------------------------------------------------------------------- public strategies
@st.composite
def valid_nets(draw: st.DrawFn, must_have: str | None = None, max_steps: int = 6) -> Net:
    """A network archspec accepts; with ``must_have``, one containing that kind."""
    ranks = (1, 2, 3) if must_have in SPATIAL else (0, 1, 2, 3)
    if must_have in SEQUENCE:
        ranks = (1, 2)  # a grid, then to_tokens: sequences come from grids (or layers)
    if must_have == "embedding":  # token ids [T] in [0, vocab), embedded first
        g = Growing((draw(st.integers(1, 8)),), vocab=draw(st.integers(1, 20)))
        if not g.try_layer(draw, "embedding", 8):
            reject()
        g.grow(draw, draw(st.integers(0, 2)))
        return g.net()
    g = Growing(draw(input_shapes(ranks)))
    if must_have is None:
        g.grow(draw, draw(st.integers(1, max_steps)))
    else:
        if must_have in SEQUENCE:
            if not g.try_layer(draw, "to_tokens", 2):
                reject()
        else:
            g.grow(draw, draw(st.integers(0, 2)))
        forced = (
            g.try_merge(draw, must_have) if must_have in MERGES else g.try_layer(draw, must_have, 8)
        )
        if not forced:
            reject()
        g.grow(draw, draw(st.integers(0, 2)))
    if not g.entries:
        g.entries.append(Entry("l0", "relu", {}, named=False))
    return g.net()


@st.composite
def single_layers(draw: st.DrawFn) -> Net:
    """One layer with a shape rule on a random input, its parameters often out of range:
    accepted or not, cheap enough to probe each rule's edges many times."""
    g = Growing(draw(input_shapes()))
    kind = draw(st.sampled_from(WILD))
    return g.net([g.entry(draw, kind, None, wild=chance(draw, 50), meta=False)])


@st.composite
def rejected_nets(draw: st.DrawFn) -> Net:
    """An accepted prefix plus a last entry that archspec rejects: a single layer with
    wild parameters, or a merge of two branches."""
    g = Growing(draw(input_shapes()))
    g.grow(draw, draw(st.integers(0, 3)))
    for _ in range(6):
        flat = len(g.shapes[g.current]) == 1  # there only spatial kinds can fail: prefer merges
        if chance(draw, 85 if flat else 25):
            tail = g.merge(draw, None, wild=True)
        else:
            kind = draw(st.sampled_from(g.kinds_for(g.shapes[g.current], True)))
            tail = [g.entry(draw, kind, None, wild=True, meta=False)]
        if g.accepts([*g.entries, *tail]) is None:
            return g.net(tail)
    reject()


__all__ = [
    "MERGES",
    "PARAMS",
    "SEQUENCE",
    "SINGLE",
    "SPATIAL",
    "Entry",
    "Growing",
    "Net",
    "Node",
    "ancestors",
    "expand",
    "input_shapes",
    "rejected_nets",
    "render",
    "single_layers",
    "valid_nets",
]
