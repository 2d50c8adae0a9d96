"""A torch module → ops through ``torch.export``, for forward passes ``torch.fx`` cannot trace.

``torch.fx.symbolic_trace`` follows the forward pass with proxies, so Python control flow on
shapes (``if x.shape[-1] > 8:``, ``for i in range(x.shape[1])``) stops it. ``torch.export``
(non-strict) runs the forward pass on fake tensors of the example's shape instead: shape
conditions are decided, loops unrolled, and what is left is a graph of ATen operations
(``aten.conv2d``, ``aten.batch_norm``, ``aten.add_``, …: the training IR export gives by
default; also the core ATen forms of a decomposed program, ``aten.convolution``,
``aten._native_batch_norm_legit_no_training``, ``aten.max_pool2d_with_indices``). Each
node carries its chain of module calls (``nn_module_stack``) and its value's shape, so the
same :class:`Op` values the fx path produces come out: an op that is the only one of a
``torch.nn`` module's call (or whose tensors a module holds) is named by that module's
path, the calls around it become scopes for ``fold.py``. The tensors a layer reads are the
program's lifted parameters and buffers, looked up by their fully qualified names in the
graph signature, so ``state_dict`` keys map to the spec's layer names as with fx.
"""

from __future__ import annotations

import contextlib
import io
import operator
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from archspec.errors import ArchspecError
from archspec.importers.graph import INPUT, Imported, ImportFailed, Op, Scope, Unsupported

_BATCH = 2  # the example's batch size: a node whose first axis differs mixed the batch in
_CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}
_BIG = 2**62  # aten.slice's "to the end"


class ExportFailed(ImportFailed):
    """torch.export could not capture the forward pass (exit 1); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            [f"<forward>: torch.export cannot capture the model: {reason}"],
            "archspec import needs a forward pass whose Python control flow depends on "
            "shapes only, not on tensor values",
        )
        self.reason = reason


class Skip(Exception):
    """This node cannot be mapped: ``what`` says which op and why."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class Captured:
    """The ops, and what the weights and the round trip need: each layer's tensors by the
    spec's local key (``weight``; ``""`` for a layer that is one parameter), their source
    ``state_dict`` names, and the program to compute a reference value with."""

    imported: Imported
    program: Any  # torch.export.ExportedProgram
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    sources: dict[str, set[str]] = field(default_factory=dict)
    model_keys: list[str] = field(default_factory=list)
    # leaf modules the forward pass calls that leave no operation in eval mode (torchvision's
    # StochasticDepth): the spec has no layer for them, so training would differ
    vanished: list[str] = field(default_factory=list)


def capture(model: nn.Module, input_shape: tuple[int, ...], name: str, partial: bool) -> Captured:
    """Export ``model`` on a random batch of 2 and map its ATen graph to ops."""
    model = model.eval()
    example = torch.randn(_BATCH, *input_shape)
    called: dict[str, str] = {}  # leaf module path → class, for those the forward pass calls
    paths = {id(module): path for path, module in model.named_modules() if path}

    def note(module: nn.Module, args: Any, output: Any) -> None:
        called.setdefault(paths[id(module)], type(module).__name__)

    hooks = [
        module.register_forward_hook(note)
        for module in model.modules()
        if id(module) in paths and not any(True for _ in module.children())
    ]
    try:
        with torch.no_grad():
            model(example)
    except Exception as exc:  # the user's code, on a wrong --input
        raise ArchspecError(
            f"the model fails on a random input of shape {list(example.shape)}: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            "check --input (channels first, without the batch axis)",
        ) from exc
    finally:
        for hook in hooks:
            hook.remove()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (example,), strict=False)
    except Exception as exc:  # data-dependent control flow, unsupported Python …
        raise ExportFailed(f"{type(exc).__name__}: {_first_line(exc)}") from exc
    mapper = _Mapper(model, program, input_shape, name, partial)
    imported = mapper.run()
    seen = {
        path
        for node in program.graph_module.graph.nodes
        for path, _ in (node.meta.get("nn_module_stack") or {}).values()
    }
    vanished = [
        f"{path} ({kind})"
        for path, kind in called.items()
        if path not in seen and kind not in ("Identity",)
    ]
    return Captured(
        imported,
        program,
        mapper.tensors,
        mapper.sources,
        list(model.state_dict().keys()),
        vanished,
    )


def weights(captured: Captured, names: dict[str, str]) -> dict[str, torch.Tensor]:
    """The spec's ``state_dict``: each layer's tensors under its spec name (``names``: spec
    name → op path, as ``fold`` gives it)."""
    out: dict[str, torch.Tensor] = {}
    for spec_name, path in names.items():
        for key, value in captured.tensors[path].items():
            out[f"{spec_name}.{key}" if key else spec_name] = value.detach().clone().contiguous()
    return out


def left_out(captured: Captured, names: dict[str, str]) -> list[str]:
    """Source ``state_dict`` keys no spec layer holds."""
    held = {key for path in names.values() for key in captured.sources.get(path, ())}
    return [key for key in captured.model_keys if key not in held]


def reference(captured: Captured, x: torch.Tensor) -> torch.Tensor:
    """The value of the imported output for input ``x`` (batch 2), computed by the program."""
    program = captured.program
    constants = {**program.state_dict, **program.constants}
    args = []
    for spec in program.graph_signature.input_specs:
        # a clone: an in-place op on the input (x.relu_()) must not change the caller's x
        args.append(x.clone() if spec.kind.name == "USER_INPUT" else constants[spec.target])
    key = captured.imported.output
    values: dict[str, Any] = {}

    class Capture(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            value = super().run_node(n)
            if n.name == key:
                values[key] = value
            return value

    with torch.no_grad():
        Capture(program.graph_module).run(*args)
    value = values[key]
    out = value[0] if isinstance(value, tuple | list) else value
    assert isinstance(out, torch.Tensor)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line if len(line) <= 300 else line[:297] + "…"


# --- the graph walk ------------------------------------------------------------------------


@dataclass
class _Mapped:
    kind: str
    params: dict[str, Any]
    inputs: Sequence[fx.Node | str]  # a node, or a key (INPUT)
    tensors: dict[str, fx.Node] = field(default_factory=dict)  # local key → lifted tensor
    path: str = ""  # the module holding the tensors, where their FQNs do not tell it


def _val(node: Any) -> Any:
    return node.meta.get("val") if isinstance(node, fx.Node) else None


def _shape(node: Any) -> tuple[int, ...] | None:
    value = _val(node)
    if isinstance(value, torch.Tensor):
        return tuple(int(d) for d in value.shape)
    if isinstance(value, tuple | list) and value and isinstance(value[0], torch.Tensor):
        return tuple(int(d) for d in value[0].shape)  # (output, indices / statistics)
    return None


def _op_name(node: fx.Node) -> str:
    """``aten.conv2d.default`` → ``conv2d``; a trailing ``_`` (in place) is dropped."""
    target = node.target
    if target is operator.getitem:
        return "getitem"
    packet = getattr(target, "overloadpacket", None)
    name = str(getattr(packet, "__name__", "") or getattr(target, "__name__", str(target)))
    namespace = getattr(target, "namespace", "aten")
    if namespace != "aten":
        return f"{namespace}.{name}"
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def _describe(node: fx.Node) -> str:
    return f"{node.target}" if node.target is not operator.getitem else "getitem"


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)


def _location(node: fx.Node) -> str:
    """``models.py:23`` — the innermost frame of the user's code that made the node."""
    frames = _FRAME.findall(str(node.meta.get("stack_trace") or ""))
    mine = [f for f in frames if not str(Path(f[0]).resolve()).startswith(_TORCH_DIR)]
    if not mine:
        return ""
    path, line, _ = mine[-1]
    return f"{Path(path).name}:{line}"


class _Mapper:
    def __init__(
        self,
        model: nn.Module,
        program: Any,
        shape: tuple[int, ...],
        name: str,
        partial: bool,
    ) -> None:
        self.model, self.program, self.shape = model, program, shape
        self.name, self.partial = name, partial
        self.lifted: dict[str, tuple[str, str]] = {}  # placeholder → (kind, FQN)
        for spec in program.graph_signature.input_specs:
            self.lifted[spec.arg.name] = (spec.kind.name, spec.target or "")
        self.values = {**program.state_dict, **program.constants}
        self.keys: dict[fx.Node, str] = {}
        self.ops: list[Op] = []
        self.full_types: dict[str, str] = {}  # scope call → the module's qualified class
        self.unsupported: list[Unsupported] = []
        self.tensors: dict[str, dict[str, torch.Tensor]] = {}
        self.sources: dict[str, set[str]] = {}
        self.used: set[str] = set()  # the FQNs layers hold
        self.transposed: dict[fx.Node, fx.Node] = {}  # aten.t(w) → w (core ATen linear)
        self.by_fqn: dict[str, fx.Node] = {}  # lifted tensors by their state_dict names
        self.live: set[fx.Node] = set()  # the nodes the output depends on

    def _attention_calls(
        self, nodes: list[fx.Node], live: set[fx.Node]
    ) -> dict[fx.Node, list[fx.Node]]:
        """The live ops of each nn.MultiheadAttention call (export decomposes it), each op →
        its call's ops in order."""
        calls: dict[str, list[fx.Node]] = {}
        for node in nodes:
            stack = node.meta.get("nn_module_stack") or {}
            if node.op != "call_function" or node not in live or not stack:
                continue
            call, (_, kind) = list(stack.items())[-1]
            full = kind if isinstance(kind, str) else kind.__qualname__
            if full.rpartition(".")[2] == "MultiheadAttention":
                calls.setdefault(call, []).append(node)
        return {node: members for members in calls.values() for node in members}

    def _attention(self, members: list[fx.Node]) -> _Mapped:
        """One ``nn.MultiheadAttention`` call (batch first, self-attention, no masks) →
        ``attention``, holding the module's tensors under its own names."""
        last = members[-1]
        inside = set(members)
        if any(u not in inside and u in self.live for n in members[:-1] for u in n.users):
            raise Skip("MultiheadAttention whose attention weights are used")
        path = list((last.meta.get("nn_module_stack") or {}).values())[-1][0]
        module = self.model.get_submodule(path)
        if not path or not isinstance(module, nn.MultiheadAttention):
            raise Skip(f"{type(module).__name__} (an attention module archspec does not know)")
        if not module.batch_first:
            raise Skip("MultiheadAttention with batch_first=False (archspec's batch axis is first)")
        if module.bias_k is not None or module.add_zero_attn:
            raise Skip("MultiheadAttention with add_bias_kv or add_zero_attn")
        bias = module.in_proj_bias is not None
        if bias != (module.out_proj.bias is not None):
            raise Skip("MultiheadAttention with a bias on only some projections")
        outside: list[fx.Node] = []
        for n in members:
            for arg in n.all_input_nodes:
                if arg in inside or arg in outside or arg in self.transposed:
                    continue
                fqn = self.lifted.get(arg.name, ("", ""))[1] if self.is_lifted(arg) else ""
                if self.is_lifted(arg) and fqn.startswith(path + "."):
                    continue  # its own weights
                if self.is_lifted(arg):
                    raise Skip(
                        f"MultiheadAttention with a mask or other tensor ({fqn or arg.name})"
                    )
                outside.append(arg)
        if len(outside) != 1:
            raise Skip(
                "MultiheadAttention with a separate key/value or a mask (through torch.export "
                "archspec maps self-attention; --capture fx maps cross-attention)"
            )
        tensors = {}
        for key in module.state_dict():
            fqn = f"{path}.{key}"
            if fqn not in self.by_fqn:
                raise Skip(f"MultiheadAttention whose '{key}' is not one of its parameters")
            tensors[key] = self.by_fqn[fqn]
        params = {"heads": module.num_heads, "dropout": float(module.dropout), "bias": bias}
        return _Mapped("attention", params, outside, tensors, path)

    # the walk

    def run(self) -> Imported:
        graph = self.program.graph_module.graph
        nodes = list(graph.nodes)
        out_node = nodes[-1]
        outputs = list(self.program.graph_signature.output_specs)
        users = [s for s in outputs if s.kind.name == "USER_OUTPUT"]
        if len(users) != 1:
            self.unsupported.append(
                Unsupported("<forward>", "returns a tuple or dict (archspec has one output)")
            )
        elif len(outputs) != 1:
            changed = [s.target for s in outputs if s.kind.name != "USER_OUTPUT"]
            self.unsupported.append(
                Unsupported(
                    "<forward>",
                    f"changes {', '.join(map(str, changed[:3]))} in eval mode (archspec layers "
                    "keep no state between calls)",
                )
            )
        result = out_node.args[0]
        result_node = result[0] if isinstance(result, tuple | list) and result else result
        live = _live(result_node) if isinstance(result_node, fx.Node) else set()
        stopped: Unsupported | None = None
        told: set[str] = set()  # torch.nn module calls with an unsupported op listed
        self.live = live
        clusters = self._attention_calls(nodes, live)
        for node in nodes:
            if node.op == "placeholder":
                if self.lifted.get(node.name, ("USER_INPUT", ""))[0] == "USER_INPUT":
                    self.keys[node] = INPUT
                else:
                    self.by_fqn[self.lifted[node.name][1]] = node
                continue
            if node.op != "call_function" or node not in live or _shape(node) is None:
                continue  # sizes, asserts, values the output does not need
            if self._transposed_weight(node):
                continue  # aten.t / permute of a 2-d parameter: read by the addmm using it
            cluster = clusters.get(node)
            if cluster is not None and node is not cluster[-1]:
                continue  # inside an attention call: its last op stands for it
            try:
                if cluster is not None:
                    self._emit(node, self._attention(cluster))
                else:
                    self._node(node)
            except Skip as exc:
                call = self._leaf_call(node)
                if call and call in told:  # one line per torch.nn module (attention: many ops)
                    self._pass_through(node)
                    continue
                told.add(call)
                self.unsupported.append(Unsupported(self._where(node), exc.what))
                if self.partial:
                    stopped = self.unsupported[-1]
                    break
                self._pass_through(node, cluster)
        self._name_leaves()
        if stopped is not None:
            if not self.ops:
                raise ImportFailed([stopped.line()], "nothing before it can be imported")
            from archspec.importers.graph import reaching

            ops = reaching(self.ops, self.ops[-1].key)
            return Imported(self.name, self.shape, ops, ops[-1].key, [stopped])
        output = self.keys.get(result_node, "") if isinstance(result_node, fx.Node) else ""
        if output == INPUT:
            output = ""
        return Imported(self.name, self.shape, self.ops, output, self.unsupported)

    def _pass_through(self, node: fx.Node, cluster: list[fx.Node] | None = None) -> None:
        """Let later layers read an unsupported op's input (an attention call's), to list
        what else is unsupported (nothing is written then)."""
        tensors = [a for n in cluster or [node] for a in n.all_input_nodes if a in self.keys]
        if tensors:
            self.keys[node] = self.keys[tensors[0]]

    def _leaf_call(self, node: fx.Node) -> str:
        """The call of the torch.nn module (not a container) ``node`` is in, or ""."""
        scopes = self._scopes(node)
        if not scopes:
            return ""
        full = self.full_types.get(scopes[-1].call, "")
        leaf = full.startswith("torch.nn.modules.") and scopes[-1].type not in _CONTAINERS
        return scopes[-1].call if leaf else ""

    def _where(self, node: fx.Node) -> str:
        scopes = self._scopes(node)
        path = scopes[-1].path if scopes else ""
        at = _location(node)
        if path and at:
            return f"{path} ({at})"
        return path or (f"<top level> ({at})" if at else "")

    def _scopes(self, node: fx.Node) -> tuple[Scope, ...]:
        stack = node.meta.get("nn_module_stack") or {}
        scopes = []
        for call, (path, kind) in stack.items():
            if not path:
                continue  # the model itself
            full = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
            self.full_types[call] = full
            scopes.append(Scope(call, path, full.rpartition(".")[2]))
        return tuple(scopes)

    def _node(self, node: fx.Node) -> None:
        shape = _shape(node)
        assert shape is not None
        if not shape or shape[0] != _BATCH:
            raise Skip(f"{_describe(node)} mixes the batch axis into its output")
        name = _op_name(node)
        rule = RULES.get(name)
        if rule is None:
            raise Skip(f"{_describe(node)} has no archspec kind")
        mapped = rule(self, node, shape)
        if mapped is None:  # an alias: contiguous, clone, (value, indices)[0], …
            sources = [a for a in node.all_input_nodes if a in self.keys]
            if not sources:
                raise Skip(f"{_describe(node)} of a value that was not imported")
            self.keys[node] = self.keys[sources[0]]
            return
        self._emit(node, mapped)

    def _emit(self, node: fx.Node, mapped: _Mapped) -> None:
        inputs = []
        for arg in mapped.inputs:
            if isinstance(arg, str):
                inputs.append(arg)
                continue
            if arg not in self.keys:
                raise Skip(f"{_describe(node)} reads a value that was not imported ({arg.name})")
            inputs.append(self.keys[arg])
        scopes = self._scopes(node)
        path = ""
        if mapped.tensors:
            path = self._hold(node, mapped)
            if scopes and scopes[-1].path == path:
                scopes = scopes[:-1]  # the module holding the tensors is the layer
        op = Op(node.name, mapped.kind, mapped.params, inputs, path, scopes, bool(mapped.tensors))
        self.ops.append(op)
        self.keys[node] = op.key

    def _hold(self, node: fx.Node, mapped: _Mapped) -> str:
        """The path of the module whose tensors the layer reads (their FQNs less the last
        part; a parameter read directly: its own FQN), registering them for the weights."""
        fqns: dict[str, str] = {}
        for key, tensor in mapped.tensors.items():
            kind, fqn = self.lifted.get(tensor.name, ("", ""))
            if kind not in ("PARAMETER", "BUFFER") or not fqn:
                raise Skip(
                    f"{_describe(node)} with a computed or constant {key or 'tensor'} "
                    f"({tensor.name}); archspec layers hold their parameters"
                )
            fqns[key] = fqn
        shared = [fqn for fqn in fqns.values() if fqn in self.used]
        if shared:
            raise Skip(f"'{shared[0]}' used twice (shared weights)")
        owners = {fqn.rpartition(".")[0] for fqn in fqns.values()}
        if mapped.path:
            path = mapped.path
        elif "" in fqns:
            path = fqns[""]
        elif len(owners) == 1 and not owners & {"", *self.tensors}:
            (path,) = owners  # a module's own tensors: the layer is named after the module
        else:  # the model's own tensors, another module's, several modules': after the weight
            path = fqns.get("weight") or next(iter(fqns.values()))
        if path in self.tensors:
            raise Skip(f"the tensors of '{path}' used twice (shared weights)")
        held = {key: self.values[fqn] for key, fqn in fqns.items()}
        sources = set(fqns.values())
        self.used.update(sources)
        if mapped.kind == "batchnorm":  # archspec's batch norm counts batches as torch's does
            count = f"{path}.num_batches_tracked"
            if count in self.values:
                held["num_batches_tracked"] = self.values[count]
                sources.add(count)
            else:
                held["num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        self.tensors[path] = held
        self.sources[path] = sources
        return path

    def _name_leaves(self) -> None:
        """An op that is the only one of a ``torch.nn`` module's call (nn.ReLU → aten.relu)
        is that module's layer: named by its path, outside its scope (as the fx path)."""
        counts: dict[str, int] = {}
        for op in self.ops:
            if op.scopes:
                call = op.scopes[-1].call
                counts[call] = counts.get(call, 0) + 1
        for op in self.ops:
            if op.path or not op.scopes:
                continue
            inner = op.scopes[-1]
            full = self.full_types.get(inner.call, "")
            leaf = full.startswith("torch.nn.modules.") and inner.type not in _CONTAINERS
            if leaf and counts[inner.call] == 1:
                op.path = inner.path
                op.scopes = op.scopes[:-1]

    # helpers for the rules

    def data(self, node: fx.Node, *args: Any) -> list[fx.Node]:
        """The arguments that are layer values (not lifted tensors); each must be one."""
        out = []
        for arg in args:
            if not isinstance(arg, fx.Node) or _shape(arg) is None or self.is_lifted(arg):
                raise Skip(
                    f"{_describe(node)} with a constant or tensor attribute operand "
                    "(archspec combines layers' values)"
                )
            out.append(arg)
        return out

    def is_lifted(self, node: fx.Node) -> bool:
        return node.op == "placeholder" and self.lifted.get(node.name, ("USER_INPUT", ""))[
            0
        ] not in ("USER_INPUT",)

    def _transposed_weight(self, node: fx.Node) -> bool:
        """``aten.t(w)`` / ``aten.permute(w, [1, 0])`` of a lifted 2-d tensor read only by
        ``aten.addmm``/``mm`` as their right operand: the core ATen form of ``linear``."""
        source = node.args[0] if node.args else None
        swap = _op_name(node) == "t" or (
            _op_name(node) == "permute" and list(_arg(node, 1, "dims", ())) == [1, 0]
        )
        if not (swap and isinstance(source, fx.Node) and self.is_lifted(source)):
            return False
        users = list(node.users)
        if not users or any(
            _op_name(u) not in ("addmm", "mm") or u.args[-1] is not node for u in users
        ):
            return False
        self.transposed[node] = source
        return True

    def tensor(self, node: fx.Node, arg: Any, what: str) -> fx.Node:
        if isinstance(arg, fx.Node) and arg in self.transposed:
            return self.transposed[arg]
        if not isinstance(arg, fx.Node) or not self.is_lifted(arg):
            raise Skip(
                f"{_describe(node)} with a computed {what} (archspec layers hold their parameters)"
            )
        return arg


def _live(result: fx.Node) -> set[fx.Node]:
    seen = {result}
    todo = [result]
    while todo:
        for arg in todo.pop().all_input_nodes:
            if arg not in seen:
                seen.add(arg)
                todo.append(arg)
    return seen


# --- rules: one per ATen op (by name, in-place forms included) ------------------------------

Rule = Callable[[_Mapper, fx.Node, tuple[int, ...]], "_Mapped | None"]


def _arg(node: fx.Node, index: int, name: str, default: Any) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _ints(value: Any, rank: int, default: int) -> tuple[int, ...]:
    """An ATen int list (possibly empty or of one item) → ``rank`` ints."""
    if value is None or (isinstance(value, list | tuple) and not value):
        return (default,) * rank
    if isinstance(value, int):
        return (value,) * rank
    items = tuple(int(v) for v in value)
    return items * rank if len(items) == 1 else items


def _axis(dim: int, rank: int, what: str) -> int:
    """A torch dim (batch axis 0) → an archspec axis (no batch axis; negative kept)."""
    if dim == 0 or dim == -rank:
        raise Skip(f"{what} along the batch axis")
    return dim - 1 if dim > 0 else dim


def _conv(transposed: bool | None) -> Rule:
    """aten.conv{1,2,3}d / conv_transpose{1,2,3}d / convolution (transposed read from args)."""

    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        weight = m.tensor(node, node.args[1], "weight")
        bias = _arg(node, 2, "bias", None)
        rank = len(shape) - 2
        wshape = _shape(weight) or ()
        if transposed is None:  # aten.convolution
            stride, padding, dilation = (
                _arg(node, i, n, 0) for i, n in ((3, "s"), (4, "p"), (5, "d"))
            )
            is_t = bool(_arg(node, 6, "transposed", False))
            out_pad, groups = _arg(node, 7, "output_padding", 0), int(_arg(node, 8, "groups", 1))
        elif transposed:
            stride, padding = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0)
            out_pad, groups = _arg(node, 5, "output_padding", 0), int(_arg(node, 6, "groups", 1))
            dilation, is_t = _arg(node, 7, "dilation", 1), True
        else:
            stride, padding = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0)
            dilation, groups = _arg(node, 5, "dilation", 1), int(_arg(node, 6, "groups", 1))
            out_pad, is_t = 0, False
        tensors = {"weight": weight}
        if bias is not None:
            tensors["bias"] = m.tensor(node, bias, "bias")
        common = {
            "kernel": tuple(wshape[2:]),
            "stride": _ints(stride, rank, 1),
            "dilation": _ints(dilation, rank, 1),
            "groups": groups,
            "bias": bias is not None,
        }
        if is_t:
            return _Mapped(
                "conv_transpose",
                {
                    "depth": wshape[1] * groups,
                    **common,
                    "padding": _ints(padding, rank, 0),
                    "output_padding": _ints(out_pad, rank, 0),
                },
                [x],
                tensors,
            )
        pad: Any = (
            padding if padding == "same" else _ints(0 if padding == "valid" else padding, rank, 0)
        )
        return _Mapped(
            "conv",
            {"depth": wshape[0], **common, "padding": pad, "padding_mode": "zeros"},
            [x],
            tensors,
        )

    return rule


def _linear(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    weight = m.tensor(node, node.args[1], "weight")
    bias = _arg(node, 2, "bias", None)
    tensors = {"weight": weight}
    if bias is not None:
        tensors["bias"] = m.tensor(node, bias, "bias")
    units = (_shape(weight) or (0,))[0]
    return _Mapped("dense", {"units": units, "bias": bias is not None}, [x], tensors)


def _addmm(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """Core ATen ``linear``: ``addmm(bias, x, t(weight))`` / ``mm(x, t(weight))``."""
    bias: Any = None
    if _op_name(node) == "addmm":
        bias, x_arg, w_arg = node.args[:3]
        if _arg(node, 3, "beta", 1) != 1 or _arg(node, 4, "alpha", 1) != 1:
            raise Skip(f"{_describe(node)} with beta or alpha")
    else:
        x_arg, w_arg = node.args[:2]
    (x,) = m.data(node, x_arg)
    weight = m.tensor(node, w_arg, "weight")
    tensors = {"weight": weight}
    if bias is not None:
        tensors["bias"] = m.tensor(node, bias, "bias")
    units = (_shape(weight) or (0,))[0]
    return _Mapped("dense", {"units": units, "bias": bias is not None}, [x], tensors)


def _batchnorm(no_training: bool) -> Rule:
    """aten.batch_norm(x, w, b, mean, var, training, momentum, eps, cudnn) or
    aten._native_batch_norm_legit_no_training(x, w, b, mean, var, momentum, eps)."""

    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        w, b, mean, var = (_arg(node, i, "", None) for i in range(1, 5))
        if no_training:
            training, momentum, eps = (
                False,
                _arg(node, 5, "momentum", 0.1),
                _arg(node, 6, "eps", 1e-5),
            )
        else:
            training = bool(_arg(node, 5, "training", False))
            momentum, eps = _arg(node, 6, "momentum", 0.1), _arg(node, 7, "eps", 1e-5)
        if training or mean is None or var is None:
            raise Skip(f"{_describe(node)} without running statistics")
        if (w is None) != (b is None):
            raise Skip(f"{_describe(node)} with only a weight or only a bias")
        tensors = {
            "running_mean": m.tensor(node, mean, "mean"),
            "running_var": m.tensor(node, var, "variance"),
        }
        if w is not None:
            tensors["weight"] = m.tensor(node, w, "weight")
            tensors["bias"] = m.tensor(node, b, "bias")
        owner = m.lifted.get(tensors["running_mean"].name, ("", ""))[1].rpartition(".")[0]
        with contextlib.suppress(AttributeError):
            module = m.model.get_submodule(owner)
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.momentum is None:
                raise Skip(f"{type(module).__name__} with cumulative momentum")
        params = {"eps": float(eps), "momentum": float(momentum), "affine": w is not None}
        return _Mapped("batchnorm", params, [x], tensors)

    return rule


def _affine_norm(kind: str, weight_at: int) -> Rule:
    """aten.layer_norm(x, shape, w, b, eps) / native_layer_norm / group_norm(x, g, w, b, eps)."""

    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        w, b = _arg(node, weight_at, "weight", None), _arg(node, weight_at + 1, "bias", None)
        eps = float(_arg(node, weight_at + 2, "eps", 1e-5))
        if (w is None) != (b is None):
            raise Skip(f"{_describe(node)} with only a weight or only a bias")
        tensors = {}
        if w is not None:
            tensors = {"weight": m.tensor(node, w, "weight"), "bias": m.tensor(node, b, "bias")}
        params: dict[str, Any] = {"eps": eps, "affine": w is not None}
        if kind == "layernorm":
            if len(_arg(node, 1, "", ())) != 1:
                raise Skip(f"{_describe(node)} over more than the last axis")
            params = {"over": "last", **params}
        else:
            params = {"groups": int(_arg(node, 1, "", 0)), **params}
        return _Mapped(kind, params, [x], tensors)

    return rule


def _instancenorm(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    w, b, mean = (_arg(node, i, "", None) for i in (1, 2, 3))
    if mean is not None or not _arg(node, 5, "use_input_stats", True):
        raise Skip(f"{_describe(node)} with running statistics")
    if (w is None) != (b is None):
        raise Skip(f"{_describe(node)} with only a weight or only a bias")
    tensors = {}
    if w is not None:
        tensors = {"weight": m.tensor(node, w, "weight"), "bias": m.tensor(node, b, "bias")}
    eps = float(_arg(node, 7, "eps", 1e-5))
    return _Mapped("instancenorm", {"eps": eps, "affine": w is not None}, [x], tensors)


def _prelu(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    weight = m.tensor(node, node.args[1], "weight")
    fqn = m.lifted[weight.name][1]
    value = m.values[fqn]
    params = {"per_channel": value.numel() > 1, "init": float(value.flatten()[0])}
    return _Mapped("prelu", params, [x], {"weight": weight})


def _unary(kind: str, **fixed: tuple[int, str, Any]) -> Rule:
    """An elementwise op; ``fixed``: parameter → (argument index, name, default)."""

    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        params = {key: _arg(node, i, name, d) for key, (i, name, d) in fixed.items()}
        return _Mapped(kind, params, [x])

    return rule


def _hardtanh(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    low, high = float(_arg(node, 1, "min_val", -1.0)), float(_arg(node, 2, "max_val", 1.0))
    if (low, high) != (0.0, 6.0):
        raise Skip(f"{_describe(node)}({low}, {high}) (archspec clamps to [0, 6]: relu6)")
    return _Mapped("relu6", {}, [x])


def _elu(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    if float(_arg(node, 2, "scale", 1)) != 1 or float(_arg(node, 3, "input_scale", 1)) != 1:
        raise Skip(f"{_describe(node)} with a scale (SELU/CELU)")
    return _Mapped("elu", {"alpha": float(_arg(node, 1, "alpha", 1.0))}, [x])


def _softmax(kind: str) -> Rule:
    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        dim = int(_arg(node, 1, "dim", -1))
        if dim not in (1, 1 - len(shape)) and not (len(shape) == 2 and dim == -1):
            raise Skip(f"{_describe(node)}(dim={dim}): archspec's acts on channels")
        return _Mapped(kind, {}, [x])

    return rule


def _dropout(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    return _Mapped("dropout", {"p": float(_arg(node, 1, "p", 0.5))}, [x])


def _alias(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> None:
    m.data(node, node.args[0])
    return None


def _getitem(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> None:
    """Item 0 of an op giving (value, indices) or (value, statistics) is its value."""
    source, index = node.args[0], node.args[1]
    if index != 0 or not isinstance(source, fx.Node):
        raise Skip(f"item {index} of {source} (archspec layers give one value)")
    return None


def _binary(kind: str) -> Rule:
    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        if node.kwargs.get("alpha", 1) != 1 or len(node.args) != 2:
            raise Skip(f"{_describe(node)} with alpha")
        learned = [a for a in node.args if isinstance(a, fx.Node) and m.is_lifted(a)]
        if kind == "add" and len(learned) == 1:
            return _positional(m, node, shape, learned[0])
        a, b = m.data(node, *node.args)  # broadcasting: the spec check decides
        return _Mapped(kind, {}, [a, b])

    return rule


def _positional(m: _Mapper, node: fx.Node, shape: tuple[int, ...], p: fx.Node) -> _Mapped:
    """``x + parameter`` with a ``[1, *x.shape[1:]]`` parameter → ``positional_embedding``."""
    (x,) = m.data(node, *[a for a in node.args if a is not p])
    own, theirs = _shape(p) or (), _shape(x) or ()
    if own != (1, *theirs[1:]) or tuple(shape) != tuple(theirs):
        raise Skip(
            f"{_describe(node)} of a {list(own)} tensor and a {list(theirs)} value (archspec "
            "adds a learned [1, *shape] tensor of the value's own shape: positional_embedding)"
        )
    return _Mapped("positional_embedding", {}, [x], {"": p})


def _expand(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """``parameter.expand(n, -1, …)`` of a ``[1, *S]`` parameter → ``parameter: {shape: S}``."""
    source = node.args[0]
    if not isinstance(source, fx.Node) or not m.is_lifted(source):
        raise Skip(f"{_describe(node)} of a layer's value (archspec expands learned tensors)")
    own = _shape(source) or ()
    if len(own) < 2 or own[0] != 1 or tuple(shape[1:]) != tuple(own[1:]):
        raise Skip(
            f"{_describe(node)} of a {list(own)} tensor to {list(shape)} (archspec repeats "
            "a [1, *S] parameter over the batch only)"
        )
    # It reads a value only for its batch size: the latest layer's (as fx finds the `x` of
    # torchvision's `x.shape[0]`), the input before any.
    batch = m.ops[-1].key if m.ops else INPUT
    return _Mapped("parameter", {"shape": tuple(own[1:])}, [batch], {"": source})


def _flattens_spatial(node: fx.Node) -> fx.Node | None:
    """The grid ``x`` when ``node`` reshapes or flattens ``x`` ``[N, C, *S]`` (two or more
    spatial axes) to ``[N, C, prod(S)]``."""
    if _op_name(node) not in ("view", "reshape", "_unsafe_view", "flatten"):
        return None
    x = node.args[0] if node.args else None
    before, after = _shape(x) or (), _shape(node) or ()
    if len(before) < 4 or len(after) != 3 or after != (*before[:2], _product(before[2:])):
        return None
    return x if isinstance(x, fx.Node) else None


def _swaps_last_two(node: fx.Node) -> bool:
    """``aten.permute(x, [0, 2, 1])`` or ``aten.transpose(x, 1, 2)`` of a 3-axis value."""
    if len(_shape(node) or ()) != 3:
        return False
    name = _op_name(node)
    if name == "permute":
        return [int(d) % 3 for d in _arg(node, 1, "dims", ())] == [0, 2, 1]
    if name == "transpose":
        return sorted(int(_arg(node, i, "", 0)) % 3 for i in (1, 2)) == [1, 2]
    return False


def _tokens_only(node: fx.Node) -> bool:
    """A spatial flatten whose every user swaps its last two axes: part of a to_tokens."""
    return (
        _flattens_spatial(node) is not None
        and bool(node.users)
        and all(_swaps_last_two(user) for user in node.users)
    )


def _to_tokens(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    """A grid's ``reshape(n, C, h·w).permute(0, 2, 1)`` → ``to_tokens``."""
    source = node.args[0]
    if _swaps_last_two(node) and isinstance(source, fx.Node) and _tokens_only(source):
        grid = _flattens_spatial(source)
        assert grid is not None
        return _Mapped("to_tokens", {}, [grid])
    raise Skip(
        f"{_describe(node)} has no archspec kind (archspec maps a grid's "
        "reshape(n, C, h·w).permute(0, 2, 1) to to_tokens)"
    )


def _cat(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    tensors = m.data(node, *_arg(node, 0, "", ()))
    if len(tensors) == 1:
        return None
    dim = int(_arg(node, 1, "dim", 0))
    return _Mapped("concat", {"axis": _axis(dim, len(shape), "cat")}, tensors)


def _flatten(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    (x,) = m.data(node, node.args[0])
    if _tokens_only(node):
        return None  # part of a to_tokens: the transpose reads the grid itself
    rank = len(_shape(x) or ())
    start, end = int(_arg(node, 1, "start_dim", 0)), int(_arg(node, 2, "end_dim", -1))
    return _Mapped(
        "flatten", {"start": _axis(start, rank, "flatten"), "end": _axis(end, rank, "flatten")}, [x]
    )


def _reshape(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    (x,) = m.data(node, node.args[0])
    if _tokens_only(node):
        return None  # part of a to_tokens: the transpose reads the grid itself
    before = _shape(x) or ()
    if len(shape) == 2 and len(before) > 2 and shape[1] == _product(before[1:]):
        return _Mapped("flatten", {}, [x])
    return _Mapped("reshape", {"shape": tuple(shape[1:])}, [x])


def _product(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def _mean(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    rank = len(_shape(x) or ())
    dims = _arg(node, 1, "dim", None)
    if dims is None or (isinstance(dims, list | tuple) and not dims):
        raise Skip(f"{_describe(node)} over every axis, the batch too")
    dims = [dims] if isinstance(dims, int) else list(dims)
    keep = bool(_arg(node, 2, "keepdim", False))
    axes = tuple(_axis(int(d), rank, "mean") for d in dims)
    return _Mapped("mean", {"axes": axes, "keepdims": keep}, [x])


def _adaptive(kind: str) -> Rule:
    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        return _Mapped("adaptive_pool", {"kind": kind, "size": tuple(shape[2:])}, [x])

    return rule


def _pool(kind: str) -> Rule:
    """aten.max_pool{1,2,3}d[_with_indices](x, k, s, p, d, ceil) /
    aten.avg_pool{1,2,3}d(x, k, s, p, ceil, count_include_pad, divisor_override)."""

    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        rank = len(shape) - 2
        size = _ints(node.args[1], rank, 1)
        stride = _arg(node, 2, "stride", None)
        params: dict[str, Any] = {
            "kind": kind,
            "size": size,
            "stride": size if not stride else _ints(stride, rank, 1),
            "padding": _ints(_arg(node, 3, "padding", 0), rank, 0),
        }
        if kind == "max":
            params["ceil_mode"] = bool(_arg(node, 5, "ceil_mode", False))
            params["dilation"] = _ints(_arg(node, 4, "dilation", 1), rank, 1)
        else:
            if _arg(node, 6, "divisor_override", None) is not None:
                raise Skip(f"{_describe(node)} with divisor_override")
            params["ceil_mode"] = bool(_arg(node, 4, "ceil_mode", False))
            params["count_include_pad"] = bool(_arg(node, 5, "count_include_pad", True))
        return _Mapped("pool", params, [x])

    return rule


def _upsample(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    scales = _arg(node, 2, "scale_factors", None)
    if not scales:
        raise Skip(f"{_describe(node)} to a size (archspec upsamples by a whole scale)")
    if any(float(s) != int(s) for s in scales):
        raise Skip(f"{_describe(node)} with a fractional scale {list(scales)}")
    return _Mapped("upsample", {"scale": tuple(int(s) for s in scales), "mode": "nearest"}, [x])


def _select(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
    (x,) = m.data(node, node.args[0])
    rank = len(_shape(x) or ())
    dim, index = int(_arg(node, 1, "", 0)), int(_arg(node, 2, "", 0))
    return _Mapped("select", {"axis": _axis(dim, rank, "select"), "index": index}, [x])


def _slice(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped | None:
    (x,) = m.data(node, node.args[0])
    before = _shape(x) or ()
    dim = int(_arg(node, 1, "dim", 0))
    start, stop = _arg(node, 2, "start", None), _arg(node, 3, "end", None)
    step = int(_arg(node, 4, "step", 1))
    if tuple(before) == tuple(shape):
        return None  # the whole axis: x[:, :]
    size = before[dim]
    params: dict[str, Any] = {"axis": _axis(dim, len(before), "slice")}
    if start not in (None, 0):
        params["start"] = int(start)
    if stop is not None and int(stop) < size:
        params["stop"] = int(stop)
    params["step"] = step
    return _Mapped("slice", params, [x])


def _shuffle(kind: str, key: str) -> Rule:
    def rule(m: _Mapper, node: fx.Node, shape: tuple[int, ...]) -> _Mapped:
        (x,) = m.data(node, node.args[0])
        return _Mapped(kind, {key: int(_arg(node, 1, "", 0))}, [x])

    return rule


RULES: dict[str, Rule] = {
    "conv1d": _conv(False),
    "conv2d": _conv(False),
    "conv3d": _conv(False),
    "conv_transpose1d": _conv(True),
    "conv_transpose2d": _conv(True),
    "conv_transpose3d": _conv(True),
    "convolution": _conv(None),
    "linear": _linear,
    "addmm": _addmm,
    "mm": _addmm,
    "batch_norm": _batchnorm(False),
    "_native_batch_norm_legit_no_training": _batchnorm(True),
    "layer_norm": _affine_norm("layernorm", 2),
    "native_layer_norm": _affine_norm("layernorm", 2),
    "group_norm": _affine_norm("groupnorm", 2),
    "instance_norm": _instancenorm,
    "prelu": _prelu,
    "_prelu_kernel": _prelu,
    "relu": _unary("relu"),
    "relu6": _unary("relu6"),
    "hardtanh": _hardtanh,
    "leaky_relu": _unary("leaky_relu", slope=(1, "negative_slope", 0.01)),
    "elu": _elu,
    "gelu": _unary("gelu", approximate=(1, "approximate", "none")),
    "silu": _unary("silu"),
    "sigmoid": _unary("sigmoid"),
    "tanh": _unary("tanh"),
    "hardswish": _unary("hardswish"),
    "hardsigmoid": _unary("hardsigmoid"),
    "mish": _unary("mish"),
    "softplus": _unary("softplus", beta=(1, "beta", 1.0), threshold=(2, "threshold", 20.0)),
    "softmax": _softmax("softmax"),
    "_softmax": _softmax("softmax"),
    "log_softmax": _softmax("log_softmax"),
    "_log_softmax": _softmax("log_softmax"),
    "dropout": _dropout,
    "clone": _alias,
    "alias": _alias,
    "detach": _alias,
    "contiguous": _alias,
    "getitem": _getitem,
    "add": _binary("add"),
    "mul": _binary("multiply"),
    "cat": _cat,
    "concat": _cat,
    "flatten": _flatten,
    "view": _reshape,
    "reshape": _reshape,
    "_unsafe_view": _reshape,
    "mean": _mean,
    "adaptive_avg_pool1d": _adaptive("avg"),
    "adaptive_avg_pool2d": _adaptive("avg"),
    "_adaptive_avg_pool2d": _adaptive("avg"),
    "adaptive_avg_pool3d": _adaptive("avg"),
    "_adaptive_avg_pool3d": _adaptive("avg"),
    "adaptive_max_pool1d": _adaptive("max"),
    "adaptive_max_pool2d": _adaptive("max"),
    "adaptive_max_pool3d": _adaptive("max"),
    "max_pool1d": _pool("max"),
    "max_pool2d": _pool("max"),
    "max_pool3d": _pool("max"),
    "max_pool2d_with_indices": _pool("max"),
    "max_pool3d_with_indices": _pool("max"),
    "avg_pool1d": _pool("avg"),
    "avg_pool2d": _pool("avg"),
    "avg_pool3d": _pool("avg"),
    "upsample_nearest1d": _upsample,
    "upsample_nearest2d": _upsample,
    "upsample_nearest3d": _upsample,
    "select": _select,
    "expand": _expand,
    "permute": _to_tokens,
    "transpose": _to_tokens,
    "slice": _slice,
    "pixel_shuffle": _shuffle("pixel_shuffle", "factor"),
    "pixel_unshuffle": _shuffle("pixel_unshuffle", "factor"),
    "channel_shuffle": _shuffle("channel_shuffle", "groups"),
    "native_channel_shuffle": _shuffle("channel_shuffle", "groups"),
}
