"""The top level of a spec file, as Pydantic models.

Layers are validated per kind (see :mod:`archspec.shapes.kinds`) after blocks, repeats
and variables are expanded, so here they are plain lists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Gt, Len
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from archspec.language.graph import NAME

Scalar = int | float | bool | str
InputShape = Annotated[tuple[Annotated[int, Strict(), Gt(0)], ...], Len(1, 4)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _identifier(name: str, what: str) -> str:
    """Variable, argument and block names only name values in expressions (never a
    module), so torch's attribute names (`half`, `float`) are fine here."""
    if not NAME.match(name):
        raise ValueError(f"{what} names are words of letters, digits and _; received '{name}'")
    if name[0].isdigit():
        raise ValueError(f"{what} names cannot start with a digit; received '{name}'")
    return name


class InputModel(Model):
    """An input declared with its layout: `{shape: [196, 768], layout: sequence}`."""

    shape: InputShape = Field(
        description="The input's shape without the batch axis.", examples=[[196, 768]]
    )
    layout: Literal["grid", "sequence", "flat", "tensor"] | None = Field(
        None,
        description="How its axes are read: grid [C, *spatial], sequence [T, D], flat [D] "
        "or another tensor; default: flat for [D], else grid.",
        examples=["sequence"],
    )
    dtype: Literal["float", "int"] = Field(
        "float",
        description="float values, or int token ids (then `vocab` is required and the "
        "first layer reading it is an `embedding`).",
        examples=["int"],
    )
    vocab: Annotated[int, Strict(), Gt(0)] | None = Field(
        None,
        description="For int token ids: the number of distinct ids (each id is in [0, vocab)).",
        examples=[30522],
    )

    @model_validator(mode="after")
    def _ids(self) -> InputModel:
        if self.dtype == "int" and self.vocab is None:
            raise PydanticCustomError(
                "int_needs_vocab",
                "an int input (token ids) needs `vocab`, the number of distinct ids",
                {"hint": "add e.g. `vocab: 10000`"},
            )
        if self.dtype == "float" and self.vocab is not None:
            raise PydanticCustomError(
                "vocab_needs_int",
                "`vocab` is for token ids; this input is float",
                {"hint": "add `dtype: int`, or remove `vocab`"},
            )
        return self


class BlockModel(Model):
    """A reusable sub-network with arguments (``null`` default: required)."""

    args: dict[str, Scalar | None] = Field(
        default_factory=dict,
        description="Arguments and defaults (null: required).",
        examples=[{"depth": None, "stride": 1}],
    )
    layers: Annotated[list[Any], Len(1)] = Field(
        description="The block's layers; `from: input` reads its input.", examples=[["relu"]]
    )
    output: str | None = Field(
        None,
        description="The layer whose result the block returns; default: its last layer.",
        examples=["relu2"],
    )

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _identifier(name, "argument")
        return value


class DeclaredVar(Model):
    """A variable with the values it may take (``archspec fit`` keeps to them)."""

    value: Scalar = Field(
        description="The variable's value (a number or an expression).", examples=[32, "base * 2"]
    )
    multiple_of: Annotated[int, Strict(), Gt(0)] | None = Field(
        None,
        description="The value must be a multiple of this (e.g. 8 for channel counts).",
        examples=[8],
    )
    min: int | float | None = Field(None, description="The smallest value allowed.", examples=[16])
    max: int | float | None = Field(None, description="The largest value allowed.", examples=[256])


def _var_form(value: Any) -> str:
    return "declared" if isinstance(value, dict) else "plain"


# A mapping is a declaration, anything else a plain value: errors name only that form.
Variable = Annotated[
    Annotated[Scalar, Tag("plain")] | Annotated[DeclaredVar, Tag("declared")],
    Discriminator(_var_form),
]


def _input_form(value: Any) -> str:
    return "declared" if isinstance(value, dict) else "shape"


# `input: [3, 32, 32]` or `input: {shape: [50, 16], layout: sequence}`, chosen by type, so
# a bad shape is told about its shape, not that it is no mapping.
InputEntry = Annotated[
    Annotated[InputShape, Tag("shape")] | Annotated[InputModel, Tag("declared")],
    Discriminator(_input_form),
]


def _block_form(value: Any) -> str:
    return "layers" if isinstance(value, list) else "block"


# A block is a mapping (args/layers/output) or just its list of layers; the form is chosen
# by the value's type, so a broken mapping is not also told it "must be a valid list".
BlockEntry = Annotated[
    Annotated[BlockModel, Tag("block")] | Annotated[list[Any], Len(1), Tag("layers")],
    Discriminator(_block_form),
]


class SpecModel(Model):
    """A network: its input, its layers, and optionally how to train it."""

    name: str | None = Field(
        None, description="Network name; default: the file name.", examples=["mnist-cnn"]
    )
    description: str = Field(
        "", description="Free text about the network.", examples=["LeNet-5 on 32×32 digits"]
    )
    extends: str | None = Field(
        None, description="Another spec file this one overrides.", examples=["mnist_cnn.yaml"]
    )
    vars: dict[str, Variable] = Field(
        default_factory=dict,
        description="Variables for expressions: a value, or `{value, multiple_of, min, max}`.",
        examples=[{"width": 32, "deep": True}],
    )
    input: InputEntry | None = Field(
        None,
        description="[channels, *spatial]: [C, L], [C, H, W], [C, D, H, W] or [features]; "
        "or {shape, layout} for a sequence [T, D], {shape: [T], dtype: int, vocab: N} for "
        "token ids. Exactly one of `input:` and `inputs:`.",
        examples=[[1, 28, 28], [3, 128], {"shape": [50, 16], "layout": "sequence"}],
    )
    inputs: dict[str, InputEntry] | None = Field(
        None,
        description="Several named inputs, name → shape (or {shape, layout, dtype, vocab}); "
        "layers read one with `from: name`, and `Network.forward` takes them in this order.",
        examples=[{"image": [3, 224, 224], "meta": [12]}],
    )
    blocks: dict[str, BlockEntry] = Field(
        default_factory=dict,
        description="Sub-networks, used by name like a kind.",
        examples=[{"unit": ["relu"]}],
    )
    layers: Annotated[list[Any], Len(1)] = Field(
        description="The layers, in order.", examples=[["flatten", {"dense": 10}]]
    )
    output: str | None = Field(
        None,
        description="The layer that is the network's output; default: the last one.",
        examples=["fc"],
    )
    outputs: Annotated[list[str], Len(1)] | None = Field(
        None,
        description="The layers (or outputs of a split) the network returns, in order; "
        "instead of `output:`.",
        examples=[["logits", "boxes"]],
    )
    train: dict[str, Any] | None = Field(
        None,
        description="How `archspec train` trains it.",
        examples=[{"data": {"dataset": "mnist"}}],
    )  # validated separately as TrainConfig

    @field_validator("output", mode="before")
    @classmethod
    def _one_output(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise PydanticCustomError(
                "one_output",
                "`output:` names one layer; received a list of {count} names",
                {
                    "count": len(value),
                    "hint": "to return several, write `outputs: [a, b]` instead",
                },
            )
        return value

    @field_validator("vars")
    @classmethod
    def _vars(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _identifier(name, "variable")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in value or {}:
            _identifier(name, "input")
            if name == "input":
                raise ValueError(
                    "'input' names the one input of `input:`; name each of `inputs:` "
                    "after what it holds (image, ids…)"
                )
        if value is not None and not value:
            raise ValueError("inputs needs at least one `name: shape`")
        return value

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            _identifier(name, "block")
        return value


__all__ = ["BlockModel", "DeclaredVar", "InputModel", "InputShape", "SpecModel"]
