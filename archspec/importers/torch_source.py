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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from archspec.errors import ArchspecError, UsageError
from archspec.importers.graph import (
    INPUT,
    Imported,
    ImportFailed,
    Op,
    Scope,
    Unsupported,
    reaching,
)


class _Unreadable(Exception):
    """Reads the value of an unsupported op that could not be passed through: already said."""


class Skip(Exception):
    """This node cannot be mapped: ``what`` says which op and why."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class TraceFailed(ImportFailed):
    """torch.fx cannot trace the forward pass (``--capture auto`` then tries torch.export)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            [f"<forward>: torch.fx cannot trace the model: {reason}"],
            "archspec import needs a forward pass without data-dependent Python control flow "
            "(--capture export handles control flow on shapes)",
        )
        self.reason = reason


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
        raise TraceFailed(f"{type(exc).__name__}: {exc}") from exc
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
    if node.op == "get_attr":  # the module owning the tensor
        return str(node.target).rpartition(".")[0]
    stack = _scopes(node)
    return stack[-1].path if stack else ""


@dataclass
class _Mapped:
    kind: str
    params: dict[str, Any]
    inputs: Sequence[fx.Node | str]  # a node, or a key (INPUT)
    tensor: str = ""  # the model attribute (a Parameter) whose values the layer holds


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
        self.learned: set[fx.Node] = set()  # parameters read by the one layer using them

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
        ops = reaching(self.ops, output) if output and not self.unsupported else self.ops
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
        ops = reaching(self.ops, self.ops[-1].key)
        imported = Imported(self.name, self.shape, ops, ops[-1].key, [stopped])
        return imported

    def _node(self, node: fx.Node) -> None:
        unread = [
            a
            for a in node.all_input_nodes
            if _shape(a) is not None and a not in self.keys and a not in self.learned
        ]
        if unread and self.unsupported:
            module = (
                self.model.get_submodule(str(node.target)) if node.op == "call_module" else None
            )
            if isinstance(module, nn.MultiheadAttention):  # its own refusals (a mask) count
                _attention(module, node)
            raise _Unreadable
        if node.op == "get_attr":
            _learned_attr(self.model, node)  # read by the layer its one user becomes
            self.learned.add(node)
            return
        shape = _shape(node)
        if shape is None and _is_attention(self.model, node):
            shape = _first_shape(node)  # (output, weights); `[0]` is an alias of it
        if shape is None:
            raise Skip(f"{_describe(node)} returns a tuple or non-tensor value")
        if shape[0] != 2:
            raise Skip(f"{_describe(node)} mixes the batch axis into its output")
        mapped = self._map(node, shape)
        if mapped is None:  # an alias (contiguous, identity function, attention's [0])
            sources = [a for a in node.all_input_nodes if a in self.keys]
            if len(sources) != 1 and self.unsupported:
                raise _Unreadable  # an alias of what was not imported
            (source,) = sources
            self.keys[node] = self.keys[source]
            return
        inputs = []
        for arg in mapped.inputs:
            if isinstance(arg, str):
                inputs.append(arg)
                continue
            if arg not in self.keys:
                raise Skip(f"{_describe(node)} reads a value that was not imported ({arg.name})")
            inputs.append(self.keys[arg])
        weights = False
        if mapped.tensor:
            weights = True
            self.called[mapped.tensor] = self.called.get(mapped.tensor, 0) + 1
            if self.called[mapped.tensor] > 1:
                raise Skip(f"parameter '{mapped.tensor}' used twice (shared weights)")
        if node.op == "call_module":
            target = str(node.target)
            module = self.model.get_submodule(target)
            weights = bool(module.state_dict())
            self.called[target] = self.called.get(target, 0) + 1
            if weights and self.called[target] > 1:
                raise Skip(f"{type(module).__name__} called twice (shared weights)")
        path = str(node.target) if node.op == "call_module" else mapped.tensor
        op = Op(node.name, mapped.kind, mapped.params, inputs, path, _scopes(node), weights)
        self.ops.append(op)
        self.keys[node] = op.key

    def _map(self, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
        if node.op == "call_module":
            module = self.model.get_submodule(str(node.target))
            if isinstance(module, nn.MultiheadAttention):
                return _attention(module, node)
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


# --- learned tensors, tokens, attention ---------------------------------------------------
# torchvision's ViT reads tensors directly: `self.class_token.expand(n, -1, -1)` and
# `x + self.pos_embedding`; its patches become tokens with `reshape(n, C, h·w).permute(0, 2, 1)`;
# `nn.MultiheadAttention` returns (output, weights); the head reads `x[:, 0]`.

_ADDS = (operator.add, operator.iadd, torch.add, "add")
_LEARNED_USES = ", ".join(("`.expand(batch, -1, …)`", "`x + parameter` of x's shape"))


def _learned_attr(model: nn.Module, node: fx.Node) -> None:
    """A ``get_attr`` read by exactly one layer that holds it (expand → ``parameter``, add →
    ``positional_embedding``); anything else is a tensor the language cannot hold."""
    target = str(node.target)
    what = f"tensor attribute '{target}' used directly (not through a layer)"
    try:
        model.get_parameter(target)
    except AttributeError:
        raise Skip(f"{what}; archspec holds learned parameters only") from None
    users = list(node.users)
    if len(users) != 1:
        raise Skip(f"parameter '{target}' used {len(users)} times (shared weights)")
    (user,) = users
    method = user.op == "call_method" and user.target in ("expand", "add")
    function = user.op == "call_function" and user.target in _ADDS
    if not (method or function):
        raise Skip(f"{what}; archspec maps {_LEARNED_USES}")


def _expand(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """``parameter.expand(n, -1, …)`` of a ``[1, *S]`` parameter → ``parameter: {shape: S}``,
    reading the value whose batch size ``n`` is (the input when it cannot be told)."""
    source = node.args[0]
    if not isinstance(source, fx.Node) or source.op != "get_attr":
        raise Skip(f"{_describe(node)} of a layer's value (archspec expands learned tensors)")
    own = _shape(source) or ()
    if not own or own[0] != 1 or tuple(shape[1:]) != tuple(own[1:]) or len(own) < 2:
        raise Skip(
            f"{_describe(node)} of a {list(own)} parameter to {list(shape)} (archspec repeats "
            "a [1, *S] parameter over the batch only)"
        )
    return _Mapped(
        "parameter", {"shape": tuple(own[1:])}, [_batch_source(node) or INPUT], str(source.target)
    )


def _batch_source(node: fx.Node) -> fx.Node | None:
    """The tensor ``x`` of ``x.shape[0]`` / ``x.size(0)`` / ``x.size()[0]`` when that is the
    batch size ``node`` (an expand) is given."""
    sizes = list(node.args[1:])
    if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
        sizes = list(sizes[0])
    size = sizes[0] if sizes else None
    if not isinstance(size, fx.Node):
        return None
    if size.op == "call_method" and size.target == "size" and size.args[1:] == (0,):
        x = size.args[0]
    elif size.op == "call_function" and size.target is operator.getitem and size.args[1] == 0:
        holder = size.args[0]
        if not isinstance(holder, fx.Node):
            return None
        shape_of = holder.op == "call_function" and holder.target is getattr
        size_of = holder.op == "call_method" and holder.target == "size"
        if (shape_of and holder.args[1] == "shape") or (size_of and len(holder.args) == 1):
            x = holder.args[0]
        else:
            return None
    else:
        return None
    return x if isinstance(x, fx.Node) and _shape(x) is not None else None


def _positional(node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    """``x + parameter`` with a ``[1, *x.shape[1:]]`` parameter → ``positional_embedding``;
    None when neither operand is a parameter."""
    args = [a for a in node.args if isinstance(a, fx.Node)]
    learned = [a for a in args if a.op == "get_attr"]
    if not learned:
        return None
    if len(args) != 2 or len(node.args) != 2 or len(learned) != 1:
        raise Skip(f"{_describe(node)} of a parameter and a constant or another parameter")
    (tensor,) = learned
    (x,) = [a for a in args if a is not tensor]
    own, theirs = _shape(tensor) or (), _shape(x) or ()
    if own != (1, *theirs[1:]) or tuple(shape) != tuple(theirs):
        raise Skip(
            f"{_describe(node)} of a {list(own)} parameter and a {list(theirs)} value (archspec "
            "adds a learned [1, *shape] tensor of the value's own shape: positional_embedding)"
        )
    return _Mapped("positional_embedding", {}, [x], str(tensor.target))


def _first_shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    if isinstance(meta, list | tuple) and meta and hasattr(meta[0], "shape"):
        return tuple(meta[0].shape)
    return None


def _is_attention(model: nn.Module, node: fx.Node) -> bool:
    return node.op == "call_module" and isinstance(
        model.get_submodule(str(node.target)), nn.MultiheadAttention
    )


def _attention(m: nn.MultiheadAttention, node: fx.Node) -> _Mapped:
    """``attn(q, k, v)`` with k = v (q = k: self-attention), batch first, no masks →
    ``attention`` (its parameters are laid out like nn.MultiheadAttention's)."""
    names = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask")
    given = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
    if not m.batch_first:
        raise Skip("MultiheadAttention with batch_first=False (archspec's batch axis is first)")
    if m.bias_k is not None or m.add_zero_attn:
        raise Skip("MultiheadAttention with add_bias_kv or add_zero_attn")
    for key in ("key_padding_mask", "attn_mask"):
        if given.get(key) is not None:
            raise Skip(f"MultiheadAttention with {key} (archspec's attention takes no mask)")
    if given.get("is_causal"):
        raise Skip("MultiheadAttention with is_causal (write attention with causal: true)")
    q, k, v = (given.get(key) for key in names[:3])
    if not all(isinstance(a, fx.Node) and _shape(a) is not None for a in (q, k, v)):
        raise Skip("MultiheadAttention with a query, key or value that is not a layer's value")
    assert isinstance(q, fx.Node) and isinstance(k, fx.Node)
    if k is not v:
        raise Skip("MultiheadAttention with different key and value (archspec's context is both)")
    bias = m.in_proj_bias is not None
    if bias != (m.out_proj.bias is not None):
        raise Skip("MultiheadAttention with a bias on only some projections")
    params = {"heads": m.num_heads, "dropout": float(m.dropout), "bias": bias}
    return _Mapped("attention", params, [q] if q is k else [q, k])


def _getitem(node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    """``attention(...)[0]`` (its output); ``x[:, i]`` → select; ``x[:, a:b:s]`` → slice."""
    source, index = node.args[0], node.args[1]
    assert isinstance(source, fx.Node)
    if _shape(source) is None:  # a tuple: nn.MultiheadAttention's (output, weights)
        if source.op == "call_module" and (index == 0 or not node.users):
            return None  # the output (or attention weights nothing reads)
        raise Skip(
            f"item {index!r} of the tuple {source.name} returns (archspec maps "
            "nn.MultiheadAttention's output [0])"
        )
    rank = len(_shape(source) or ())
    items = list(index) if isinstance(index, tuple) else [index]
    if items.count(Ellipsis) == 1:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (rank - len(items) + 1)
    full = [isinstance(i, slice) and i == slice(None) for i in items]
    cut = [i for i, whole in enumerate(full) if not whole]
    if len(items) > rank or len(cut) != 1 or cut[0] == 0:
        raise Skip(f"indexing [{_index_text(index)}] (archspec selects or slices one axis)")
    axis, item = cut[0] - 1, items[cut[0]]
    if isinstance(item, int) and not isinstance(item, bool):
        return _Mapped("select", {"axis": axis, "index": item}, [source])
    if isinstance(item, slice) and all(
        v is None or (isinstance(v, int) and not isinstance(v, bool))
        for v in (item.start, item.stop, item.step)
    ):
        if item.step is not None and item.step <= 0:
            raise Skip(f"indexing [{_index_text(index)}] with a step below 1")
        params: dict[str, Any] = {"axis": axis, "start": item.start, "stop": item.stop}
        params["step"] = item.step or 1
        return _Mapped("slice", {k: v for k, v in params.items() if v is not None}, [source])
    raise Skip(f"indexing [{_index_text(index)}] (archspec selects or slices one axis)")


def _index_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)

    def one(i: Any) -> str:
        if i is Ellipsis:
            return "..."
        if isinstance(i, slice):
            text = f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}"
            return text + (f":{i.step}" if i.step is not None else "")
        return i.name if isinstance(i, fx.Node) else repr(i)

    return ", ".join(one(i) for i in items)


def _flattens_spatial(node: fx.Node) -> fx.Node | None:
    """The grid ``x`` when ``node`` is ``x`` ``[N, C, *S]`` (two or more spatial axes)
    reshaped or flattened to ``[N, C, prod(S)]``."""
    if not (
        (node.op == "call_method" and node.target in ("reshape", "view", "flatten"))
        or (node.op == "call_function" and node.target in (torch.reshape, torch.flatten))
    ):
        return None
    x = node.args[0] if node.args else None
    if not isinstance(x, fx.Node):
        return None
    before, after = _shape(x) or (), _shape(node) or ()
    if len(before) < 4 or len(after) != 3 or after != (*before[:2], _product(before[2:])):
        return None
    if node.target in ("flatten", torch.flatten):
        start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
        if start not in (2, 2 - len(before)) or end not in (-1, len(before) - 1):
            return None
    return x


def _swaps_last_two(node: fx.Node) -> bool:
    """``.permute(0, 2, 1)`` or ``.transpose(1, 2)`` of a 3-axis value."""
    if node.op != "call_method" or len(_shape(node) or ()) != 3:
        return False
    args = list(node.args[1:])
    if node.target == "permute" and len(args) == 1 and isinstance(args[0], list | tuple):
        args = list(args[0])
    dims = [d % 3 for d in args if isinstance(d, int) and not isinstance(d, bool)]
    if len(dims) != len(args):
        return False
    if node.target == "permute":
        return dims == [0, 2, 1]
    return node.target == "transpose" and sorted(dims) == [1, 2]


def _to_tokens(node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """``x.reshape(n, C, h·w).permute(0, 2, 1)`` (or ``.flatten(2).transpose(1, 2)``) of a
    grid ``x`` → ``to_tokens``; any other permute or transpose has no kind here."""
    source = node.args[0]
    if _swaps_last_two(node) and isinstance(source, fx.Node) and _tokens_only(source):
        return _Mapped("to_tokens", {}, [source])  # the reshape is an alias of the grid
    raise Skip(
        f"{_describe(node)} has no archspec kind (archspec maps a grid's "
        "reshape(n, C, h·w).permute(0, 2, 1) to to_tokens)"
    )


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
        if kind == "add" and (learned := _positional(node, shape)) is not None:
            return learned
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


def _flatten_fn(node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    (x,) = _tensor_args(node, 1)
    if _tokens_only(node):
        return None  # the to_tokens its transpose becomes reads the grid itself
    rank = len(_shape(x) or ())
    start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
    return _Mapped(
        "flatten", {"start": _axis(start, rank, "flatten"), "end": _axis(end, rank, "flatten")}, [x]
    )


def _reshape(node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    (x,) = _tensor_args(node, 1)
    if _tokens_only(node):
        return None  # the to_tokens its transpose becomes reads the grid itself
    before = _shape(x) or ()
    if len(shape) == 2 and len(before) > 2 and shape[1] == _product(before[1:]):
        return _Mapped("flatten", {}, [x])
    return _Mapped("reshape", {"shape": tuple(shape[1:])}, [x])


def _tokens_only(node: fx.Node) -> bool:
    """A spatial flatten whose every user swaps its last two axes: part of a to_tokens."""
    return (
        _flattens_spatial(node) is not None
        and bool(node.users)
        and all(_swaps_last_two(user) for user in node.users)
    )


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
    ".expand": _expand,
    ".permute": _to_tokens,
    ".transpose": _to_tokens,
    operator.getitem: _getitem,
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
    """The spec's ``state_dict``: each layer's tensors under its spec name. A path naming a
    parameter itself (torchvision's ``class_token``) maps to the spec key ``names`` gives it
    (``class_token.weight``)."""
    out: dict[str, torch.Tensor] = {}
    for spec_name, path in names.items():
        for key, value in _held(model, path).items():
            out[f"{spec_name}.{key}" if key else spec_name] = value.detach().clone().contiguous()
    return out


def left_out(model: nn.Module, names: dict[str, str]) -> list[str]:
    """Source ``state_dict`` keys no spec layer holds (modules the forward pass never calls)."""
    held = {
        f"{path}.{key}" if key else path for path in names.values() for key in _held(model, path)
    }
    return [key for key in model.state_dict() if key not in held]


def _held(model: nn.Module, path: str) -> dict[str, torch.Tensor]:
    """The tensors at ``path``: a module's ``state_dict``, or ``{"": parameter}``."""
    try:
        return model.get_submodule(path).state_dict()
    except AttributeError:
        return {"": model.get_parameter(path)}
