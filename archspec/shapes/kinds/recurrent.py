"""``lstm`` and ``gru``: recurrent stacks over ``[T, D]`` sequences (torch's, batch first).

Parameters are exactly torch's ``nn.LSTM``/``nn.GRU`` (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, then ``…_reverse`` and the next layers). ``return:
sequence`` gives every step's output ``[T, H·dirs]``; ``return: last`` gives the final
hidden state of the top layer ``[H·dirs]`` (forward and backward concatenated: torch's
``cat(h_n[-2], h_n[-1])``), what a classifier or a forecaster head reads.

Counting rule, with ``g`` gates (LSTM 4, GRU 3), hidden size ``H``, and the input size
``D`` of layer 0 or ``H·dirs`` of the layers above, per direction and layer::

    params = g·H·(in + H) [+ 2·g·H biases]
    MACs   = T · g·H·(in + H)          (the gate matrix products; element-wise ops uncounted)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from annotated_types import Ge, Lt
from pydantic import AliasChoices
from pydantic import Field as PydanticField

from archspec.shapes.geometry import RecurrentGeometry
from archspec.shapes.kinds.attention import need_sequence
from archspec.shapes.kinds.base import Bool, In, Infer, Kind, Out, Params, PosInt, ShapeError
from archspec.shapes.plan import Layout, PlanNode

GATES = {"lstm": 4, "gru": 3}


class RecurrentParams(Params):
    """A stack of recurrent layers (torch's nn.LSTM / nn.GRU, batch first)."""

    shorthand = "units"
    units: PosInt = PydanticField(
        validation_alias=AliasChoices("units", "hidden"),
        description="Hidden size H of each layer and direction; `hidden` also accepted.",
        examples=[32, 128],
    )
    layers: PosInt = PydanticField(1, description="Stacked layers.", examples=[1, 2])
    bidirectional: Bool = PydanticField(
        False, description="Also run backwards in time; doubles the features.", examples=[True]
    )
    returns: Literal["sequence", "last"] = PydanticField(
        "sequence",
        validation_alias=AliasChoices("returns", "return"),
        description="sequence: every step's output [T, H·dirs]; last: the top layer's final "
        "hidden state [H·dirs]; `return` also accepted.",
        examples=["sequence", "last"],
    )
    dropout: Annotated[float, Ge(0), Lt(1)] = PydanticField(
        0.0,
        description="Dropout between stacked layers while training, in [0, 1); needs layers > 1.",
        examples=[0.0, 0.2],
    )
    bias: Bool = PydanticField(True, description="Learn the gate biases.", examples=[True])


def infer_recurrent(kind: str) -> Infer:
    gates = GATES[kind]

    def infer(p: RecurrentParams, ins: Sequence[In]) -> Out:
        t, d = need_sequence(ins[0], kind)
        if p.dropout > 0 and p.layers == 1:
            raise ShapeError(
                f"{kind} dropout acts between stacked layers, and there is only one",
                "set `layers:` above 1, or add a `dropout` layer after it",
                field="dropout",
            )
        h, dirs = p.units, 2 if p.bidirectional else 1
        weights = 0
        for layer in range(p.layers):
            features = d if layer == 0 else h * dirs
            weights += dirs * gates * h * (features + h)
        params = weights + (p.layers * dirs * 2 * gates * h if p.bias else 0)
        shape = (h * dirs,) if p.returns == "last" else (t, h * dirs)
        geometry = RecurrentGeometry(d, h, p.layers, p.bidirectional, p.returns == "last")
        layout: Layout = "flat" if p.returns == "last" else "sequence"
        return Out(
            shape=shape,
            field=None,
            params=params,
            macs=t * weights,
            geometry=geometry,
            layout=layout,
        )

    return infer


def describe_recurrent(node: PlanNode) -> str:
    assert isinstance(node.params, RecurrentParams)
    p = node.params
    layers = f" ×{p.layers}" if p.layers > 1 else ""
    both = " bidirectional" if p.bidirectional else ""
    return f"{p.units}{layers}{both} → {p.returns}"


KINDS = (
    Kind(
        "lstm",
        RecurrentParams,
        infer_recurrent("lstm"),
        "LSTM layers over a [T, D] sequence (torch's nn.LSTM, batch first).",
        describe=describe_recurrent,
    ),
    Kind(
        "gru",
        RecurrentParams,
        infer_recurrent("gru"),
        "GRU layers over a [T, D] sequence (torch's nn.GRU, batch first).",
        describe=describe_recurrent,
    ),
)
