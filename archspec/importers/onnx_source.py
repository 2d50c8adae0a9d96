"""An ONNX file → ops: parsed with the ``onnx`` package as data; the model never runs.

Before any tensor is turned into an array the file is checked: its size, that it parses as
a ``ModelProto`` with a graph, the node count (``--max-layers``), and every initializer and
``Constant`` tensor — refused if it points at external data (a path the file chooses: never
opened), declares a negative or enormous shape, stores a different amount of data than its
shape declares, or has a type that is no number. The graph's nodes (topologically ordered,
as ONNX requires) map to kinds; weights (initializers) are kept as numpy arrays under torch's
``state_dict`` keys of the layer they belong to, e.g. ``Conv`` → ``weight``/``bias``,
``BatchNormalization`` → ``weight``/``bias``/``running_mean``/``running_var``.

Names: torch's TorchScript exporter names nodes by their module calls
(``/layer1/layer1.0/conv1/Conv``); those become the op's scopes and module path, so fold.py
finds blocks as it does for torch modules. The dynamo exporter's ``pkg.torch.onnx.name_scopes``
and ``class_hierarchy`` metadata are used when present. Weighted layers are named after their
initializers (``layer1.0.conv1.weight`` → ``layer1.0.conv1``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from archspec.importers.graph import (
    INPUT,
    Imported,
    ImportFailed,
    Op,
    Scope,
    Unsupported,
    reaching,
)

MAX_BYTES = 2**31 - 1  # protobuf's own limit for one message
MAX_TENSOR_BYTES = 2**31
HOW = "archspec reads ONNX files as data; export the model again, or check where it came from"

# dtype → bytes per element (numbers only; strings, complex and 4/8-bit floats are refused)
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_FLOATS = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16: accepted as weights
_TYPED = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")


class Skip(Exception):
    """This node cannot be mapped: ``what`` says why."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _NoShape(Skip):
    """A value's shape is unknown: after an unsupported op, a consequence, not listed."""


@dataclass
class Read:
    """An ONNX file's ops, and the weights of each weighted op by its path."""

    imported: Imported
    tensors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


def read(path: Path, partial: bool, name: str | None, max_layers: int) -> Read:
    model = load(path, max_layers)
    label = name or re.sub(r"[^A-Za-z0-9_-]", "-", path.stem).strip("-") or "onnx-model"
    return _Mapper(model, str(path), label, partial).run()


# --- refusing hostile files ----------------------------------------------------------------


def load(path: Path, max_layers: int) -> onnx.ModelProto:
    """Parse ``path`` (no external data is read) and check every tensor's header."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFailed([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    if size > MAX_BYTES:
        raise ImportFailed(
            [f"{path}: {size:,} bytes is more than one ONNX protobuf can hold ({MAX_BYTES:,})"],
            "weights that large need external data, which archspec does not read",
        )
    try:
        model = onnx.load_model(str(path), format="protobuf", load_external_data=False)
    except Exception as exc:  # DecodeError, truncated file, recursion limit …
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ImportFailed(
            [f"{path}: not an ONNX model ({first})"], "give a .onnx file torch.onnx.export wrote"
        ) from exc
    graph = model.graph
    if not model.HasField("graph") or not graph.node:
        raise ImportFailed([f"{path}: not an ONNX model (no graph nodes)"], "give a .onnx file")
    if not _all_text(model):
        raise ImportFailed(
            [f"{path}: not an ONNX model (a name or attribute string is not UTF-8 text)"],
            "give a .onnx file torch.onnx.export wrote",
        )
    if len(graph.node) > max_layers:
        raise ImportFailed(
            [f"{path}: {len(graph.node):,} nodes is more than --max-layers {max_layers:,}"],
            "raise --max-layers if the model really is that large",
        )
    if graph.sparse_initializer:
        raise ImportFailed(
            [f"{path}: sparse initializer '{_safe(graph.sparse_initializer[0].values.name)}'"],
            "archspec imports dense initializers only",
        )
    for tensor in graph.initializer:
        _check_tensor(tensor, f"{path}: initializer '{_safe(tensor.name)}'", size)
    for node in graph.node:
        for attr in node.attribute:
            tensors = [attr.t] if attr.HasField("t") else list(attr.tensors)
            for tensor in tensors:
                where = (
                    f"{path}: node '{_safe(node.name)}' ({_safe(node.op_type)}) "
                    f"attribute '{_safe(attr.name)}'"
                )
                _check_tensor(tensor, where, size)
    return model


def _all_text(model: onnx.ModelProto) -> bool:
    """Whether every string the importer reads is text: protobuf hands a string field holding
    invalid UTF-8 back as bytes, and string attributes (``auto_pad``) are bytes to decode."""
    graph = model.graph
    names: list[str | bytes] = [graph.name]
    for node in graph.node:
        names += [node.name, node.op_type, node.domain, *node.input, *node.output]
        names += [p.key for p in node.metadata_props] + [p.value for p in node.metadata_props]
        names += [a.name for a in node.attribute]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.STRING:
                try:
                    attr.s.decode("utf-8")
                except UnicodeDecodeError:
                    return False
    for tensor in graph.initializer:
        names += [tensor.name, *(e.key for e in tensor.external_data)]
        names += [e.value for e in tensor.external_data]
    names += [v.name for v in (*graph.input, *graph.output, *graph.value_info)]
    for value in (*graph.input, *graph.output):
        names += [d.dim_param for d in value.type.tensor_type.shape.dim]
    names += [o.domain for o in model.opset_import]
    return all(isinstance(name, str) for name in names)


def _safe(text: str, limit: int = 120) -> str:
    """A name from the file, fit for one line: control characters escaped, length capped.

    >>> _safe("evil\\nname")
    'evil\\\\nname'
    """
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_tensor(tensor: onnx.TensorProto, where: str, file_size: int) -> None:
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        target = next((e.value for e in tensor.external_data if e.key == "location"), "?")
        raise ImportFailed(
            [f"{where}: refers to external data '{_safe(target)}' (not opened)"],
            "archspec reads only tensors stored in the .onnx file; export without external data",
        )
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ImportFailed([f"{where}: declares a negative dimension {dims}"], HOW)
    itemsize = _ITEMSIZE.get(tensor.data_type)
    if itemsize is None:
        type_name = (
            onnx.TensorProto.DataType.Name(tensor.data_type)
            if tensor.data_type in (onnx.TensorProto.DataType.values())
            else str(tensor.data_type)
        )
        raise ImportFailed([f"{where}: has element type {type_name}, not a number"], HOW)
    count = math.prod(dims)
    if count * itemsize > min(MAX_TENSOR_BYTES, file_size):
        raise ImportFailed(
            [
                f"{where}: declares shape {dims} ({count * itemsize:,} bytes), more than the "
                f"file's {file_size:,} bytes could hold"
            ],
            HOW,
        )
    if tensor.raw_data:
        stored = len(tensor.raw_data) // itemsize
        exact = len(tensor.raw_data) == count * itemsize
    else:
        stored = max(len(getattr(tensor, name)) for name in _TYPED)
        exact = stored == count
    if not exact:
        raise ImportFailed(
            [f"{where}: declares shape {dims} ({count:,} values) but stores {stored:,}"], HOW
        )


# --- mapping ------------------------------------------------------------------------------


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[attr.name] = None  # a subgraph: the op is unsupported anyway
        elif attr.type in (onnx.AttributeProto.TENSOR, onnx.AttributeProto.TENSORS):
            out[attr.name] = attr  # read through _const only
        else:
            out[attr.name] = onnx.helper.get_attribute_value(attr)
    return out


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _short(value: float) -> float:
    """A float32 attribute as written (``9.999999747e-06`` → ``1e-05``)."""
    return float(str(np.float32(value)))


@dataclass
class _Node:
    """A node's place: its container scopes and its own module path ("" for a function)."""

    scopes: tuple[Scope, ...]
    leaf: str


def _places(graph: onnx.GraphProto) -> list[_Node]:
    """Each node's chain of module calls, from its name or the dynamo exporter's metadata."""
    chains: list[list[tuple[str, str]]] = []  # (path, type) per scope, innermost last
    for node in graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        chain: list[tuple[str, str]] = []
        if "pkg.torch.onnx.name_scopes" in meta:
            chain = _dynamo_chain(meta)
        elif node.name.startswith("/"):
            segments = node.name[1:].split("/")[:-1]
            previous, path = "", ""
            for segment in segments:
                if previous and segment.startswith(previous + "."):
                    path = path + segment[len(previous) :]
                else:
                    path = f"{path}.{segment}" if path else segment
                previous = segment
                chain.append((path, ""))
        chains.append(chain)
    parents = {path for chain in chains for path, _ in chain[:-1]}
    places = []
    for chain in chains:
        leaf = chain[-1][0] if chain and chain[-1][0] not in parents else ""
        containers = chain[:-1] if leaf else chain
        scopes = tuple(Scope(path, path, kind or _type(path)) for path, kind in containers)
        places.append(_Node(scopes, leaf))
    return places


def _dynamo_chain(meta: dict[str, str]) -> list[tuple[str, str]]:
    import ast

    texts = (meta["pkg.torch.onnx.name_scopes"], meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
    if any(len(text) > 10_000 for text in texts):
        return []
    try:  # literals only: ast.literal_eval never calls anything
        scopes, classes = (ast.literal_eval(text) for text in texts)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return []
    if not isinstance(scopes, list) or not isinstance(classes, list):
        return []
    pairs = list(zip(scopes, classes + [""] * len(scopes), strict=False))[1:-1]
    return [(str(p), str(c).rsplit(".", 1)[-1]) for p, c in pairs if p]


def _type(path: str) -> str:
    """A block's stand-in for its class (TorchScript names carry none): its attribute without
    a trailing number; a numbered child (``layer1.0``) is ``<parent>_block``."""
    parts = path.split(".")
    last = parts[-1]
    if last.isdigit():
        parent = next((p for p in reversed(parts[:-1]) if not p.isdigit()), "")
        return f"{re.sub(r'[0-9_]+$', '', parent) or 'unit'}_block"
    return re.sub(r"[0-9_]+$", "", last) or last


class _Mapper:
    def __init__(self, model: onnx.ModelProto, file: str, name: str, partial: bool) -> None:
        self.model, self.graph, self.file = model, model.graph, file
        self.name, self.partial = name, partial
        self.consts: dict[str, onnx.TensorProto] = {t.name: t for t in self.graph.initializer}
        self.arrays: dict[str, np.ndarray] = {}
        self.keys: dict[str, str] = {}  # value name → op key (or INPUT)
        self.ops: list[Op] = []
        self.tensors: dict[str, dict[str, np.ndarray]] = {}
        self.used: set[str] = set()  # initializers read (weights, shapes, bounds)
        self.held: set[str] = set()  # value names a layer holds
        self.origin: dict[str, str] = {}  # Identity output → the initializer it copies
        self.pending: list[str] = []  # initializers the node being mapped holds
        self.sources: dict[str, list[str]] = {}  # weighted op's path → its initializers
        self.unsupported: list[Unsupported] = []
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.graph.node):
            for value in node.input:
                self.consumers[value].append(i)
        self.outputs = {o.name for o in self.graph.output}
        self.fused: set[int] = set()  # nodes folded into an earlier layer (MatMul's Add)
        self.shapes: dict[str, tuple[int, ...]] = {}

    def run(self) -> Read:
        input_shape = self._input()
        self._infer_shapes()
        places = _places(self.graph)
        stopped: Unsupported | None = None
        for i, node in enumerate(self.graph.node):
            if i in self.fused:
                continue
            try:
                try:
                    self._node(i, node, places[i])
                except (KeyError, IndexError, ValueError, TypeError) as exc:  # malformed
                    raise Skip(f"malformed ({type(exc).__name__}: {exc})") from exc
            except Skip as exc:
                if isinstance(exc, _NoShape) and self.unsupported:
                    self._pass_through(node)
                    continue
                where = _safe(node.name) or f"node {i}"
                what = f"{_safe(node.op_type, 60)}: {_safe(exc.what, 200)}"
                self.unsupported.append(Unsupported(where, what))
                if self.partial:
                    stopped = self.unsupported[-1]
                    break
                self._pass_through(node)
        if stopped is not None:
            if not self.ops:
                raise ImportFailed([stopped.line()], "nothing before it can be imported")
            ops = reaching(self.ops, self.ops[-1].key)
            imported = Imported(self.name, input_shape, ops, ops[-1].key, [stopped])
        else:
            output = self._output()
            ops = reaching(self.ops, output) if output and not self.unsupported else self.ops
            imported = Imported(self.name, input_shape, ops, output, self.unsupported)
        kept = {op.path for op in imported.ops if op.weights}
        tensors = {path: t for path, t in self.tensors.items() if path in kept}
        held = {name for path in kept for name in self.sources.get(path, [])}
        dropped = {name for names in self.sources.values() for name in names} - held
        left = [
            t.name
            for t in self.graph.initializer
            if t.name in dropped
            or (
                t.name not in self.used
                and t.name not in held
                and (t.data_type in _FLOATS or t.name not in self.consumers)
            )
        ]
        return Read(imported, tensors, left)

    def _pass_through(self, node: onnx.NodeProto) -> None:
        """Let later nodes read an unmapped node's first input instead (nothing is written
        then; this only lets them be checked and listed)."""
        ins = [v for v in node.input if v in self.keys]
        for out in node.output:
            if ins:
                self.keys[out] = self.keys[ins[0]]

    # --- graph edges

    def _input(self) -> tuple[int, ...]:
        inputs = [v for v in self.graph.input if v.name not in self.consts]
        if len(inputs) != 1:
            raise ImportFailed(
                [f"{self.file}: the graph has {len(inputs)} inputs (archspec takes one)"]
            )
        (value,) = inputs
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type") or tensor_type.elem_type not in _FLOATS:
            raise ImportFailed([f"{self.file}: input '{_safe(value.name)}' is not a float tensor"])
        dims = list(tensor_type.shape.dim)
        if len(dims) < 2:
            raise ImportFailed(
                [
                    f"{self.file}: input '{_safe(value.name)}' has rank {len(dims)}; archspec "
                    "expects a batch axis and at least one more"
                ]
            )
        shape = []
        for axis, dim in enumerate(dims[1:], start=1):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                raise ImportFailed(
                    [
                        f"{self.file}: input '{_safe(value.name)}' axis {axis} has no fixed size "
                        f"({_safe(dim.dim_param) or '?'})"
                    ],
                    "export with a fixed input shape (only the batch axis may vary)",
                )
            shape.append(int(dim.dim_value))
        self.keys[value.name] = INPUT
        batch = dims[0].dim_value if dims[0].HasField("dim_value") else -1
        self.shapes[value.name] = (batch, *shape)
        return tuple(shape)

    def _infer_shapes(self) -> None:
        """Every value's shape by onnx's shape inference (C++; reads, never runs, the graph)."""
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=False)
        except Exception:  # an unknown op: the shapes it would give stay unknown
            return
        for value in [*inferred.graph.value_info, *inferred.graph.output]:
            tensor_type = value.type.tensor_type
            if not tensor_type.HasField("shape"):
                continue
            dims = tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims[1:]):
                batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") else -1
                self.shapes[value.name] = (batch, *(int(d.dim_value) for d in dims[1:]))

    def _output(self) -> str:
        outputs = list(self.graph.output)
        if len(outputs) != 1:
            self.unsupported.append(
                Unsupported("<graph>", f"{len(outputs)} outputs (archspec has one)")
            )
            return ""
        key = self.keys.get(outputs[0].name, "")
        if not key or key == INPUT:
            if not self.unsupported:
                self.unsupported.append(
                    Unsupported(
                        "<graph>", f"output '{_safe(outputs[0].name)}' is not computed by a layer"
                    )
                )
            return ""
        return key

    # --- values

    def _is_const(self, name: str) -> bool:
        return name in self.consts

    def _array(self, name: str, what: str, floats: bool = True) -> np.ndarray:
        if name not in self.consts:
            raise Skip(f"its {what} '{name}' is computed, not a stored tensor")
        tensor = self.consts[name]
        if floats and tensor.data_type not in _FLOATS:
            kind = onnx.TensorProto.DataType.Name(tensor.data_type)
            raise Skip(f"its {what} '{name}' holds {kind}, not floats")
        self.used.add(self.origin.get(name, name))
        if name not in self.arrays:
            self.arrays[name] = numpy_helper.to_array(tensor)
        array = self.arrays[name]
        return array.astype(np.float32) if floats else array

    def _weight(self, name: str, what: str) -> np.ndarray:
        """A float initializer a layer holds; one held by two layers is a shared weight."""
        array = self._array(name, what)
        if name in self.held:
            raise Skip(f"shares its {what} '{name}' with another layer (shared weights)")
        self.held.add(name)
        self.pending.append(self.origin.get(name, name))
        return array

    def _value(self, name: str) -> str:
        if name not in self.keys:
            raise Skip(f"reads '{name}', which no imported layer computes")
        return self.keys[name]

    def _ints(self, node: onnx.NodeProto, index: int, attrs: dict[str, Any], attr: str) -> Any:
        """An int list given as input ``index`` (newer opsets) or attribute ``attr``."""
        if len(node.input) > index and node.input[index]:
            return [int(v) for v in self._array(node.input[index], attr, floats=False).ravel()]
        return attrs.get(attr)

    def _scalar(self, node: onnx.NodeProto, index: int, attrs: dict[str, Any], attr: str) -> Any:
        if len(node.input) > index and node.input[index]:
            values = self._array(node.input[index], attr).ravel()
            if values.size != 1:
                raise Skip(f"{attr} is not a single number")
            return float(values[0])
        return attrs.get(attr)

    def _shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise _NoShape(f"the shape of '{name}' is unknown (shape inference could not follow)")
        return self.shapes[name]

    # --- nodes

    def _node(self, i: int, node: onnx.NodeProto, place: _Node) -> None:
        kind = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise Skip(f"operator of domain '{node.domain}' has no archspec kind")
        if kind == "Constant":
            self._constant(node)
            return
        if kind == "Identity" or (kind == "Concat" and len(node.input) == 1):  # DenseNet: cat([x])
            (source,) = node.input[:1]
            if self._is_const(source):
                self.consts[node.output[0]] = self.consts[source]
                self.origin[node.output[0]] = self.origin.get(source, source)
            else:
                self.keys[node.output[0]] = self._value(source)
            return
        rule = RULES.get(kind)
        if rule is None:
            raise Skip("has no archspec kind")
        if len([o for o in node.output if o]) > 1 and kind not in ("Dropout",):
            raise Skip("with more than one output")
        self.pending = []
        mapped = rule(self, i, node, _attrs(node))
        inputs = [self._value(name) for name in mapped.inputs]
        for extra in mapped.before:  # a pad layer the conv needs first
            key = f"n{len(self.ops)}"
            self.ops.append(Op(key, extra[0], extra[1], inputs, "", place.scopes))
            inputs = [key]
        path = place.leaf
        if mapped.tensors:
            path = self._path(mapped.source, place, node)
        key = f"n{len(self.ops)}"
        op = Op(key, mapped.kind, mapped.params, inputs, path, place.scopes, bool(mapped.tensors))
        if mapped.tensors:
            self.tensors[path] = mapped.tensors
            self.sources[path] = self.pending
        self.ops.append(op)
        self.keys[node.output[0]] = key
        for fused in mapped.fused:
            self.fused.add(fused)
            self.keys[self.graph.node[fused].output[0]] = key

    def _path(self, source: str, place: _Node, node: onnx.NodeProto) -> str:
        """A weighted layer's path: its weight's name without ``.weight``, else its module."""
        path = ""
        if source.endswith(".weight") and "::" not in source:
            path = source[: -len(".weight")]
        path = path or place.leaf or node.name.strip("/").replace("/", ".") or source
        base, n = path, 1
        while path in self.tensors:
            n += 1
            path = f"{base}@{n}"
        return path

    def _constant(self, node: onnx.NodeProto) -> None:
        attrs = {a.name: a for a in node.attribute}
        if "value" in attrs:
            self.consts[node.output[0]] = attrs["value"].t
            return
        for name in ("value_float", "value_floats", "value_int", "value_ints"):
            if name in attrs:
                value = onnx.helper.get_attribute_value(attrs[name])
                dtype = np.float32 if "float" in name else np.int64
                self.consts[node.output[0]] = numpy_helper.from_array(
                    np.asarray(value, dtype=dtype), node.output[0]
                )
                return
        raise Skip("of a kind archspec does not read (sparse, string)")

    def _opset(self) -> int:
        return next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 1)


@dataclass
class _Mapped:
    kind: str
    params: dict[str, Any]
    inputs: list[str]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""  # the weight's initializer name (names the layer)
    before: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fused: list[int] = field(default_factory=list)


Rule = Callable[[_Mapper, int, onnx.NodeProto, dict[str, Any]], _Mapped]


def _spatial_pads(
    m: _Mapper,
    node: onnx.NodeProto,
    attrs: dict[str, Any],
    kernel: list[int],
    stride: list[int],
    dilation: list[int],
) -> tuple[list[int], list[int]]:
    """(before, after) per spatial axis, from ``pads`` or ``auto_pad``."""
    rank = len(kernel)
    auto = _text(attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        size = m._shape(node.input[0])[2:]
        before, after = [], []
        for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small = total // 2
            before.append(small if auto == "SAME_UPPER" else total - small)
            after.append(total - before[-1])
        return before, after
    if auto == "VALID":
        return [0] * rank, [0] * rank
    pads = list(attrs.get("pads") or [0] * 2 * rank)
    if len(pads) != 2 * rank:
        raise Skip(f"pads {pads} do not match a kernel of rank {rank}")
    return pads[:rank], pads[rank:]


def _conv(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    weight = m._weight(node.input[1], "weight")
    if weight.ndim < 3:
        raise Skip(f"weight of rank {weight.ndim}")
    kernel = list(attrs.get("kernel_shape") or weight.shape[2:])
    rank = len(kernel)
    stride = list(attrs.get("strides") or [1] * rank)
    dilation = list(attrs.get("dilations") or [1] * rank)
    before, after = _spatial_pads(m, node, attrs, kernel, stride, dilation)
    tensors = {"weight": weight}
    if len(node.input) > 2 and node.input[2]:
        bias = m._weight(node.input[2], "bias")
        # torch's dynamo exporter writes a zero bias (named val_5 …) for a conv without one
        invented = not node.input[2].endswith(".bias") and not bias.any()
        if not invented:
            tensors["bias"] = bias
    params: dict[str, Any] = {
        "depth": int(weight.shape[0]),
        "kernel": tuple(kernel),
        "stride": tuple(stride),
        "padding": tuple(before),
        "dilation": tuple(dilation),
        "groups": int(attrs.get("group", 1)),
        "bias": "bias" in tensors,
    }
    pad: list[tuple[str, dict[str, Any]]] = []
    if before != after:  # asymmetric: a pad layer first
        pad = [("pad", {"before": tuple(before), "after": tuple(after)})]
        params["padding"] = (0,) * rank
    return _Mapped("conv", params, [node.input[0]], tensors, node.input[1], pad)


def _batchnorm(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    if attrs.get("training_mode", 0):
        raise Skip("in training mode")
    names = ("weight", "bias", "running_mean", "running_var")
    if len(node.input) != 5:
        raise Skip(f"with {len(node.input)} inputs")
    tensors = {key: m._weight(name, key) for key, name in zip(names, node.input[1:], strict=True)}
    momentum = round(1.0 - _short(attrs.get("momentum", 0.9)), 10)
    params = {"eps": _short(attrs.get("epsilon", 1e-5)), "momentum": momentum, "affine": True}
    return _Mapped("batchnorm", params, [node.input[0]], tensors, node.input[1])


def _gemm(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    if attrs.get("transA", 0):
        raise Skip("with transA (archspec's dense multiplies the input on the left)")
    weight = m._weight(node.input[1], "weight")
    if weight.ndim != 2:
        raise Skip(f"weight of rank {weight.ndim}")
    weight = weight if attrs.get("transB", 0) else weight.T
    weight = np.ascontiguousarray(weight * np.float32(attrs.get("alpha", 1.0)))
    tensors = {"weight": weight}
    if len(node.input) > 2 and node.input[2]:
        bias = m._weight(node.input[2], "bias") * np.float32(attrs.get("beta", 1.0))
        tensors["bias"] = _vector(bias, weight.shape[0])
    params = {"units": int(weight.shape[0]), "bias": "bias" in tensors}
    return _Mapped("dense", params, [node.input[0]], tensors, node.input[1])


def _vector(bias: np.ndarray, units: int) -> np.ndarray:
    try:
        return np.ascontiguousarray(np.broadcast_to(bias, (1, units)).reshape(units))
    except ValueError as exc:
        raise Skip(f"bias of shape {list(bias.shape)} for {units} units") from exc


def _matmul(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    if not m._is_const(node.input[1]):
        raise Skip("of two computed values (archspec's dense multiplies by a weight)")
    weight = m._weight(node.input[1], "weight")
    if weight.ndim != 2:
        raise Skip(f"weight of rank {weight.ndim}")
    tensors = {"weight": np.ascontiguousarray(weight.T)}
    fused: list[int] = []
    after = m.consumers.get(node.output[0], [])
    if len(after) == 1 and node.output[0] not in m.outputs:
        add = m.graph.node[after[0]]
        other = [v for v in add.input if v != node.output[0]]
        if add.op_type == "Add" and len(other) == 1 and m._is_const(other[0]):
            tensors["bias"] = _vector(m._weight(other[0], "bias"), weight.shape[1])
            fused = [after[0]]
    params = {"units": int(weight.shape[1]), "bias": "bias" in tensors}
    return _Mapped("dense", params, [node.input[0]], tensors, node.input[1], fused=fused)


def _plain(kind: str, **fixed: Any) -> Rule:
    def rule(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
        params = {key: _short(attrs.get(attr, default)) for key, (attr, default) in fixed.items()}
        return _Mapped(kind, params, [node.input[0]])

    return rule


def _hardsigmoid(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5, rel_tol=1e-6)):
        raise Skip(f"alpha {alpha:g}, beta {beta:g} (archspec's is relu6(x + 3) / 6)")
    return _Mapped("hardsigmoid", {}, [node.input[0]])


def _clip(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    low, high = m._scalar(node, 1, attrs, "min"), m._scalar(node, 2, attrs, "max")
    if low == 0 and high == 6:
        return _Mapped("relu6", {}, [node.input[0]])
    if low == 0 and high is None:
        return _Mapped("relu", {}, [node.input[0]])
    raise Skip(f"to [{low}, {high}] (archspec has relu [0, ∞) and relu6 [0, 6])")


def _softmax(kind: str) -> Rule:
    def rule(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
        rank = len(m._shape(node.input[0]))
        axis = attrs.get("axis", -1 if m._opset() >= 13 else 1)
        if axis % rank != 1:
            raise Skip(f"along axis {axis} (archspec's acts on channels)")
        if m._opset() < 13 and rank > 2:
            raise Skip("of opset < 13 flattens the axes after it")
        return _Mapped(kind, {}, [node.input[0]])

    return rule


def _merge(kind: str) -> Rule:
    def rule(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
        if any(m._is_const(v) for v in node.input):
            raise Skip("with a constant (archspec merges two layers' outputs)")
        ranks = {len(m.shapes[v]) for v in node.input if v in m.shapes}
        if len(ranks) > 1:
            raise Skip("of inputs of different ranks")
        return _Mapped(kind, {}, list(node.input))

    return rule


def _axis(axis: int, rank: int, what: str) -> int:
    axis = axis % rank if rank else axis
    if axis == 0:
        raise Skip(f"{what} along the batch axis")
    return axis - 1


def _concat(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    if any(m._is_const(v) for v in node.input):
        raise Skip("with a constant")
    rank = len(m._shape(node.input[0]))
    return _Mapped(
        "concat", {"axis": _axis(attrs.get("axis", 1), rank, "Concat")}, list(node.input)
    )


def _pool(kind: str) -> Rule:
    def rule(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
        kernel = list(attrs["kernel_shape"])
        rank = len(kernel)
        stride = list(attrs.get("strides") or [1] * rank)
        dilation = list(attrs.get("dilations") or [1] * rank)
        before, after = _spatial_pads(m, node, attrs, kernel, stride, dilation)
        if before != after:
            raise Skip(f"with uneven padding {before} before, {after} after")
        params: dict[str, Any] = {
            "kind": kind,
            "size": tuple(kernel),
            "stride": tuple(stride),
            "padding": tuple(before),
            "ceil_mode": bool(attrs.get("ceil_mode", 0)),
        }
        if kind == "max":
            params["dilation"] = tuple(dilation)
        else:
            if dilation != [1] * rank:
                raise Skip("with dilations")
            params["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
        return _Mapped("pool", params, [node.input[0]])

    return rule


def _global(kind: str) -> Rule:
    def rule(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
        rank = len(m._shape(node.input[0])) - 2
        if rank < 1:
            raise Skip("of a tensor without spatial axes")
        return _Mapped("adaptive_pool", {"kind": kind, "size": (1,) * rank}, [node.input[0]])

    return rule


def _flatten(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    rank = len(m._shape(node.input[0]))
    if attrs.get("axis", 1) % rank != 1:
        raise Skip(f"at axis {attrs.get('axis')} (archspec keeps the batch axis apart)")
    return _Mapped("flatten", {}, [node.input[0]])


def _reshape(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    before, after = m._shape(node.input[0]), m._shape(node.output[0])
    if after[0] != before[0]:
        raise Skip(f"to {list(after)}, which mixes the batch axis in")
    if len(after) == 2 and len(before) > 2:
        return _Mapped("flatten", {}, [node.input[0]])
    return _Mapped("reshape", {"shape": tuple(after[1:])}, [node.input[0]])


def _transpose(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    rank = len(m._shape(node.input[0]))
    perm = list(attrs.get("perm") or reversed(range(rank)))
    if perm[0] != 0:
        raise Skip(f"perm {perm} moves the batch axis")
    return _Mapped("permute", {"order": tuple(p - 1 for p in perm[1:])}, [node.input[0]])


def _mean(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    rank = len(m._shape(node.input[0]))
    axes = m._ints(node, 1, attrs, "axes")
    if not axes:
        raise Skip("over every axis, the batch too")
    params = {
        "axes": tuple(_axis(a, rank, "ReduceMean") for a in axes),
        "keepdims": bool(attrs.get("keepdims", 1)),
    }
    return _Mapped("mean", params, [node.input[0]])


def _pad(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    modes = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    mode = modes.get(_text(attrs.get("mode", "constant")))
    if mode is None:
        raise Skip(f"mode {attrs.get('mode')!r}")
    pads = m._ints(node, 1, attrs, "pads") or []
    if len(node.input) > 3 and node.input[3]:
        raise Skip("along chosen axes")
    rank = len(pads) // 2
    if rank < 3 or pads[0] or pads[1] or pads[rank] or pads[rank + 1]:
        raise Skip(f"pads {pads} touch the batch or channel axis")
    value = m._scalar(node, 2, attrs, "value") or 0.0
    params: dict[str, Any] = {"before": tuple(pads[2:rank]), "after": tuple(pads[rank + 2 :])}
    params["size"] = (0,)
    if mode != "zeros":
        params["mode"] = mode
    elif value:
        params["value"] = float(value)
    return _Mapped("pad", params, [node.input[0]])


def _dropout(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    if len(node.output) > 1 and node.output[1] and m.consumers.get(node.output[1]):
        raise Skip("whose mask is used")
    if len(node.input) > 2 and node.input[2]:
        raise Skip("with a training_mode input")
    ratio = m._scalar(node, 1, attrs, "ratio")
    return _Mapped("dropout", {"p": _short(0.5 if ratio is None else ratio)}, [node.input[0]])


def _gelu(m: _Mapper, i: int, node: onnx.NodeProto, attrs: dict[str, Any]) -> _Mapped:
    return _Mapped(
        "gelu", {"approximate": _text(attrs.get("approximate", "none"))}, [node.input[0]]
    )


RULES: dict[str, Rule] = {
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Relu": _plain("relu"),
    "Sigmoid": _plain("sigmoid"),
    "Tanh": _plain("tanh"),
    "HardSwish": _plain("hardswish"),
    "HardSigmoid": _hardsigmoid,
    "LeakyRelu": _plain("leaky_relu", slope=("alpha", 0.01)),
    "Elu": _plain("elu", alpha=("alpha", 1.0)),
    "Gelu": _gelu,
    "Clip": _clip,
    "Softmax": _softmax("softmax"),
    "LogSoftmax": _softmax("log_softmax"),
    "Add": _merge("add"),
    "Mul": _merge("multiply"),
    "Concat": _concat,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": _global("avg"),
    "GlobalMaxPool": _global("max"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "ReduceMean": _mean,
    "Pad": _pad,
    "Dropout": _dropout,
}
