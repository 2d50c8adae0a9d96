"""The Plan: every node of a network with its shapes, parameters, MACs and receptive field.

Pure data, produced by :func:`archspec.shapes.infer.infer` and consumed by the
builder and the reports. Shapes are channels-first and exclude the batch axis.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from archspec.errors import Location
from archspec.shapes.arith import Field
from archspec.shapes.geometry import Geometry
from archspec.shapes.params import Params

Shape = tuple[int, ...]
# How a tensor's axes are read (no batch axis): a grid [C, *spatial] (channels first), a
# sequence [T, D] (tokens × features), a flat vector [D], or any other tensor (e.g. a grid
# permuted to channels-last). Set by the input declaration and by the layers that change it.
Layout = Literal["grid", "sequence", "flat", "tensor"]
LAYOUTS: tuple[Layout, ...] = ("grid", "sequence", "flat", "tensor")


def default_layout(shape: Shape) -> Layout:
    """The layout a bare shape declares: ``[D]`` is flat, anything longer a grid."""
    return "flat" if len(shape) == 1 else "grid"


def describe_layout(layout: Layout, shape: Shape) -> str:
    """``a grid 32×14×14``, ``a sequence 196×768`` — how errors say what a layer received."""
    what = "flat vector" if layout == "flat" else layout
    return f"a {what} {format_shape(shape)}"


RField = tuple[Field, ...] | None  # None: the node sees the whole input (after flatten, dense…)


def numel(shape: Shape) -> int:
    """Elements in one sample of ``shape``.

    >>> numel((64, 7, 7))
    3136
    """
    out = 1
    for dim in shape:
        out *= dim
    return out


def format_shape(shape: Shape) -> str:
    """``32×14×14``; a scalar-per-sample shape prints as ``1``."""
    return "×".join(str(d) for d in shape) or "1"


@dataclass(frozen=True)
class Output:
    """One output of a layer with several (``split: ...`` with ``outputs: [a, b]``)."""

    name: str  # as written in `outputs:`; `from: a` reads it
    shape: Shape
    layout: Layout


@dataclass(frozen=True)
class PlanInput:
    """One input of the network: ``input:`` is the one called ``input``; ``inputs:`` names
    several (``image``, ``meta``), read with ``from: image``."""

    name: str
    shape: Shape
    layout: Layout
    vocab: int | None = None  # int token ids in [0, vocab); None: float values

    @property
    def dtype(self) -> str:
        return "float" if self.vocab is None else "int"


@dataclass(frozen=True)
class PlanNode:
    """One layer of the network after inference."""

    name: str  # dotted, e.g. "stage2.0.conv1"; also the builder's module path
    kind: str
    params: Params  # the kind's validated Params model
    inputs: tuple[str, ...]  # producer node names ("input" is the network input)
    in_shapes: tuple[Shape, ...]
    shape: Shape
    num_params: int
    macs: int
    field: RField
    geometry: Geometry | None = None  # resolved facts for the builder (None: nothing to resolve)
    location: Location | None = None
    group: tuple[str, ...] = ()  # enclosing block instances, outermost first
    layout: Layout = "grid"  # how the output's axes are read
    # several outputs (split, chunk): each one's name, shape and layout; ``shape`` is then
    # all of them together. () for a layer with one output.
    outputs: tuple[Output, ...] = ()
    # for each input, which output of its producer it reads (0 for one with one output);
    # () when every input is a producer's only output
    ports: tuple[int, ...] = ()

    @property
    def shapes(self) -> tuple[Shape, ...]:
        """The shape of each output (one for most layers)."""
        return tuple(o.shape for o in self.outputs) if self.outputs else (self.shape,)

    def port(self, i: int) -> int:
        """Which output of its producer input ``i`` reads."""
        return self.ports[i] if self.ports else 0

    def shape_text(self) -> str:
        """``32×14×14``, or ``a 58×28×28 · b 58×28×28`` for a layer with several outputs."""
        if not self.outputs:
            return format_shape(self.shape)
        return " · ".join(f"{o.name} {format_shape(o.shape)}" for o in self.outputs)


@dataclass(frozen=True)
class Plan:
    name: str
    input_shape: Shape
    nodes: tuple[PlanNode, ...]  # topological order
    output: str
    input_layout: Layout = "grid"
    output_port: int = 0  # which output of the output node (one of a split's)
    # every input, in `inputs:` order (() : the one `input`, float, of input_shape)
    inputs: tuple[PlanInput, ...] = ()
    # every output the network returns as (node, which of its outputs), in `outputs:` order
    # (() : the one `output`)
    returns: tuple[tuple[str, int], ...] = ()

    @property
    def all_inputs(self) -> tuple[PlanInput, ...]:
        return self.inputs or (PlanInput("input", self.input_shape, self.input_layout),)

    @property
    def all_outputs(self) -> tuple[tuple[str, int], ...]:
        return self.returns or ((self.output, self.output_port),)

    @property
    def several_io(self) -> bool:
        """Several inputs or several outputs (what training does not take yet)."""
        return len(self.all_inputs) > 1 or len(self.all_outputs) > 1

    @property
    def plain_io(self) -> bool:
        """One float input called ``input`` and one output: what every report showed
        before named inputs (their text and JSON stay as they were)."""
        inputs = self.all_inputs
        return not self.several_io and inputs[0].name == "input" and inputs[0].vocab is None

    def output_label(self, i: int) -> str:
        """How output ``i`` is named: its node, or the split output it is."""
        name, port = self.all_outputs[i]
        node = self.node(name)
        return node.outputs[port].name if node.outputs else name

    def shape_of(self, name: str, port: int = 0) -> Shape:
        """The shape of output ``port`` of node (or input) ``name``."""
        for inp in self.all_inputs:
            if inp.name == name:
                return inp.shape
        return self.node(name).shapes[port]

    def ancestors(self, name: str) -> list[PlanNode]:
        """``name`` and every node it reads, directly or not (topological order)."""
        by_name = {node.name: node for node in self.nodes}
        live: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in live or current not in by_name:
                continue
            live.add(current)
            stack.extend(by_name[current].inputs)
        return [node for node in self.nodes if node.name in live]

    def origins(self, name: str) -> set[str]:
        """The network inputs whose values reach node ``name``."""
        inputs = {inp.name for inp in self.all_inputs}
        found = {x for node in self.ancestors(name) for x in node.inputs if x in inputs}
        return found | ({name} & inputs)

    @property
    def total_params(self) -> int:
        return sum(node.num_params for node in self.nodes)

    @property
    def total_macs(self) -> int:
        return sum(node.macs for node in self.nodes)

    @property
    def output_shape(self) -> Shape:
        return self.node(self.output).shapes[self.output_port]

    @property
    def is_chain(self) -> bool:
        """True when every node reads only its predecessor (an ``nn.Sequential``)."""
        previous = "input"
        for node in self.nodes:
            if node.inputs != (previous,) or node.outputs:
                return False
            previous = node.name
        return previous == self.output

    def node(self, name: str) -> PlanNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def __iter__(self) -> Iterator[PlanNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def to_dict(self) -> dict[str, Any]:
        several: dict[str, Any] = {}
        if not self.plain_io:
            several = {
                "inputs": {
                    i.name: {"shape": list(i.shape), "layout": i.layout, "dtype": i.dtype}
                    | ({"vocab": i.vocab} if i.vocab is not None else {})
                    for i in self.all_inputs
                },
                "outputs": {
                    self.output_label(k): list(self.shape_of(name, port))
                    for k, (name, port) in enumerate(self.all_outputs)
                },
            }
        return {
            "name": self.name,
            "input": list(self.input_shape),
            "output": list(self.output_shape),
            **several,
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "layers": [_node_dict(node) for node in self.nodes],
        }


def _number(value: int | Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def field_dict(rf: RField) -> dict[str, Any]:
    if rf is None:
        return {"global": True}
    return {
        "global": False,
        "size": [_number(axis.size) for axis in rf],
        "jump": [_number(axis.jump) for axis in rf],
        "start": [_number(axis.start) for axis in rf],
    }


def _node_dict(node: PlanNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "kind": node.kind,
        "inputs": list(node.inputs),
        "shape": list(node.shape),
        **({"outputs": {o.name: list(o.shape) for o in node.outputs}} if node.outputs else {}),
        **({"ports": list(node.ports)} if node.ports else {}),
        "layout": node.layout,
        "params": node.num_params,
        "macs": node.macs,
        "receptive_field": field_dict(node.field),
        "line": node.location.line if node.location else None,
    }
