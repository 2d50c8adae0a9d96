"""YAML text → plain data + a source map, safely.

The loader keeps, for every value in the document, where it came from, so any
later stage can say ``file:line:col``. It is deliberately stricter than PyYAML's
``safe_load``:

* resource guards run on the event stream *before* anything is built: file
  size, nesting depth, and the size of the document after alias expansion
  (a "billion laughs" document is refused in milliseconds);
* only the plain YAML types are allowed — any explicit tag such as
  ``!!python/object`` is an error, nothing is ever constructed from a tag;
* duplicate keys are errors (PyYAML silently keeps the last one);
* scalars follow the YAML 1.2 core schema: ``1e-4`` is a float, ``no`` and
  ``on`` stay strings, only ``true``/``false`` are booleans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DataPath, Location, Problem, SpecError


@dataclass(frozen=True)
class Limits:
    """Resource limits for untrusted specs (all configurable)."""

    max_bytes: int = 1_000_000
    max_depth: int = 64
    max_nodes: int = 200_000  # after alias expansion


DEFAULT_LIMITS = Limits()


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document came from."""

    file: str
    values: dict[DataPath, Location] = field(default_factory=dict)
    keys: dict[DataPath, Location] = field(default_factory=dict)

    def locate(self, path: DataPath, *, key: bool = False) -> Location | None:
        """The location of ``path``, or of its closest existing ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            loc = self.values.get(path[:end])
            if loc is not None:
                return loc
        return None


@dataclass(frozen=True)
class Document:
    data: Any
    source: SourceMap


_DECIMAL = re.compile(r"[-+]?[0-9][0-9_]*$")
_RADIX = re.compile(r"0o[0-7]+$|0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {
    ".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan,
    ".Inf": math.inf, "+.Inf": math.inf, "-.Inf": -math.inf, ".NaN": math.nan,
    ".INF": math.inf, "+.INF": math.inf, "-.INF": -math.inf, ".NAN": math.nan,
}  # fmt: skip
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}
_STR_TAG = "tag:yaml.org,2002:str"
_SAFE_TAGS = {
    _STR_TAG,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
_IMPLICIT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


def resolve_scalar(text: str) -> Any:
    """YAML 1.2 core-schema value of a plain (unquoted) scalar.

    >>> resolve_scalar("1e-4"), resolve_scalar("no"), resolve_scalar("0x10"), resolve_scalar("010")
    (0.0001, 'no', 16, 10)
    """
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _DECIMAL.match(text):
        return int(text.replace("_", ""), 10)  # YAML 1.2: 010 is ten, not octal
    if _RADIX.match(text):
        return int(text, 0)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if _FLOAT.match(text) and any(ch.isdigit() for ch in text):
        return float(text.replace("_", ""))
    return text


def _mark(node: yaml.Node | yaml.Event | yaml.MarkedYAMLError, file: str) -> Location:
    mark = node.problem_mark if isinstance(node, yaml.MarkedYAMLError) else node.start_mark
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


def _guard_events(text: str, file: str, limits: Limits) -> list[Problem]:
    """Check depth and expanded size on the event stream, before composing.

    Raises for an exceeded limit; returns a problem for every explicit tag (``!!str 3``
    included: a tag would change a value's type behind the reader's back).
    """
    tags: list[Problem] = []
    depth = 0
    sizes: list[int] = [0]  # node count of each open collection
    anchored: list[str | None] = []
    anchor_sizes: dict[str, int] = {}
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        tag = getattr(event, "tag", None)
        if tag is not None:
            tags.append(_tag_problem(tag, _mark(event, file)))
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth:
                raise _limit(event, file, f"nesting is deeper than {limits.max_depth} levels",
                             "flatten the document")  # fmt: skip
            sizes.append(1)
            anchored.append(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            size = sizes.pop()
            anchor = anchored.pop()
            if anchor is not None:
                anchor_sizes[anchor] = size
            sizes[-1] += size
        elif isinstance(event, yaml.AliasEvent):
            sizes[-1] += anchor_sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            sizes[-1] += 1
            if event.anchor is not None:
                anchor_sizes[event.anchor] = 1
        if sizes[-1] > limits.max_nodes or sum(sizes) > limits.max_nodes:
            raise _limit(event, file,
                         f"the document expands to more than {limits.max_nodes:,} values "
                         "(through aliases)",
                         "remove the recursive anchors/aliases")  # fmt: skip
    return tags


def _tag_problem(tag: str, at: Location) -> Problem:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return Problem(f"the tag '{shown}' is not allowed",
                   "specs are plain data: remove the tag (archspec never constructs objects "
                   "from YAML tags)", at)  # fmt: skip


def _limit(event: yaml.Event, file: str, message: str, hint: str) -> SpecError:
    return SpecError([Problem(message, hint, _mark(event, file))])


def _implicit(node: yaml.Node) -> bool:
    """Plain scalars PyYAML resolved to a YAML 1.1 type we re-resolve ourselves."""
    return isinstance(node, yaml.ScalarNode) and node.style is None and node.tag in _IMPLICIT


class _Builder:
    """Builds plain data from a composed node tree, recording the source map."""

    def __init__(self, file: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.source = SourceMap(file)
        self.limits = limits
        self.problems: list[Problem] = []
        self.active: set[int] = set()  # collections being built (to catch `&a [*a]`)

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        self.source.values[path] = _mark(node, self.source.file)
        if node.tag not in _SAFE_TAGS and not _implicit(node):
            self.problems.append(_tag_problem(node.tag, _mark(node, self.source.file)))
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        self._enter(node, path)
        if isinstance(node, yaml.SequenceNode):
            value: Any = [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        else:
            assert isinstance(node, yaml.MappingNode)
            value = self._mapping(node, path)
        self.active.discard(id(node))
        return value

    def _enter(self, node: yaml.Node, path: DataPath) -> None:
        """Refuse an alias inside its own anchor, and nesting that aliases make too deep.

        The event guard counts nesting as written; an alias of a deep anchor inside
        another deep anchor nests deeper still (and ``&a [*a]`` forever).
        """
        at = _mark(node, self.source.file)
        if id(node) in self.active:
            raise SpecError([Problem(
                "an alias is used inside its own anchor, which would make an endless value",
                "use the alias (*name) only after the anchored value (&name) ends",
                at)])  # fmt: skip
        if len(path) > self.limits.max_depth:
            raise SpecError([Problem(
                f"nesting is deeper than {self.limits.max_depth} levels once aliases are expanded",
                "flatten the document or use fewer nested aliases", at)])  # fmt: skip
        self.active.add(id(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.style is not None:  # quoted, literal or folded: always a string
            return node.value
        return resolve_scalar(node.value)

    def _mapping(self, node: yaml.MappingNode, path: DataPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.update(self._merge(value_node, path))
                continue
            key = self._key(key_node)
            if key is None:
                continue
            if key in out:
                first = self.source.keys[(*path, key)]
                self.problems.append(Problem(
                    f"duplicate key '{key}' (first defined at line {first.line})",
                    "remove one of them: YAML keeps only the last",
                    _mark(key_node, self.source.file), (*path, key)))  # fmt: skip
                continue
            self.source.keys[(*path, key)] = _mark(key_node, self.source.file)
            out[key] = self.build(value_node, (*path, key))
        return {**merged, **out}

    def _merge(self, node: yaml.Node, path: DataPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        own = self.source.values[path]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.build(source, path)
            if isinstance(value, dict):
                merged.update(value)
            else:
                self.problems.append(Problem(
                    "a merge key '<<' needs a mapping or a list of mappings",
                    "write '<<: *anchor' where the anchor names a mapping",
                    _mark(source, self.source.file)))  # fmt: skip
        self.source.values[path] = own
        return merged

    def _key(self, node: yaml.Node) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node)
            if isinstance(value, str | int | float | bool) and value is not None:
                return str(value) if not isinstance(value, bool) else str(value).lower()
        self.problems.append(Problem(
            "mapping keys must be plain scalars", "write the key as a plain word",
            _mark(node, self.source.file)))  # fmt: skip
        return None


def parse(text: str, file: str = "<spec>", limits: Limits = DEFAULT_LIMITS) -> Document:
    """Parse YAML ``text`` into plain data plus its source map.

    Raises :class:`SpecError` with located problems for YAML syntax errors,
    forbidden tags, duplicate keys and exceeded resource limits.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise SpecError([Problem(
            f"the file is {size:,} bytes, more than the limit of {limits.max_bytes:,}",
            "split the spec or raise the limit", Location(file, 1, 1))])  # fmt: skip
    try:
        tags = _guard_events(text, file, limits)
        if tags:
            raise SpecError(tags)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(f"invalid YAML: {exc}", "fix the YAML syntax",
                                 Location(file, 1, 1))]) from None  # fmt: skip
    if root is None:
        return Document(None, SourceMap(file, {(): Location(file, 1, 1)}))
    builder = _Builder(file, limits)
    data = builder.build(root, ())
    if builder.problems:
        raise SpecError(builder.problems)
    return Document(data, builder.source)


def _yaml_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    return Problem(f"invalid YAML: {what}", _yaml_hint(exc.problem or ""), _mark(exc, file))


def _yaml_hint(problem: str) -> str:
    if "'\\t'" in problem or "tab" in problem:  # PyYAML writes the tab as '\t'
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return ("to give a layer keys such as name: or from:, write its kind with a colon "
                "(`- relu:`); otherwise quote a value containing ': ' or fix the indentation")
    if "found undefined alias" in problem:
        return "define the anchor (&name) before using it (*name)"
    return "check the indentation and brackets around here"


def read(path: Path, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read and parse a spec file; I/O problems become located errors too."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise SpecError([Problem(
                f"the file is {size:,} bytes, more than the limit of {limits.max_bytes:,}",
                "split the spec or raise the limit", Location(file, 1, 1))])  # fmt: skip
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem("no such file", "check the path",
                                 Location(file, 1, 1))]) from None  # fmt: skip
    except IsADirectoryError:
        raise SpecError([Problem("is a directory, not a spec file", "name a .yaml file",
                                 Location(file, 1, 1))]) from None  # fmt: skip
    except OSError as exc:
        raise SpecError([Problem(f"cannot read the file: {exc.strerror}", "check permissions",
                                 Location(file, 1, 1))]) from None  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise SpecError([Problem(
            f"the file is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})",
            "save the spec as UTF-8", Location(file, line, col))]) from None  # fmt: skip
    return parse(text, file, limits)


def walk(data: Any, path: DataPath = ()) -> Iterator[tuple[DataPath, Any]]:
    """Every (path, value) in a plain-data tree, parents before children."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, (*path, i))
