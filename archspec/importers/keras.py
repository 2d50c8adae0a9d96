"""A Keras ``model.to_json()`` config → ops, read as JSON data only.

Keras' own loader deserialises whatever ``module``/``class_name``/``registered_name`` a
config names and unmarshals ``Lambda`` bytecode (CVE-2024-3660, CVE-2025-1550). Here the
file is ``json.loads`` data: a layer maps to kinds by its ``class_name`` from a fixed table,
and any ``module`` outside Keras, any custom ``registered_name``, any ``Lambda`` is refused
with its location before anything is built. Nothing is imported; keras need not be
installed. Keras is channels-last: shapes become archspec's channels-first
(``[None, 32, 32, 3]`` → ``[3, 32, 32]``), a concatenation on the last axis joins channels.
Keras configs carry no weights, so only the architecture is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from archspec.importers.graph import INPUT, Imported, ImportFailed, Op, Unsupported

MAX_BYTES = 64 * 2**20  # a config of 100,000 layers is ~50 MB
MODEL_CLASSES = ("Sequential", "Functional", "Model")
_MODEL_MODULES = {
    "keras",
    "keras.models",
    "keras.src.models.functional",
    "keras.src.models.sequential",
}


class Skip(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def read(path: Path, partial: bool, name: str | None = None) -> Imported:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImportFailed(
                [f"{path}: {size:,} bytes is more than a Keras config of {MAX_BYTES:,}"],
                "is this really a model.to_json() file?",
            )
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFailed([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise ImportFailed(
            [f"{path}: not JSON: {str(exc)[:200]}"], "give model.to_json()'s text"
        ) from exc
    return from_config(data, str(path), partial, name)


def from_config(data: Any, file: str, partial: bool, name: str | None = None) -> Imported:
    if not isinstance(data, dict) or data.get("class_name") not in MODEL_CLASSES:
        got = data.get("class_name") if isinstance(data, dict) else type(data).__name__
        raise ImportFailed(
            [f"{file}: the top level is {got!r}, not a Sequential or Functional model"],
            "give the text of model.to_json()",
        )
    module = data.get("module")
    if module is not None and module not in _MODEL_MODULES:
        raise ImportFailed([f"{file}: model module {module!r} is not Keras'"], "nothing was run")
    config = data.get("config")
    if not isinstance(config, dict):
        raise ImportFailed([f"{file}: the model has no config object"])
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ImportFailed([f"{file}: config.layers is missing or empty"])
    hostile = [f"{file}: {line}" for line in _hostile(layers)]
    if hostile:
        raise ImportFailed(
            hostile, "archspec reads Keras configs as data and never runs their code"
        )
    label = name or str(config.get("name") or "keras-model")
    mapper = _Mapper(file, partial)
    if data["class_name"] == "Sequential":
        return mapper.sequential(layers, label)
    return mapper.functional(config, layers, label)


def _hostile(layers: list[Any]) -> Iterator[str]:
    """Every Lambda, custom object or non-Keras module, located by layer."""
    for i, layer in enumerate(layers):
        where = _where(i, layer)
        if not isinstance(layer, dict):
            yield f"{where}: not a layer object"
            continue
        if layer.get("class_name") == "Lambda":
            yield f"{where}: a Lambda layer holds Python code; archspec never runs it"
        for path, obj in _objects(layer, ""):
            module, registered = obj.get("module"), obj.get("registered_name")
            if module is not None and not (module == "keras" or str(module).startswith("keras.")):
                yield f"{where}{path}: module {module!r} is not Keras' (custom code is refused)"
            elif registered is not None and registered != obj.get("class_name"):
                yield f"{where}{path}: registered_name {registered!r} names a custom object"


def _objects(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, dict):
            if "module" in item or "registered_name" in item:
                yield here, item
            stack.extend((f"{here}.{k}", v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{here}[{i}]", v) for i, v in enumerate(item))


def _where(i: int, layer: Any) -> str:
    name = layer.get("config", {}).get("name") if isinstance(layer, dict) else None
    name = (
        name if isinstance(name, str) else (layer.get("name") if isinstance(layer, dict) else None)
    )
    kind = layer.get("class_name") if isinstance(layer, dict) else None
    return f"layers[{i}]" + (f" '{name}'" if name else "") + (f" ({kind})" if kind else "")


def _shape(config: dict[str, Any]) -> list[Any] | None:
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(config.get(key), list):
            return list(config[key])
    return None


class _Mapper:
    def __init__(self, file: str, partial: bool) -> None:
        self.file, self.partial = file, partial
        self.ops: list[Op] = []
        self.unsupported: list[Unsupported] = []
        self.out: dict[str, str] = {}  # keras layer name → key of its value
        self.rank: dict[str, int] = {INPUT: 0}  # key → rank without the batch axis

    def sequential(self, layers: list[dict[str, Any]], name: str) -> Imported:
        shape: list[Any] | None = None
        first = layers[0]
        if first.get("class_name") == "InputLayer":
            shape = _shape(first.get("config", {}))
            layers = layers[1:]
        else:
            config = first.get("config", {})
            built = first.get("build_config", {}).get("input_shape")
            shape = _shape(config) or (list(built) if isinstance(built, list) else None)
        input_shape = self._input(shape)
        previous = INPUT
        for i, layer in enumerate(
            layers, start=1 if first.get("class_name") == "InputLayer" else 0
        ):
            key = self._layer(i, layer, [previous])
            if key is None:
                break
            previous = key
        return self._done(name, input_shape, previous)

    def functional(
        self, config: dict[str, Any], layers: list[dict[str, Any]], name: str
    ) -> Imported:
        inputs, outputs = config.get("input_layers"), config.get("output_layers")
        if _count(inputs) != 1 or _count(outputs) != 1:
            raise ImportFailed(
                [
                    f"{self.file}: {_count(inputs)} inputs and {_count(outputs)} outputs "
                    "(archspec takes one each)"
                ]
            )
        by_name = {self._name(layer): (i, layer) for i, layer in enumerate(layers)}
        input_shape: tuple[int, ...] | None = None
        done: set[str] = set()
        for i, layer in self._ordered(layers, by_name):
            lname = self._name(layer)
            if layer.get("class_name") == "InputLayer":
                input_shape = self._input(_shape(layer.get("config", {})))
                self.out[lname] = INPUT
                done.add(lname)
                continue
            sources = _inbound(layer)
            if sources is None:
                raise ImportFailed(
                    [f"{self.file}: {_where(i, layer)}: called more than once (shared layer)"]
                )
            if any(s not in self.out for s in sources):
                continue  # reads a layer that was not imported (already reported)
            key = self._layer(i, layer, [self.out[s] for s in sources])
            if key is None:
                break
        if input_shape is None:
            raise ImportFailed([f"{self.file}: no InputLayer with a batch_shape"])
        final = _first_name(outputs)
        if final not in self.out and not self.unsupported:
            raise ImportFailed([f"{self.file}: output layer {final!r} is not among the layers"])
        return self._done(name, input_shape, self.out.get(final, ""))

    def _ordered(
        self, layers: list[dict[str, Any]], by_name: dict[str, tuple[int, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Layers in an order where each comes after the layers it reads (Kahn)."""
        order: list[tuple[int, dict[str, Any]]] = []
        placed: set[str] = set()
        pending = list(enumerate(layers))
        while pending:
            ready = [
                (i, layer)
                for i, layer in pending
                if all(s in placed or s not in by_name for s in (_inbound(layer) or []))
            ]
            if not ready:
                raise ImportFailed([f"{self.file}: the layers' inbound nodes form a cycle"])
            for i, layer in ready:
                order.append((i, layer))
                placed.add(self._name(layer))
            pending = [p for p in pending if p not in ready]
        return order

    @staticmethod
    def _name(layer: dict[str, Any]) -> str:
        return str(layer.get("name") or layer.get("config", {}).get("name"))

    def _input(self, shape: list[Any] | None) -> tuple[int, ...]:
        if (
            shape is None
            or len(shape) < 2
            or not all(isinstance(d, int) and d > 0 for d in shape[1:])
        ):
            raise ImportFailed(
                [f"{self.file}: the input shape {shape} is not fully known"],
                "give the model an InputLayer with a batch_shape of whole sizes",
            )
        dims = [int(d) for d in shape[1:]]
        if len(dims) > 4:
            raise ImportFailed(
                [f"{self.file}: a {len(dims)}-axis input (archspec takes at most 4)"]
            )
        self.rank[INPUT] = len(dims)
        return tuple(dims if len(dims) == 1 else [dims[-1], *dims[:-1]])  # channels first

    def _done(self, name: str, input_shape: tuple[int, ...], output: str) -> Imported:
        if self.partial and self.unsupported:
            output = self.ops[-1].key if self.ops else ""
            if not self.ops:
                raise ImportFailed(
                    [self.unsupported[0].line()], "nothing before it can be imported"
                )
        return Imported(name, input_shape, self.ops, output, self.unsupported)

    def _layer(self, i: int, layer: dict[str, Any], inputs: list[str]) -> str | None:
        """Map one layer; its value's key, or None to stop (--partial)."""
        kind = str(layer.get("class_name"))
        config = layer.get("config", {})
        lname = self._name(layer)
        try:
            rule = LAYERS.get(kind)
            if rule is None:
                raise Skip(f"{kind} has no archspec kind")
            if not isinstance(config, dict):
                raise Skip("config is not an object")
            rank = self.rank[inputs[0]]
            if config.get("data_format", "channels_last") != "channels_last":
                raise Skip("data_format channels_first (configs are read as channels-last)")
            steps = rule(config, rank, len(inputs))
        except Skip as exc:
            self.unsupported.append(Unsupported(f"{_where(i, layer)}", exc.what))
            if self.partial:
                return None
            # No spec is written; the layers after it are checked as if it passed its input on.
            self.out[lname] = inputs[0]
            return inputs[0]
        key = ""
        for step, (op_kind, params, new_rank) in enumerate(steps):
            key = f"{lname}#{step}"
            self.ops.append(
                Op(
                    key,
                    op_kind,
                    params,
                    inputs if step == 0 else [self.ops[-1].key],
                    lname if step == 0 else "",
                )
            )
            self.rank[key] = rank if new_rank is None else new_rank
        self.out[lname] = key
        return key


def _count(refs: Any) -> int:
    if not isinstance(refs, list):
        return 0
    if refs and isinstance(refs[0], str):
        return 1  # Keras 3 may write a single ["name", 0, 0]
    return len(refs)


def _first_name(refs: Any) -> str:
    return str(refs[0] if isinstance(refs[0], str) else refs[0][0])


def _inbound(layer: dict[str, Any]) -> list[str] | None:
    """The names of the layers this one reads; None if it is called more than once."""
    nodes = layer.get("inbound_nodes") or []
    if len(nodes) > 1:
        return None
    if not nodes:
        return []
    node = nodes[0]
    names: list[str] = []
    if isinstance(node, dict):  # Keras 3: {"args": [tensor or [tensors]], "kwargs": {}}
        _history(node.get("args", []), names)
    else:  # Keras 2: [["name", 0, 0, {}], …]
        names = [str(ref[0]) for ref in node if isinstance(ref, list) and ref]
    return names


def _history(value: Any, names: list[str]) -> None:
    if isinstance(value, dict):
        history = (
            value.get("config", {}).get("keras_history")
            if isinstance(value.get("config"), dict)
            else None
        )
        if isinstance(history, list) and history:
            names.append(str(history[0]))
            return
        for item in value.values():
            _history(item, names)
    elif isinstance(value, list):
        for item in value:
            _history(item, names)


# --- layers: config, rank (no batch axis), number of inputs → [(kind, params, new rank)] --

Step = tuple[str, dict[str, Any], int | None]
LayerRule = Callable[[dict[str, Any], int, int], list[Step]]

ACTIVATIONS: dict[str, Step | None] = {
    "linear": None,
    "relu": ("relu", {}, None),
    "relu6": ("relu6", {}, None),
    "sigmoid": ("sigmoid", {}, None),
    "tanh": ("tanh", {}, None),
    "softmax": ("softmax", {}, None),
    "log_softmax": ("log_softmax", {}, None),
    "elu": ("elu", {}, None),
    "gelu": ("gelu", {"approximate": "none"}, None),
    "silu": ("silu", {}, None),
    "swish": ("silu", {}, None),
    "hard_swish": ("hardswish", {}, None),
    "hard_silu": ("hardswish", {}, None),
    "softplus": ("softplus", {}, None),
    "mish": ("mish", {}, None),
    "leaky_relu": ("leaky_relu", {"slope": 0.2}, None),
}


def _activation(config: dict[str, Any], key: str = "activation") -> list[Step]:
    value = config.get(key, "linear")
    if isinstance(value, dict):  # {"module": "keras.activations", "config": "relu", …}
        value = (
            value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
        )
    if value is None:
        value = "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise Skip(f"activation {value!r} has no archspec kind")
    if value in ("softmax", "log_softmax") and config.get("axis", -1) not in (-1,):
        raise Skip(f"{value} on axis {config.get('axis')}")
    step = ACTIVATIONS[value]
    return [] if step is None else [step]


def _ints(value: Any, rank: int, what: str) -> tuple[int, ...]:
    values = [value] * rank if isinstance(value, int) else list(value or [])
    if len(values) != rank or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise Skip(f"{what} {value!r} for a {rank}-D input")
    return tuple(values)


def _dense(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    if rank != 1:
        raise Skip(f"Dense on a {rank}-axis input (archspec's dense needs a flat input here)")
    return [
        ("dense", {"units": config["units"], "bias": bool(config.get("use_bias", True))}, 1),
        *_activation(config),
    ]


def _conv(dims: int) -> LayerRule:
    def rule(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
        if rank != dims + 1:
            raise Skip(f"Conv{dims}D on a {rank}-axis input")
        padding = config.get("padding", "valid")
        if padding not in ("valid", "same", "causal") or (padding == "causal" and dims != 1):
            raise Skip(f"padding {padding!r}")
        params = {
            "depth": config["filters"],
            "kernel": _ints(config["kernel_size"], dims, "kernel_size"),
            "stride": _ints(config.get("strides", 1), dims, "strides"),
            "padding": 0 if padding == "valid" else padding,
            "dilation": _ints(config.get("dilation_rate", 1), dims, "dilation_rate"),
            "groups": int(config.get("groups", 1)),
            "bias": bool(config.get("use_bias", True)),
        }
        return [("conv", params, None), *_activation(config)]

    return rule


def _pool(kind: str, dims: int) -> LayerRule:
    def rule(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
        if rank != dims + 1:
            raise Skip(f"{kind} pooling {dims}-D on a {rank}-axis input")
        if config.get("padding", "valid") != "valid":
            raise Skip(
                "pooling with padding 'same' (Keras pads unevenly; archspec's pool pads evenly)"
            )
        size = _ints(config.get("pool_size", 2), dims, "pool_size")
        strides = config.get("strides")
        stride = size if strides is None else _ints(strides, dims, "strides")
        return [("pool", {"kind": kind, "size": size, "stride": stride}, None)]

    return rule


def _global(kind: str) -> LayerRule:
    def rule(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
        if config.get("keepdims", False):
            raise Skip("global pooling with keepdims")
        if rank < 2:
            raise Skip("global pooling of a flat input")
        return [("global_pool", {"kind": kind}, 1)]

    return rule


def _flatten(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    return [("flatten", {}, 1)]


def _dropout(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    if config.get("noise_shape") is not None:
        raise Skip("Dropout with a noise_shape")
    return [("dropout", {"p": float(config.get("rate", 0.5))}, None)]


def _batchnorm(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, rank):
        raise Skip(f"BatchNormalization over axis {axis} (archspec normalises channels)")
    center, scale = bool(config.get("center", True)), bool(config.get("scale", True))
    if center != scale:
        raise Skip("BatchNormalization with only one of center/scale")
    momentum = 1.0 - float(config.get("momentum", 0.99))  # Keras keeps this much of the old mean
    return [
        (
            "batchnorm",
            {
                "eps": float(config.get("epsilon", 1e-3)),
                "momentum": round(momentum, 12),
                "affine": center,
            },
            None,
        )
    ]


def _act_layer(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    return _activation(config)


def _relu_layer(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    top, slope, threshold = (
        config.get("max_value"),
        config.get("negative_slope", 0.0),
        config.get("threshold", 0.0),
    )
    if threshold:
        raise Skip(f"ReLU with threshold {threshold}")
    if top is None and not slope:
        return [("relu", {}, None)]
    if top == 6 and not slope:
        return [("relu6", {}, None)]
    if top is None:
        return [("leaky_relu", {"slope": float(slope)}, None)]
    raise Skip(f"ReLU with max_value {top} and negative_slope {slope}")


def _merge(kind: str) -> LayerRule:
    def rule(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
        if inputs < 2:
            raise Skip(f"{kind} of {inputs} input")
        return [(kind, {}, None)]

    return rule


def _concat(config: dict[str, Any], rank: int, inputs: int) -> list[Step]:
    axis = int(config.get("axis", -1))
    if axis in (-1, rank):
        ours = 0  # channels-last → channels first
    elif 1 <= axis < rank:
        ours = axis  # a spatial axis keeps its number once channels move to the front
    else:
        raise Skip(f"Concatenate on axis {axis}")
    return [("concat", {"axis": ours}, None)]


LAYERS: dict[str, LayerRule] = {
    "Dense": _dense,
    "Conv1D": _conv(1),
    "Conv2D": _conv(2),
    "Conv3D": _conv(3),
    "MaxPooling1D": _pool("max", 1),
    "MaxPooling2D": _pool("max", 2),
    "MaxPool1D": _pool("max", 1),
    "MaxPool2D": _pool("max", 2),
    "AveragePooling1D": _pool("avg", 1),
    "AveragePooling2D": _pool("avg", 2),
    "AvgPool1D": _pool("avg", 1),
    "AvgPool2D": _pool("avg", 2),
    "GlobalAveragePooling1D": _global("avg"),
    "GlobalAveragePooling2D": _global("avg"),
    "GlobalMaxPooling1D": _global("max"),
    "GlobalMaxPooling2D": _global("max"),
    "Flatten": _flatten,
    "Dropout": _dropout,
    "BatchNormalization": _batchnorm,
    "Activation": _act_layer,
    "ReLU": _relu_layer,
    "Add": _merge("add"),
    "Multiply": _merge("multiply"),
    "Concatenate": _concat,
}
