"""A torch module → ops: trace with ``torch.fx``, map modules and functions to kinds.

``pkg.module:factory`` is imported and called — the user's own code runs, which is why the
command demands ``--trust-code``. ``torch.fx.symbolic_trace`` records the forward pass with
each op's chain of module calls (``nn_module_stack``); ``ShapeProp`` runs it once on a
random batch of 2 so reshapes and means read real shapes. torch.nn leaf modules and a set
of functions/methods map to kinds; everything else is listed as unsupported with its
module path. The weights are the leaf modules' ``state_dict`` entries, renamed to the
spec's layer names (equal to the module paths wherever calls fold into blocks).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from archspec.errors import ArchspecError, UsageError
from archspec.importers.graph import INPUT, Imported, ImportFailed, Op, Scope, Unsupported


class _Unreadable(Exception):
    """Reads the value of an unsupported op that could not be passed through: already said."""


class Skip(Exception):
    """This node cannot be mapped: ``what`` says which op and why."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def load_factory(source: str) -> nn.Module:
    """``pkg.module:factory`` → the module the factory returns (runs the user's code)."""
    module_name, _, attr = source.partition(":")
    if not module_name or not attr:
        raise UsageError(
            f"'{source}' is not a torch source", "write pkg.module:factory, e.g. mymodels:net"
        )
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: the user's own modules
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ArchspecError(f"cannot import {module_name}: {exc}", "check PYTHONPATH") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ArchspecError(f"{module_name} has no attribute '{attr}'", "check the name")
        target = getattr(target, part)
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ArchspecError(
            f"{source} is a {type(target).__name__}, not a model factory",
            "point at a function or class that builds the model",
        )
    try:
        model = target()
    except Exception as exc:  # the user's code
        raise ArchspecError(
            f"{source}() failed: {type(exc).__name__}: {exc}",
            "the factory must build the model with no arguments",
        ) from exc
    if not isinstance(model, nn.Module):
        raise ArchspecError(
            f"{source} returned {type(model).__name__}, not a torch.nn.Module",
            "point at a function or class that builds the model",
        )
    return model


def trace(model: nn.Module, input_shape: tuple[int, ...], name: str, partial: bool) -> Imported:
    model = model.eval()
    try:
        graph = fx.symbolic_trace(model)
    except Exception as exc:  # user code fx cannot follow (data-dependent control flow …)
        raise ImportFailed(
            [f"<forward>: torch.fx cannot trace the model: {type(exc).__name__}: {exc}"],
            "archspec import needs a forward pass without data-dependent Python control flow",
        ) from exc
    example = torch.randn(2, *input_shape)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints a traceback
            ShapeProp(graph).propagate(example)
    except Exception as exc:
        cause = exc.__cause__ or exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise ArchspecError(
            f"the model fails on a random input of shape {list(example.shape)}: "
            f"{type(cause).__name__}: {first}",
            "check --input (channels first, without the batch axis)",
        ) from exc
    return _Mapper(model, graph, input_shape, name, partial).run()


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _scopes(node: fx.Node) -> tuple[Scope, ...]:
    stack = node.meta.get("nn_module_stack") or {}
    scopes = [Scope(call, path, kind.__name__) for call, (path, kind) in stack.items()]
    if node.op == "call_module" and scopes and scopes[-1].path == node.target:
        scopes.pop()  # the leaf module itself
    return tuple(scopes)


def _where(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = _scopes(node)
    return stack[-1].path if stack else ""


@dataclass
class _Mapped:
    kind: str
    params: dict[str, Any]
    inputs: list[fx.Node]


class _Mapper:
    def __init__(
        self,
        model: nn.Module,
        graph: fx.GraphModule,
        shape: tuple[int, ...],
        name: str,
        partial: bool,
    ) -> None:
        self.model, self.graph, self.shape, self.name, self.partial = (
            model,
            graph,
            shape,
            name,
            partial,
        )
        self.keys: dict[fx.Node, str] = {}  # mapped node → the key its value has
        self.ops: list[Op] = []
        self.unsupported: list[Unsupported] = []
        self.called: dict[str, int] = {}

    def run(self) -> Imported:
        nodes = list(self.graph.graph.nodes)
        placeholders = [n for n in nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            self.unsupported.append(
                Unsupported("<forward>", f"{len(placeholders)} inputs (archspec takes one)")
            )
        output = ""
        stopped: Unsupported | None = None
        for node in nodes:
            if node.op == "placeholder":
                self.keys[node] = INPUT
                continue
            if node.op == "output":
                output = self._output(node)
                continue
            if _shape(node) is None and node.op != "call_module":
                continue  # a Python value (x.size(0)); reshapes read real shapes instead
            try:
                self._node(node)
            except _Unreadable:
                continue
            except Skip as exc:
                self.unsupported.append(Unsupported(_where(node), exc.what))
                if self.partial:
                    stopped = self.unsupported[-1]
                    break
                self._pass_through(node)  # to find the unsupported ops after this one too
        if stopped is not None:
            return self._partial(stopped)
        # Values computed but never used by the output (an unused branch) are left out.
        ops = _reaching(self.ops, output) if output and not self.unsupported else self.ops
        return Imported(self.name, self.shape, ops, output, self.unsupported)

    def _pass_through(self, node: fx.Node) -> None:
        """Let the layers after an unsupported op read its input instead (no spec is
        written then; this only lets them be checked and listed)."""
        tensors = [a for a in node.all_input_nodes if a in self.keys]
        if tensors:
            self.keys[node] = self.keys[tensors[0]]

    def _output(self, node: fx.Node) -> str:
        (value,) = node.args
        if not isinstance(value, fx.Node) or value not in self.keys:
            if not self.unsupported:
                self.unsupported.append(
                    Unsupported("<forward>", "returns a tuple or dict (archspec has one output)")
                )
            return ""
        return self.keys[value]

    def _partial(self, stopped: Unsupported) -> Imported:
        """The ops up to the first unsupported one, pruned to what reaches the last of them."""
        if not self.ops:
            raise ImportFailed([stopped.line()], "nothing before it can be imported")
        ops = _reaching(self.ops, self.ops[-1].key)
        imported = Imported(self.name, self.shape, ops, ops[-1].key, [stopped])
        return imported

    def _node(self, node: fx.Node) -> None:
        unread = [a for a in node.all_input_nodes if _shape(a) is not None and a not in self.keys]
        if unread and self.unsupported:
            raise _Unreadable
        if node.op == "get_attr":
            raise Skip(f"tensor attribute '{node.target}' used directly (not through a layer)")
        shape = _shape(node)
        if shape is None:
            raise Skip(f"{_describe(node)} returns a tuple or non-tensor value")
        if shape[0] != 2:
            raise Skip(f"{_describe(node)} mixes the batch axis into its output")
        mapped = self._map(node, shape)
        if mapped is None:  # an alias (contiguous, identity function)
            (source,) = [a for a in node.all_input_nodes if _shape(a) is not None]
            self.keys[node] = self.keys[source]
            return
        inputs = []
        for arg in mapped.inputs:
            if arg not in self.keys:
                raise Skip(f"{_describe(node)} reads a value that was not imported ({arg.name})")
            inputs.append(self.keys[arg])
        weights = False
        if node.op == "call_module":
            target = str(node.target)
            module = self.model.get_submodule(target)
            weights = bool(module.state_dict())
            self.called[target] = self.called.get(target, 0) + 1
            if weights and self.called[target] > 1:
                raise Skip(f"{type(module).__name__} called twice (shared weights)")
        path = str(node.target) if node.op == "call_module" else ""
        op = Op(node.name, mapped.kind, mapped.params, inputs, path, _scopes(node), weights)
        self.ops.append(op)
        self.keys[node] = op.key

    def _map(self, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
        if node.op == "call_module":
            module = self.model.get_submodule(str(node.target))
            rule = MODULES.get(type(module))
            if rule is None:
                raise Skip(f"{type(module).__name__} has no archspec kind")
            (x,) = _tensor_args(node, 1)
            kind, params = rule(module, _shape(x) or (), shape)
            return _Mapped(kind, params, [x])
        key = node.target if node.op == "call_function" else f".{node.target}"
        rule2 = FUNCTIONS.get(key) or BY_NAME.get(_qualified(node.target))
        if rule2 is None:
            raise Skip(f"{_describe(node)} has no archspec kind")
        return rule2(node, shape)


def _reaching(ops: list[Op], output: str) -> list[Op]:
    """The ops the value ``output`` depends on, in order."""
    needed = {output}
    for op in reversed(ops):
        if op.key in needed:
            needed.update(op.inputs)
    return [op for op in ops if op.key in needed]


def _describe(node: fx.Node) -> str:
    if node.op == "call_method":
        return f"method .{node.target}()"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        module = getattr(node.target, "__module__", None) or ""
        return f"function {module + '.' if module and module != '_operator' else ''}{name}"
    return str(node.op)


def _tensor_args(node: fx.Node, count: int) -> list[fx.Node]:
    args = [a for a in node.args if isinstance(a, fx.Node) and _shape(a) is not None]
    if len(args) != count or (len(node.all_input_nodes) != count and node.op == "call_module"):
        raise Skip(f"{_describe(node)} with {len(args)} tensor inputs")
    return args[:count]


def _arg(node: fx.Node, index: int, name: str, default: Any) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _axis(dim: int, rank: int, what: str) -> int:
    """A torch dim (batch axis 0) → an archspec axis (no batch axis; negative kept)."""
    if dim == 0 or dim == -rank:
        raise Skip(f"{what} along the batch axis")
    return dim - 1 if dim > 0 else dim


# --- modules ------------------------------------------------------------------------------

ModuleRule = Callable[[Any, tuple[int, ...], tuple[int, ...]], tuple[str, dict[str, Any]]]


def _conv(
    m: nn.Conv1d | nn.Conv2d | nn.Conv3d, x: tuple[int, ...], y: tuple[int, ...]
) -> tuple[str, dict[str, Any]]:
    padding: Any = m.padding
    if padding == "valid":
        padding = 0
    return "conv", {
        "depth": m.out_channels,
        "kernel": tuple(m.kernel_size),
        "stride": tuple(m.stride),
        "padding": padding,
        "dilation": tuple(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
        "padding_mode": m.padding_mode,
    }


def _conv_t(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    if m.padding_mode != "zeros":
        raise Skip(f"{type(m).__name__} with padding_mode {m.padding_mode}")
    return "conv_transpose", {
        "depth": m.out_channels,
        "kernel": tuple(m.kernel_size),
        "stride": tuple(m.stride),
        "padding": tuple(m.padding),
        "output_padding": tuple(m.output_padding),
        "dilation": tuple(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
    }


def _batchnorm(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    if not m.track_running_stats or m.momentum is None:
        raise Skip(f"{type(m).__name__} without running statistics or with cumulative momentum")
    return "batchnorm", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine}


def _linear(m: nn.Linear, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "dense", {"units": m.out_features, "bias": m.bias is not None}


def _pool(kind: str) -> ModuleRule:
    def rule(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
        if getattr(m, "return_indices", False) or getattr(m, "divisor_override", None):
            raise Skip(f"{type(m).__name__} with return_indices or divisor_override")
        params = {
            "kind": kind,
            "size": _tuple(m.kernel_size),
            "stride": _tuple(m.stride if m.stride is not None else m.kernel_size),
            "padding": _tuple(m.padding),
            "ceil_mode": m.ceil_mode,
        }
        if kind == "max":
            params["dilation"] = _tuple(m.dilation)
        else:
            params["count_include_pad"] = m.count_include_pad
        return "pool", params

    return rule


def _tuple(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _adaptive(kind: str) -> ModuleRule:
    def rule(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
        if getattr(m, "return_indices", False):
            raise Skip(f"{type(m).__name__} with return_indices")
        return "adaptive_pool", {"kind": kind, "size": tuple(y[2:])}

    return rule


def _plain(kind: str, **fixed: Any) -> ModuleRule:
    def rule(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
        return kind, {key: getattr(m, attr) for key, attr in fixed.items()}

    return rule


def _softmax(kind: str) -> ModuleRule:
    def rule(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
        if m.dim not in (1, 1 - len(x)) and not (len(x) == 2 and m.dim == -1):
            raise Skip(f"{type(m).__name__}(dim={m.dim}): archspec's acts on channels")
        return kind, {}

    return rule


def _flatten(m: nn.Flatten, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "flatten", {
        "start": _axis(m.start_dim, len(x), "Flatten"),
        "end": _axis(m.end_dim, len(x), "Flatten"),
    }


def _layernorm(
    m: nn.LayerNorm, x: tuple[int, ...], y: tuple[int, ...]
) -> tuple[str, dict[str, Any]]:
    if len(m.normalized_shape) != 1 or (m.elementwise_affine and m.bias is None):
        raise Skip("LayerNorm over more than the last axis, or without a bias")
    return "layernorm", {"over": "last", "eps": m.eps, "affine": m.elementwise_affine}


def _groupnorm(
    m: nn.GroupNorm, x: tuple[int, ...], y: tuple[int, ...]
) -> tuple[str, dict[str, Any]]:
    return "groupnorm", {"groups": m.num_groups, "eps": m.eps, "affine": m.affine}


def _instancenorm(m: Any, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    if m.track_running_stats:
        raise Skip(f"{type(m).__name__} with running statistics")
    return "instancenorm", {"eps": m.eps, "affine": m.affine}


def _gelu(m: nn.GELU, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "gelu", {"approximate": m.approximate}


def _prelu(m: nn.PReLU, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "prelu", {"per_channel": m.num_parameters > 1, "init": float(m.weight.flatten()[0])}


def _upsample(m: nn.Upsample, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    scale = m.scale_factor
    if m.mode != "nearest" or scale is None:
        raise Skip(
            f"Upsample(mode={m.mode!r}, size=…): archspec upsamples by a whole scale, nearest"
        )
    scales = _tuple(scale)
    if any(float(s) != int(s) for s in scales):
        raise Skip(f"Upsample with a fractional scale {scale}")
    return "upsample", {"scale": tuple(int(s) for s in scales), "mode": "nearest"}


def _dropout(m: nn.Dropout, x: tuple[int, ...], y: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    return "dropout", {"p": float(m.p)}


MODULES: dict[type, ModuleRule] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv_t,
    nn.ConvTranspose2d: _conv_t,
    nn.ConvTranspose3d: _conv_t,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.BatchNorm3d: _batchnorm,
    nn.Linear: _linear,
    nn.MaxPool1d: _pool("max"),
    nn.MaxPool2d: _pool("max"),
    nn.MaxPool3d: _pool("max"),
    nn.AvgPool1d: _pool("avg"),
    nn.AvgPool2d: _pool("avg"),
    nn.AvgPool3d: _pool("avg"),
    nn.AdaptiveAvgPool1d: _adaptive("avg"),
    nn.AdaptiveAvgPool2d: _adaptive("avg"),
    nn.AdaptiveAvgPool3d: _adaptive("avg"),
    nn.AdaptiveMaxPool1d: _adaptive("max"),
    nn.AdaptiveMaxPool2d: _adaptive("max"),
    nn.AdaptiveMaxPool3d: _adaptive("max"),
    nn.ReLU: _plain("relu"),
    nn.ReLU6: _plain("relu6"),
    nn.LeakyReLU: _plain("leaky_relu", slope="negative_slope"),
    nn.ELU: _plain("elu", alpha="alpha"),
    nn.GELU: _gelu,
    nn.SiLU: _plain("silu"),
    nn.Sigmoid: _plain("sigmoid"),
    nn.Tanh: _plain("tanh"),
    nn.Hardswish: _plain("hardswish"),
    nn.Hardsigmoid: _plain("hardsigmoid"),
    nn.Mish: _plain("mish"),
    nn.Softplus: _plain("softplus", beta="beta", threshold="threshold"),
    nn.PReLU: _prelu,
    nn.Identity: _plain("identity"),
    nn.Softmax: _softmax("softmax"),
    nn.LogSoftmax: _softmax("log_softmax"),
    nn.Dropout: _dropout,
    nn.Flatten: _flatten,
    nn.LayerNorm: _layernorm,
    nn.GroupNorm: _groupnorm,
    nn.InstanceNorm1d: _instancenorm,
    nn.InstanceNorm2d: _instancenorm,
    nn.InstanceNorm3d: _instancenorm,
    nn.Upsample: _upsample,
    nn.PixelShuffle: _plain("pixel_shuffle", factor="upscale_factor"),
    nn.PixelUnshuffle: _plain("pixel_unshuffle", factor="downscale_factor"),
    nn.ChannelShuffle: _plain("channel_shuffle", groups="groups"),
}


# --- functions and methods ----------------------------------------------------------------

FunctionRule = Callable[[fx.Node, tuple[int, ...]], _Mapped | None]


def _unary(kind: str) -> FunctionRule:
    def rule(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        return _Mapped(kind, {}, _tensor_args(node, 1))

    return rule


def _binary(kind: str) -> FunctionRule:
    def rule(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        if node.kwargs.get("alpha", 1) != 1:
            raise Skip(f"{_describe(node)} with alpha")
        args = [a for a in node.args if isinstance(a, fx.Node)]
        if len(args) != 2 or len(node.args) != 2 or any(_shape(a) is None for a in args):
            raise Skip(f"{_describe(node)} with a constant (archspec merges two layers' outputs)")
        return _Mapped(kind, {}, args)

    return rule


def _cat(node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    tensors = _arg(node, 0, "tensors", ())
    if not isinstance(tensors, list | tuple) or not all(isinstance(t, fx.Node) for t in tensors):
        raise Skip(f"{_describe(node)} of non-layer values")
    if len(tensors) == 1:  # DenseNet's first layer: cat([x]) is x
        return None
    dim = _arg(node, 1, "dim", 0)
    return _Mapped("concat", {"axis": _axis(dim, len(shape), "cat")}, list(tensors))


def _flatten_fn(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = _tensor_args(node, 1)
    rank = len(_shape(x) or ())
    start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
    return _Mapped(
        "flatten", {"start": _axis(start, rank, "flatten"), "end": _axis(end, rank, "flatten")}, [x]
    )


def _reshape(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = _tensor_args(node, 1)
    before = _shape(x) or ()
    if len(shape) == 2 and len(before) > 2 and shape[1] == _product(before[1:]):
        return _Mapped("flatten", {}, [x])
    return _Mapped("reshape", {"shape": tuple(shape[1:])}, [x])


def _product(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _mean(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = _tensor_args(node, 1)
    rank = len(_shape(x) or ())
    dims = _arg(node, 1, "dim", None)
    if dims is None:
        raise Skip(f"{_describe(node)} over every axis, the batch too")
    dims = [dims] if isinstance(dims, int) else list(dims)
    keep = bool(_arg(node, 2, "keepdim", False))
    axes = tuple(_axis(d, rank, "mean") for d in dims)
    return _Mapped("mean", {"axes": axes, "keepdims": keep}, [x])


def _alias(node: fx.Node, shape: tuple[int, ...]) -> None:
    _tensor_args(node, 1)
    return None


def _adaptive_fn(kind: str) -> FunctionRule:
    def rule(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = _tensor_args(node, 1)
        return _Mapped("adaptive_pool", {"kind": kind, "size": tuple(shape[2:])}, [x])

    return rule


def _dropout_fn(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = _tensor_args(node, 1)
    return _Mapped("dropout", {"p": float(_arg(node, 1, "p", 0.5))}, [x])


def _relu_fn(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    return _Mapped("relu", {}, _tensor_args(node, 1))


def _gelu_fn(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    return _Mapped(
        "gelu", {"approximate": node.kwargs.get("approximate", "none")}, _tensor_args(node, 1)
    )


def _stochastic_depth(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """torchvision.ops.stochastic_depth(x, p, mode, training): per-sample ("row") drop path."""
    (x,) = _tensor_args(node, 1)
    mode = _arg(node, 2, "mode", "row")
    if mode != "row":
        raise Skip(f"stochastic_depth mode {mode!r} (archspec's drop_path drops per sample)")
    return _Mapped("drop_path", {"p": float(_arg(node, 1, "p", 0.0))}, [x])


def _qualified(target: Any) -> str:
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}"


# Functions of other libraries, by qualified name (torchvision need not be installed).
BY_NAME: dict[str, FunctionRule] = {
    "torchvision.ops.stochastic_depth.stochastic_depth": _stochastic_depth,
}

FUNCTIONS: dict[Any, FunctionRule] = {
    operator.add: _binary("add"),
    operator.iadd: _binary("add"),
    torch.add: _binary("add"),
    ".add": _binary("add"),
    operator.mul: _binary("multiply"),
    operator.imul: _binary("multiply"),
    torch.mul: _binary("multiply"),
    ".mul": _binary("multiply"),
    torch.cat: _cat,
    torch.concat: _cat,
    torch.flatten: _flatten_fn,
    ".flatten": _flatten_fn,
    ".view": _reshape,
    ".reshape": _reshape,
    torch.reshape: _reshape,
    ".mean": _mean,
    torch.mean: _mean,
    ".contiguous": _alias,
    F.relu: _relu_fn,
    torch.relu: _relu_fn,
    ".relu": _relu_fn,
    F.relu6: _unary("relu6"),
    F.gelu: _gelu_fn,
    F.silu: _unary("silu"),
    F.hardswish: _unary("hardswish"),
    F.hardsigmoid: _unary("hardsigmoid"),
    F.mish: _unary("mish"),
    torch.sigmoid: _unary("sigmoid"),
    F.sigmoid: _unary("sigmoid"),
    ".sigmoid": _unary("sigmoid"),
    torch.tanh: _unary("tanh"),
    F.tanh: _unary("tanh"),
    ".tanh": _unary("tanh"),
    F.adaptive_avg_pool2d: _adaptive_fn("avg"),
    F.adaptive_avg_pool1d: _adaptive_fn("avg"),
    F.adaptive_max_pool2d: _adaptive_fn("max"),
    F.dropout: _dropout_fn,
}


# --- weights and the round trip ------------------------------------------------------------


def weights(model: nn.Module, names: dict[str, str]) -> dict[str, torch.Tensor]:
    """The spec's ``state_dict``: each layer's tensors under its spec name."""
    out: dict[str, torch.Tensor] = {}
    for spec_name, path in names.items():
        for key, value in model.get_submodule(path).state_dict().items():
            out[f"{spec_name}.{key}"] = value.detach().clone().contiguous()
    return out


def left_out(model: nn.Module, names: dict[str, str]) -> list[str]:
    """Source ``state_dict`` keys no spec layer holds (modules the forward pass never calls)."""
    held = {
        f"{path}.{key}" for path in names.values() for key in model.get_submodule(path).state_dict()
    }
    return [key for key in model.state_dict() if key not in held]
