"""The registry of layer kinds' torch-free rules: parameters, shape rule, counts, description.

Each kind's builder is in :data:`archspec.compile.builders.BUILDERS`, under the same name.

>>> get("dense").name, get("linear").name
('dense', 'dense')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from archspec.shapes.kinds.base import Kind, ShapeError
from archspec.shapes.plan import PlanNode

# Each module's kinds, in registry order, written out so that a spec loads only the
# modules of the kinds it uses (`archspec check`'s start-up, issue 14): every kind module
# defines Pydantic models and geometry. tests/test_kinds_index.py holds this table to the
# modules' KINDS; a new kind goes in its module's KINDS and here.
INDEX: dict[str, tuple[str, ...]] = {
    "conv": ("conv", "conv_transpose"),
    "pool": ("pool", "global_pool", "adaptive_pool"),
    "elementwise": (
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
        "softmax",
        "log_softmax",
        "batchnorm",
        "prelu",
        "drop_path",
        "layer_scale",
        "dropout",
    ),
    "norm": ("groupnorm", "instancenorm", "layernorm", "local_response_norm"),
    "shuffle": ("channel_shuffle", "pixel_shuffle", "pixel_unshuffle"),
    "padding": ("pad", "crop"),
    "dense": ("flatten", "dense"),
    "merge": ("add", "multiply", "concat", "upsample"),
    "tensor": (
        "to_tokens",
        "from_tokens",
        "reshape",
        "permute",
        "transpose",
        "select",
        "slice",
        "mean",
        "split",
        "chunk",
    ),
    "attention": ("attention", "transformer_encoder_layer"),
    "recurrent": ("lstm", "gru"),
    "learned": ("parameter", "positional_embedding", "embedding"),
}
# Other names of kinds (alias → kind), as the kinds declare them.
ALIASES: dict[str, str] = {
    "convolution": "conv",
    "deconv": "conv_transpose",
    "pooling": "pool",
    "batch_norm": "batchnorm",
    "stochastic_depth": "drop_path",
    "group_norm": "groupnorm",
    "instance_norm": "instancenorm",
    "layer_norm": "layernorm",
    "lrn": "local_response_norm",
    "linear": "dense",
    "pos_embedding": "positional_embedding",
}
_HOME = {name: module for module, names in INDEX.items() for name in names}


def _kinds_of(module: str) -> tuple[Kind, ...]:
    """The KINDS of one kind module, imported now (static imports: tests/test_safety.py
    allows no dynamic ones)."""
    match module:
        case "conv":
            from archspec.shapes.kinds import conv

            return tuple(conv.KINDS)
        case "pool":
            from archspec.shapes.kinds import pool

            return tuple(pool.KINDS)
        case "elementwise":
            from archspec.shapes.kinds import elementwise

            return tuple(elementwise.KINDS)
        case "norm":
            from archspec.shapes.kinds import norm

            return tuple(norm.KINDS)
        case "shuffle":
            from archspec.shapes.kinds import shuffle

            return tuple(shuffle.KINDS)
        case "padding":
            from archspec.shapes.kinds import padding

            return tuple(padding.KINDS)
        case "dense":
            from archspec.shapes.kinds import dense

            return tuple(dense.KINDS)
        case "merge":
            from archspec.shapes.kinds import merge

            return tuple(merge.KINDS)
        case "tensor":
            from archspec.shapes.kinds import tensor

            return tuple(tensor.KINDS)
        case "attention":
            from archspec.shapes.kinds import attention

            return tuple(attention.KINDS)
        case "recurrent":
            from archspec.shapes.kinds import recurrent

            return tuple(recurrent.KINDS)
        case "learned":
            from archspec.shapes.kinds import learned

            return tuple(learned.KINDS)
    raise KeyError(module)


class Registry(Mapping[str, Kind]):
    """Kind name → :class:`Kind`, in :data:`INDEX` order; a kind's module is imported the
    first time one of its kinds is looked up (iterating imports them all)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Kind] = {}

    def __getitem__(self, name: str) -> Kind:
        kind = self._loaded.get(name)
        if kind is None:
            module = _HOME[name]  # KeyError for an unknown name, as a dict's
            for loaded in _kinds_of(module):
                self._loaded[loaded.name] = loaded
            kind = self._loaded[name]
        return kind

    def __contains__(self, name: object) -> bool:
        return name in _HOME

    def __iter__(self) -> Iterator[str]:
        return iter(_HOME)

    def __len__(self) -> int:
        return len(_HOME)


REGISTRY = Registry()
_LOADED = REGISTRY._loaded  # the kinds looked up so far: get()'s fast path


def canonical(name: str) -> str | None:
    """The registered name for ``name`` (itself or an alias), or ``None``."""
    if name in REGISTRY:
        return name
    return ALIASES.get(name)


def get(name: str) -> Kind:
    """The kind called ``name`` (or one of its aliases); ``KeyError`` if none."""
    kind = _LOADED.get(name)  # the common case, first: called for every layer, often
    if kind is not None:
        return kind
    real = name if name in _HOME else ALIASES.get(name)
    if real is None:
        raise KeyError(f"no layer kind '{name}'")
    return REGISTRY[real]


def names() -> list[str]:
    """Every kind name and alias a spec may use."""
    return sorted([*REGISTRY, *ALIASES])


def label(node: PlanNode) -> str:
    """``conv 5×5 /1 same``: the kind and its detail, as reports and diagrams show it."""
    return f"{node.kind} {get(node.kind).describe(node)}".strip()


__all__ = ["ALIASES", "REGISTRY", "Kind", "ShapeError", "canonical", "get", "label", "names"]
