"""Expanding a spec's layer list into a flat, topologically ordered graph of nodes.

This is where named layers and ``from:``, blocks with arguments, ``repeat:`` and
``when:`` and variable expressions become plain nodes with stable dotted names
(``stage2.0.conv1``) that the builder reuses as module paths. Every problem is
collected with its location; nothing here knows about shapes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import DataPath, Names, Problem, listing, suggest
from archspec.language.expr import ExprError, Scalar, evaluate_tree
from archspec.loader.source import SourceMap
from archspec.shapes import kinds

META_KEYS = ("name", "from", "repeat", "when", "outputs")
# Blocks inside blocks, at most this deep: expansion recurses once per level (a chain of
# 400 blocks using one another reached Python's recursion limit, exit 3).
MAX_BLOCK_DEPTH = 100
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
        "input_names",
    }
)


@dataclass
class Ref:
    """A name written in ``from:`` (or an alias), resolved once its scope is complete."""

    scope: Scope
    name: str
    at: DataPath


@dataclass(frozen=True)
class Port:
    """One output of a layer with several (``outputs: [a, b]`` names them)."""

    node: str  # the layer's full name
    index: int
    name: str  # as written in `outputs:`


# str: a node's full name, or "input" (the network input); Port: one output of a split
Target = str | Ref | Port


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
    _known: Names | None = field(default=None, repr=False)

    def known(self) -> Names:
        """The names a ``from:`` here may use, indexed once (names are only ever added)."""
        if self._known is None or len(self._known.choices) != len(self.names) + (
            self.input != NO_INPUT
        ):
            # with several inputs, the top scope has no `input` (each is read by name)
            default = () if self.input == NO_INPUT else ("input",)
            self._known = Names((*self.names, *default))
        return self._known

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
    ports: tuple[int, ...] = ()  # which output of each input (0: its only one)
    outputs: tuple[str, ...] = ()  # the names of its outputs, for a layer with several


@dataclass(frozen=True)
class Block:
    args: dict[str, Any]  # name → default (None: required)
    layers: list[Any]
    output: str | None
    path: DataPath
    layers_path: DataPath


@dataclass(frozen=True)
class Use:
    """One entry that places a layer or a block: what the two expansions share."""

    op: str  # the kind or block name as written
    value: Any  # its parameters or arguments, expressions evaluated
    path: DataPath  # the entry in the source
    scope: Scope
    sources: list[Target]
    name: str | None
    repeat: int
    outputs: tuple[str, ...] = ()


# The target of a first layer without `from:` when the network has several inputs: no
# default, so the layer must say which one it reads (order.resolve_inputs reports it).
NO_INPUT = "<no default input>"


def poison(path: DataPath) -> str:
    """A stand-in node name for an entry that failed: layers reading it are not inferred."""
    return f"<invalid {'/'.join(map(str, path))}>"


def is_poison(name: str) -> bool:
    return name.startswith("<invalid ")


class Expander:
    def __init__(
        self,
        source: SourceMap,
        blocks: Mapping[str, Block],
        max_nodes: int,
        inputs: frozenset[str] = frozenset(),
    ) -> None:
        self.source = source
        self.inputs = inputs  # the names in `inputs:` (empty: the one `input`)
        self.blocks = blocks
        self.max_nodes = max_nodes
        self.nodes: list[Node] = []
        self.problems: list[Problem] = []
        self.full_names: set[str] = set()
        self.several: dict[str, tuple[str, ...]] = {}  # layer → its outputs' names
        self.overflowed = False
        # Past MAX_BLOCK_DEPTH once, no block is placed again: a chain of blocks that each
        # use the next three times fails at every one of 3^k leaves (issue #13: 177,147
        # copies of one error, 6 s); the first is reported, located, and the spec is invalid.
        self.too_deep = False
        self._names: dict[
            tuple[str, ...], Names
        ] = {}  # suggestion indexes, built at the first typo

    def names(self, what: tuple[str, ...], choices: Callable[[], list[str]]) -> Names:
        """The names to suggest from for ``what``, indexed once however many typos there are
        (a spec may hold thousands of blocks, and thousands of misspellings)."""
        if what not in self._names:
            self._names[what] = Names(choices())
        return self._names[what]

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
            if self.overflowed:
                break
            previous = self._entry(entry, (*path, i), scope, previous)
        return previous

    def _room(self, path: DataPath) -> bool:
        """Whether one more layer fits under the limit. Past it, the problem is reported
        once and every loop stops at once (found by tests/test_safety.py: nested blocks with
        `repeat: 100000` each kept looping after the limit — 27 s for three levels, hours
        for four). Asked before each layer is added, so ``--max-layers N`` accepts N."""
        if len(self.nodes) < self.max_nodes and not self.overflowed:
            return True
        self._overflow(path)
        return False

    def _overflow(self, path: DataPath) -> None:
        """Report the limit once, at ``path``, and stop every loop."""
        if not self.overflowed:
            self.overflowed = True
            self.problem(
                path,
                f"the network expands to more than {self.max_nodes:,} layers",
                "lower `repeat:` counts or raise the layer limit (--max-layers)",
            )

    def _explicit_names(self, entries: list[Any]) -> set[str]:
        names = {str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e}
        for e in entries:
            if isinstance(e, dict) and isinstance(e.get("outputs"), list):
                names.update(str(n) for n in e["outputs"])
        return names

    def _entry(self, entry: Any, path: DataPath, scope: Scope, previous: Target) -> Target:
        """Expand one entry; a broken one yields a poison target that later layers skip."""
        parsed = self._split(entry, path, scope)
        if parsed is None:
            return poison(path)
        op, value, meta = parsed
        if not meta and op not in self.blocks and not kinds.get(op).several_outputs:
            # the common entry, `- kind: params` alone: what the steps below give for it
            return self._layer(Use(op, value, path, scope, [previous], None, 1, ()))
        sources = self._sources(meta.get("from"), path, scope, previous)
        name = self._name(meta.get("name"), path, scope)
        when = self._scalar_meta(meta, "when", path, scope, True)
        repeat = self._scalar_meta(meta, "repeat", path, scope, 1)
        outputs = self._outputs(op, meta, path, scope, repeat)
        if when is None or repeat is None or sources is None or outputs is None:
            out: Target = poison(path)
        elif not when or repeat == 0:
            out = sources[0]
        elif op in self.blocks:
            out = self._use_block(Use(op, value, path, scope, sources, name, repeat))
        else:
            out = self._layer(Use(op, value, path, scope, sources, name, repeat, outputs))
        if name:
            scope.names[name] = out
        for i, label in enumerate(outputs or ()):
            # a skipped layer passes its input on: then each name reads that input
            placed = isinstance(out, str) and out in self.several
            scope.names[label] = Port(out, i, label) if placed and isinstance(out, str) else out
        return out

    def _outputs(
        self, op: str, meta: dict[str, Any], path: DataPath, scope: Scope, repeat: Any
    ) -> tuple[str, ...] | None:
        """The names in ``outputs:`` (``()`` without it), or ``None`` after a problem."""
        several = op not in self.blocks and kinds.get(op).several_outputs
        if "outputs" not in meta:
            if several:
                self.problem(
                    (*path, op),
                    f"{kinds.get(op).name} has several outputs, but they have no names",
                    "name each one: `outputs: [a, b]`, and read them with `from: a`",
                    scope.notes,
                    key=True,
                )
                return None
            return ()
        value, at = meta["outputs"], (*path, "outputs")
        if not several:
            what = f"block '{op}'" if op in self.blocks else f"{kinds.get(op).name}"
            self.problem(
                at,
                f"{what} has one output; `outputs:` names the outputs of a layer with several "
                "(split, chunk)",
                "remove `outputs:` (use `name:` to name it)",
                scope.notes,
                key=True,
            )
            return None
        if not isinstance(value, list) or not value:
            self.problem(
                at,
                f"outputs must be a list of names; received {value!r}",
                "write e.g. `outputs: [left, right]`",
                scope.notes,
            )
            return None
        if repeat not in (None, 1):
            self.problem(
                (*path, "repeat"),
                "a layer with several outputs cannot be repeated (which output would the next "
                "copy read?)",
                "write each copy as its own entry",
                scope.notes,
            )
            return None
        names: list[str] = []
        for i, item in enumerate(value):
            label = self._name(item, (*path, "outputs", i), scope, "an output name")
            if label is None:
                return None
            if label in names:
                self.problem(
                    (*path, "outputs", i),
                    f"outputs names '{label}' twice",
                    "give each output its own name",
                    scope.notes,
                )
                return None
            names.append(label)
        return tuple(names)

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
            choices = self.names(("kinds",), lambda: [*kinds.names(), *self.blocks])
            self.problem(
                (*path, op),
                f"unknown layer kind '{op}'",
                suggest(op, choices) or f"known kinds: {', '.join(kinds.REGISTRY)}",
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
                f"when must be true, false or a condition; received {value!r}",
                "use a boolean variable or a comparison, e.g. `when: downsample` or `when: n > 1`",
                scope.notes,
            )
            return None
        # `repeat: 0` (e.g. `n - 1` with n = 1) places nothing: the entry passes its input on
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= self.max_nodes:
            return value
        self.problem(
            (*path, key),
            f"repeat must be a whole number from 0 to {self.max_nodes:,}; received {value!r}",
            "write e.g. `repeat: 3` (0 places nothing)",
            scope.notes,
        )
        return None

    def _name(
        self, value: Any, path: DataPath, scope: Scope, what: str = "a layer name"
    ) -> str | None:
        """A valid name not yet used in ``scope``; ``what`` says which (``an output name``,
        located at ``path`` itself; a layer name at ``path``'s `name:`)."""
        if value is None:
            return None
        at = (*path, "name") if what == "a layer name" else path
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)  # `name: 0`, as torchvision names `layer1.0`
        if not isinstance(value, str) or not NAME.match(value):
            self.problem(
                at,
                f"{what} is a word of letters, digits and _; received {value!r}",
                "rename it, e.g. `name: skip1`",
                scope.notes,
            )
            return None
        if value in RESERVED or value.startswith("_"):  # `_x`/`__x__`: nn.Module internals
            self.problem(at, f"'{value}' is reserved", "choose another name", scope.notes)
            return None
        if not scope.prefix and value in self.inputs:
            self.problem(
                at,
                f"'{value}' names an input; a layer cannot have the same name",
                "rename the layer (or the input)",
                scope.notes,
            )
            return None
        if value in scope.names:
            self.problem(
                at,
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
        def report(at: DataPath, exc: ExprError) -> None:
            self.problem(at, exc.message, exc.hint, scope.notes)

        return evaluate_tree(value, path, scope.env, report)

    # ------------------------------------------------------------ layers, blocks
    def _layer(self, use: Use) -> Target:
        kind = kinds.get(use.op)
        low, high = kind.inputs
        if not low <= len(use.sources) <= (high or len(use.sources)):
            want = f"at least {low}" if high is None else f"{low}"
            self.problem(
                (*use.path, "from"),
                f"{kind.name} takes {want} input{'s' if low > 1 else ''}, "
                f"but from names {len(use.sources)}",
                _arity_hint(kind.name, low),
                use.scope.notes,
            )
            return poison(use.path)

        def place(local: str, group: tuple[str, ...], inputs: list[Target]) -> Target:
            full = use.scope.prefix + local
            node = Node(
                full,
                kind.name,
                use.value,
                inputs,
                use.path,
                use.op,
                group,
                use.scope.notes,
                use.scope.env,
                outputs=use.outputs,
            )
            self.nodes.append(node)
            self.full_names.add(full)
            if use.outputs:
                self.several[full] = use.outputs
            return full

        return self._repeat(use, kind.name, place)

    def _use_block(self, use: Use) -> Target:
        op, path, scope = use.op, use.path, use.scope
        block = self.blocks[op]
        if self.too_deep:
            return poison(path)
        if op in scope.blocks_active or len(scope.blocks_active) >= MAX_BLOCK_DEPTH:
            self._bad_nesting(use)
            self.too_deep = op not in scope.blocks_active
            return poison(path)
        if len(use.sources) != 1:
            self.problem(
                (*path, "from"),
                f"a block takes one input, but from names {len(use.sources)}",
                "merge them first (add/concat) and feed the result",
                scope.notes,
            )
            return poison(path)
        args = self._block_args(op, block, use.value, path, scope)
        if args is None:
            return poison(path)
        where = self.source.locate(path)
        used = where.line if where else "?"

        def place(local: str, group: tuple[str, ...], inputs: list[Target]) -> Target:
            note = f"in {scope.prefix}{local} (block '{op}' used at line {used})"
            child = Scope(
                prefix=f"{scope.prefix}{local}.",
                input=inputs[0],
                env=args,
                group=(*group, scope.prefix + local),
                notes=(*scope.notes, note),
                blocks_active=(*scope.blocks_active, op),
            )
            last = self.expand(block.layers, block.layers_path, child)
            return Ref(child, block.output, (*block.path, "output")) if block.output else last

        return self._repeat(use, op, place)

    def _repeat(
        self,
        use: Use,
        base: str,
        place: Callable[[str, tuple[str, ...], list[Target]], Target],
    ) -> Target:
        """Place ``use`` ``repeat`` times in a chain, each instance reading the one before;
        ``base`` names unnamed instances (``conv1``, ``conv2``…)."""
        scope, name = use.scope, use.name
        group = (*scope.group, scope.prefix + name) if name and use.repeat > 1 else scope.group
        current = use.sources
        before = len(self.nodes)
        for r in range(use.repeat):
            if r == 1 and before + (len(self.nodes) - before) * use.repeat > self.max_nodes:
                # every instance expands alike: `repeat: 99999` is refused after its first
                # instance, not after expanding up to the limit
                self._overflow(use.path)
                return poison(use.path)
            if not self._room(use.path):
                return poison(use.path)
            local = (f"{name}.{r}" if use.repeat > 1 else name) if name else scope.fresh(base)
            current = [place(local, group, current)]
        return current[0]

    def _bad_nesting(self, use: Use) -> None:
        if use.op in use.scope.blocks_active:
            message = f"block '{use.op}' uses itself"
            hint = "a block cannot contain itself, directly or through another block"
        else:
            message = f"blocks nest more than {MAX_BLOCK_DEPTH} deep here"
            hint = "use fewer levels of blocks inside blocks (repeat: a block instead)"
        self.problem((*use.path, use.op), message, hint, use.scope.notes, key=True)

    def _block_args(
        self, op: str, block: Block, value: Any, path: DataPath, scope: Scope
    ) -> dict[str, Scalar] | None:
        if value is None:
            given: dict[str, Any] = {}
        elif isinstance(value, dict):
            given = value
        elif len(required := [k for k, d in block.args.items() if d is None]) == 1 or (
            len(block.args) == 1
        ):
            # the short form `- unit: 64` sets the only argument, or the only required one
            given = {(required or list(block.args))[0]: value}
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
                meant = self.names(("block", op), lambda: list(block.args)).closest(key)
                misspelt.add(meant or "")
                self.problem(
                    (*path, op, key),
                    f"block '{op}' has no argument '{key}'",
                    f"did you mean '{meant}'?"
                    if meant
                    else f"its arguments: {', '.join(block.args) or 'none'}",
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


class Unresolved(LookupError):
    """A ``from:`` or ``output:`` name that names no layer (``loop``: it reaches itself
    through skipped layers). The caller words the problem; ``choices`` are the names that
    would have resolved."""

    def __init__(self, ref: Ref, loop: bool) -> None:
        super().__init__(ref.name)
        self.ref = ref
        self.loop = loop
        self.choices = Names(()) if loop else ref.scope.known()

    def problem(self, role: str, source: SourceMap, notes: tuple[str, ...] = ()) -> Problem:
        """The located problem; ``role`` is the key that named it (``from``, ``output``)."""
        at = self.ref.at
        if self.loop:
            message = f"'{self.ref.name}' refers to itself through skipped layers"
            hint = "break the loop of `when: false` layers"
        else:
            message = f"{role} names '{self.ref.name}', which is not a layer here"
            hint = suggest(self.ref.name, self.choices)
            hint = hint or f"names here: {listing(self.choices.choices)}"
        return Problem(message, hint, source.locate(at), at, notes)


def resolve_target(target: Target, full_names: set[str]) -> str:
    """A target's node name ("input" for the network input); raises :class:`Unresolved`."""
    return resolve_port(target, full_names)[0]


def resolve_port(target: Target, full_names: set[str]) -> tuple[str, int | None]:
    """A target's node name and, for one output of a layer with several, its index
    (``None``: the node itself); raises :class:`Unresolved`."""
    seen: set[int] = set()
    while isinstance(target, Ref):
        if id(target) in seen:
            raise Unresolved(target, loop=True)
        seen.add(id(target))
        scope = target.scope
        if target.name == "input":
            target = scope.input
        elif target.name in scope.names:
            target = scope.names[target.name]
        elif scope.prefix + target.name in full_names:
            return scope.prefix + target.name, None
        else:
            raise Unresolved(target, loop=False)
    if isinstance(target, Port):
        return target.node, target.index
    return target, None
