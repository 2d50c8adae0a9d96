"""Expanding a spec's layer list into a flat, topologically ordered graph of nodes.

This is where named layers and ``from:``, blocks with arguments, ``repeat:`` and
``when:`` and variable expressions become plain nodes with stable dotted names
(``stage2.0.conv1``) that the builder reuses as module paths. Every problem is
collected with its location; nothing here knows about shapes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import DataPath, Problem, did_you_mean
from archspec.language.expr import ExprError, Scalar, resolve
from archspec.loader.source import SourceMap
from archspec.shapes import kinds

META_KEYS = ("name", "from", "repeat", "when")
NAME = re.compile(r"^[A-Za-z0-9_]+$")
# nn.Module attributes a submodule may not shadow (torch refuses `add_module` for them).
RESERVED = frozenset(
    {
        "input",
        "forward",
        "training",
        "train",
        "eval",
        "parameters",
        "buffers",
        "children",
        "modules",
        "state_dict",
        "load_state_dict",
        "to",
        "cuda",
        "cpu",
        "type",
        "float",
        "double",
        "half",
        "bfloat16",
        "apply",
        "zero_grad",
        "register_buffer",
        "register_parameter",
        "add_module",
        "named_modules",
        "named_parameters",
        "named_buffers",
        "named_children",
        "requires_grad_",
        "share_memory",
        "extra_repr",
        "get_submodule",
        "get_parameter",
        "get_buffer",
        "dump_patches",
        "call_super_init",
        "compile",
        "ipu",
        "xpu",
        "mtia",
        "mps",
        "register_module",
        "set_submodule",
        "get_extra_state",
        "set_extra_state",
        "to_empty",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_backward_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "T_destination",
        "register_state_dict_pre_hook",
        "register_load_state_dict_post_hook",
        "output",
        "register_load_state_dict_pre_hook",
        "register_state_dict_post_hook",
        # archspec's Network (compile/network.py): tests/test_hostile_frontend.py checks
        # this set against dir(nn.Module()) and dir(Network) of the installed torch
        "plan",
        "trace",
        "num_params",
        "logits_only",
        "output_activation",
    }
)


@dataclass
class Ref:
    """A name written in ``from:`` (or an alias), resolved once its scope is complete."""

    scope: Scope
    name: str
    at: DataPath


Target = str | Ref  # str: a node's full name, or "input" (the network input)


@dataclass
class Scope:
    prefix: str  # "" at top level, "stage2.0." inside a block instance
    input: Target
    env: Mapping[str, Scalar]
    group: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    blocks_active: tuple[str, ...] = ()
    names: dict[str, Target] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def fresh(self, base: str) -> str:
        """The next default name ``conv1``, ``conv2``… not taken in this scope."""
        while True:
            self.counts[base] += 1
            name = f"{base}{self.counts[base]}"
            if name not in self.taken and name not in RESERVED:  # `bfloat` ×16 → bfloat16
                self.taken.add(name)
                return name


@dataclass
class Node:
    """A layer after expansion, before its parameters are validated."""

    name: str
    kind: str
    raw: Any  # the parameter value, expressions evaluated
    refs: list[Target]
    entry: DataPath  # the layer entry in the source
    op: str  # the kind key as written (params live at entry + (op,))
    group: tuple[str, ...]
    notes: tuple[str, ...]
    env: Mapping[str, Scalar]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    args: dict[str, Any]  # name → default (None: required)
    layers: list[Any]
    output: str | None
    path: DataPath
    layers_path: DataPath


@dataclass
class Graph:
    nodes: list[Node]
    output: str
    problems: list[Problem]


def poison(path: DataPath) -> str:
    """A stand-in node name for an entry that failed: layers reading it are not inferred."""
    return f"<invalid {'/'.join(map(str, path))}>"


def is_poison(name: str) -> bool:
    return name.startswith("<invalid ")


class Expander:
    def __init__(self, source: SourceMap, blocks: Mapping[str, Block], max_nodes: int) -> None:
        self.source = source
        self.blocks = blocks
        self.max_nodes = max_nodes
        self.nodes: list[Node] = []
        self.problems: list[Problem] = []
        self.full_names: set[str] = set()
        self.overflowed = False

    def problem(
        self,
        path: DataPath,
        message: str,
        hint: str = "",
        notes: tuple[str, ...] = (),
        key: bool = False,
    ) -> None:
        self.problems.append(Problem(message, hint, self.source.locate(path, key=key), path, notes))

    # ------------------------------------------------------------------ entries
    def expand(self, entries: list[Any], path: DataPath, scope: Scope) -> Target:
        """Expand ``entries`` in ``scope``; returns the target of the last one."""
        scope.taken.update(self._explicit_names(entries))
        previous: Target = scope.input
        for i, entry in enumerate(entries):
            if self._over(path):
                break
            previous = self._entry(entry, (*path, i), scope, previous)
        return previous

    def _over(self, path: DataPath) -> bool:
        """True once the layer limit is passed; reported once, and from then on every loop
        stops at once. (Found by tests/test_safety.py: nested blocks with `repeat: 100000`
        each kept looping after the limit — 27 s for three levels, hours for four.)"""
        if len(self.nodes) <= self.max_nodes:
            return False
        if not self.overflowed:
            self.overflowed = True
            self.problem(
                path,
                f"the network expands to more than {self.max_nodes:,} layers",
                "lower `repeat:` counts or raise the layer limit (--max-layers)",
            )
        return True

    def _explicit_names(self, entries: list[Any]) -> set[str]:
        return {str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e}

    def _entry(self, entry: Any, path: DataPath, scope: Scope, previous: Target) -> Target:
        """Expand one entry; a broken one yields a poison target that later layers skip."""
        parsed = self._split(entry, path, scope)
        if parsed is None:
            return poison(path)
        op, value, meta = parsed
        sources = self._sources(meta.get("from"), path, scope, previous)
        name = self._name(meta.get("name"), path, scope)
        when = self._scalar_meta(meta, "when", path, scope, True)
        repeat = self._scalar_meta(meta, "repeat", path, scope, 1)
        if when is None or repeat is None or sources is None:
            out: Target = poison(path)
        elif not when:
            out = sources[0]
        elif op in self.blocks:
            out = self._use_block(op, value, path, scope, sources, name, repeat)
        else:
            out = self._layer(op, value, path, scope, sources, name, repeat)
        if name:
            scope.names[name] = out
        return out

    def _split(
        self, entry: Any, path: DataPath, scope: Scope
    ) -> tuple[str, Any, dict[str, Any]] | None:
        if isinstance(entry, str):
            entry = {entry: None}
        if not isinstance(entry, dict):
            self.problem(
                path,
                f"a layer is a kind name (`- relu`) or a one-key mapping "
                f"(`- dense: 10`); received {type(entry).__name__} {entry!r}",
                "write the layer as `- kind` or `- kind: parameters`",
                scope.notes,
            )
            return None
        ops = [key for key in entry if key not in META_KEYS]
        if len(ops) != 1:
            self._bad_ops(ops, path, scope)
            return None
        op = ops[0]
        if kinds.canonical(op) is None and op not in self.blocks:
            choices = [*kinds.names(), *self.blocks]
            self.problem(
                (*path, op),
                f"unknown layer kind '{op}'",
                did_you_mean(op, choices) or f"known kinds: {', '.join(kinds.REGISTRY)}",
                scope.notes,
                key=True,
            )
            return None
        meta = {key: entry[key] for key in META_KEYS if key in entry}
        return op, self._evaluate(entry[op], (*path, op), scope), meta

    def _bad_ops(self, ops: list[str], path: DataPath, scope: Scope) -> None:
        if not ops:
            self.problem(
                path,
                "this layer has no kind, only name/from/repeat/when keys",
                "add the kind, e.g. `- conv: {...}` with `name:` beside it",
                scope.notes,
            )
        else:
            self.problem(
                (*path, ops[1]),
                f"one list item holds {len(ops)} layers: {', '.join(ops)}",
                "give each layer its own `- ` item",
                scope.notes,
                key=True,
            )

    # ------------------------------------------------------------- meta keys
    def _scalar_meta(
        self, meta: dict[str, Any], key: str, path: DataPath, scope: Scope, default: Any
    ) -> Any:
        if key not in meta:
            return default
        value = self._evaluate(meta[key], (*path, key), scope)
        if key == "when":
            if isinstance(value, bool):
                return value
            self.problem(
                (*path, key),
                f"when must be true, false or a boolean variable; received {value!r}",
                "use a boolean variable, e.g. `when: downsample`",
                scope.notes,
            )
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= self.max_nodes:
            return value
        self.problem(
            (*path, key),
            f"repeat must be a whole number from 1 to {self.max_nodes:,}; received {value!r}",
            "write e.g. `repeat: 3`",
            scope.notes,
        )
        return None

    def _name(self, value: Any, path: DataPath, scope: Scope) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)  # `name: 0`, as torchvision names `layer1.0`
        if not isinstance(value, str) or not NAME.match(value):
            self.problem(
                (*path, "name"),
                f"a layer name is a word of letters, digits and _; received {value!r}",
                "rename it, e.g. `name: skip1`",
                scope.notes,
            )
            return None
        if value in RESERVED or value.startswith("_"):  # `_x`/`__x__`: nn.Module internals
            self.problem(
                (*path, "name"), f"'{value}' is reserved", "choose another name", scope.notes
            )
            return None
        if value in scope.names:
            self.problem(
                (*path, "name"),
                f"the name '{value}' is already used in this scope",
                "give each layer a unique name",
                scope.notes,
            )
            return None
        return value

    def _sources(
        self, value: Any, path: DataPath, scope: Scope, previous: Target
    ) -> list[Target] | None:
        if value is None:
            return [previous]
        items = value if isinstance(value, list) else [value]
        paths = (
            [(*path, "from", i) for i in range(len(items))]
            if isinstance(value, list)
            else [(*path, "from")]
        )
        if not items or not all(isinstance(item, str) for item in items):
            self.problem(
                (*path, "from"),
                f"from must be a layer name or a list of names; received {value!r}",
                "write `from: name` or `from: [a, b]`",
                scope.notes,
            )
            return None
        return [Ref(scope, item, at) for item, at in zip(items, paths, strict=True)]

    def _evaluate(self, value: Any, path: DataPath, scope: Scope) -> Any:
        if isinstance(value, str):
            try:
                return resolve(value, scope.env)
            except ExprError as exc:
                self.problem(path, exc.message, exc.hint, scope.notes)
                return value
        if isinstance(value, dict):
            return {k: self._evaluate(v, (*path, k), scope) for k, v in value.items()}
        if isinstance(value, list):
            return [self._evaluate(v, (*path, i), scope) for i, v in enumerate(value)]
        return value

    # ------------------------------------------------------------ layers, blocks
    def _layer(
        self,
        op: str,
        value: Any,
        path: DataPath,
        scope: Scope,
        sources: list[Target],
        name: str | None,
        repeat: int,
    ) -> Target:
        kind = kinds.get(op)
        low, high = kind.inputs
        if not low <= len(sources) <= (high or len(sources)):
            want = f"at least {low}" if high is None else f"{low}"
            self.problem(
                (*path, "from"),
                f"{kind.name} takes {want} input{'s' if low > 1 else ''}, "
                f"but from names {len(sources)}",
                _arity_hint(kind.name, low),
                scope.notes,
            )
            return poison(path)
        current: list[Target] = sources
        for r in range(repeat):
            if self._over(path):
                return poison(path)
            local = (f"{name}.{r}" if repeat > 1 else name) if name else scope.fresh(kind.name)
            full = scope.prefix + local
            group = (*scope.group, scope.prefix + name) if name and repeat > 1 else scope.group
            self.nodes.append(
                Node(full, kind.name, value, current, path, op, group, scope.notes, scope.env)
            )
            self.full_names.add(full)
            current = [full]
        return current[0]

    def _use_block(
        self,
        op: str,
        value: Any,
        path: DataPath,
        scope: Scope,
        sources: list[Target],
        name: str | None,
        repeat: int,
    ) -> Target:
        block = self.blocks[op]
        if op in scope.blocks_active:
            self.problem(
                (*path, op),
                f"block '{op}' uses itself",
                "a block cannot contain itself, directly or through another block",
                scope.notes,
                key=True,
            )
            return poison(path)
        if len(sources) != 1:
            self.problem(
                (*path, "from"),
                f"a block takes one input, but from names {len(sources)}",
                "merge them first (add/concat) and feed the result",
                scope.notes,
            )
            return poison(path)
        args = self._block_args(op, block, value, path, scope)
        if args is None:
            return poison(path)
        current: Target = sources[0]
        for r in range(repeat):
            if self._over(path):
                return poison(path)
            local = (f"{name}.{r}" if repeat > 1 else name) if name else scope.fresh(op)
            where = self.source.locate(path)
            used = where.line if where else "?"
            note = f"in {scope.prefix}{local} (block '{op}' used at line {used})"
            group = (*scope.group, scope.prefix + name) if name and repeat > 1 else scope.group
            child = Scope(
                prefix=f"{scope.prefix}{local}.",
                input=current,
                env=args,
                group=(*group, scope.prefix + local),
                notes=(*scope.notes, note),
                blocks_active=(*scope.blocks_active, op),
            )
            last = self.expand(block.layers, block.layers_path, child)
            current = Ref(child, block.output, (*block.path, "output")) if block.output else last
        return current

    def _block_args(
        self, op: str, block: Block, value: Any, path: DataPath, scope: Scope
    ) -> dict[str, Scalar] | None:
        if value is None:
            given: dict[str, Any] = {}
        elif isinstance(value, dict):
            given = value
        elif len(block.args) == 1:
            given = {next(iter(block.args)): value}
        else:
            self.problem(
                (*path, op),
                f"block '{op}' takes arguments {', '.join(block.args) or 'none'}; "
                f"write them as a mapping",
                f"e.g. `{op}: {{...}}`",
                scope.notes,
            )
            return None
        ok = True
        misspelt = set()  # `depht: 4` is one mistake, not also "needs argument 'depth'"
        for key in given:
            if key not in block.args:
                suggestion = did_you_mean(key, block.args)
                misspelt.add(suggestion.split("'")[1] if suggestion else "")
                self.problem(
                    (*path, op, key),
                    f"block '{op}' has no argument '{key}'",
                    suggestion or f"its arguments: {', '.join(block.args) or 'none'}",
                    scope.notes,
                    key=True,
                )
                ok = False
        for key, default in block.args.items():
            if key not in given and default is None and key not in misspelt:
                self.problem(
                    (*path, op),
                    f"block '{op}' needs argument '{key}'",
                    f"add `{key}: ...`",
                    scope.notes,
                )
                ok = False
        return {**scope.env, **block.args, **given} if ok else None


def _arity_hint(kind: str, low: int) -> str:
    if low > 1:
        return f"list the inputs: `from: [a, b]` ({kind} merges several branches)"
    return "merge the branches first with add, concat or multiply"


def resolve_target(target: Target, full_names: set[str], seen: frozenset[int] = frozenset()) -> str:
    """A target's node name ("input" for the network input); raises ``LookupError``."""
    while isinstance(target, Ref):
        if id(target) in seen:
            raise LookupError(
                target,
                f"'{target.name}' refers to itself through skipped layers",
                "break the loop of `when: false` layers",
            )
        seen = seen | {id(target)}
        scope = target.scope
        if target.name == "input":
            target = scope.input
        elif target.name in scope.names:
            target = scope.names[target.name]
        elif scope.prefix + target.name in full_names:
            return scope.prefix + target.name
        else:
            choices = [*scope.names, "input"]
            raise LookupError(
                target,
                f"from names '{target.name}', which is not a layer here",
                did_you_mean(target.name, choices) or f"names here: {', '.join(choices)}",
            )
    return target
