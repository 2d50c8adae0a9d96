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

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from archspec.errors import DataPath, Location, Problem, SpecError
from archspec.loader import bundled


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
    nodes: int = 0  # values in it (keys included), as the size guard counts them
    plain: bool = False  # parsed from text with no anchor, alias or merge key (see reparse)


_DECIMAL = re.compile(r"[-+]?[0-9][0-9_]*$")
_RADIX = re.compile(r"0o[0-7]+$|0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {
    ".inf": math.inf,
    "+.inf": math.inf,
    "-.inf": -math.inf,
    ".nan": math.nan,
    ".Inf": math.inf,
    "+.Inf": math.inf,
    "-.Inf": -math.inf,
    ".NaN": math.nan,
    ".INF": math.inf,
    "+.INF": math.inf,
    "-.INF": -math.inf,
    ".NAN": math.nan,
}
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


MAX_INT = 2**63 - 1  # torch's sizes are int64; no spec value needs more


class ScalarError(ValueError):
    """A plain scalar that is a number archspec refuses (an integer beyond ``MAX_INT``)."""


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
        return _integer(text.replace("_", ""), 10)  # YAML 1.2: 010 is ten, not octal
    if _RADIX.match(text):
        return _integer(text, 0)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if _FLOAT.match(text) and any(ch.isdigit() for ch in text):
        return float(text.replace("_", ""))
    return text


def _integer(text: str, base: int) -> int:
    """``int(text, base)``, refusing integers beyond ±MAX_INT before converting.

    Found by tests/test_fuzz.py: a 5,000-digit literal made ``int()`` raise ValueError
    (Python's 4,300-digit limit on int/str conversion) — an internal error, not a located one.
    """
    digits = text.lstrip("+-").lstrip("0") if base == 10 else text[2:].lstrip("0")
    if len(digits) > 32:  # beyond any int64 in base 8, 10 or 16; skip the costly conversion
        raise ScalarError(f"the integer {text[:20]}… ({len(text):,} characters) is too large")
    value = int(text, base)
    if abs(value) > MAX_INT:
        raise ScalarError(f"the integer {value:,} is too large")
    return value


def _tag_problem(tag: str, at: Location) -> Problem:
    shown = tag.replace("tag:yaml.org,2002:", "!!")
    return Problem(
        f"the tag '{shown}' is not allowed",
        "specs are plain data: remove the tag (archspec never constructs objects from YAML tags)",
        at,
    )


def _mark(error: yaml.MarkedYAMLError, file: str) -> Location:
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


# ---------------------------------------------------------------------------
# Building data straight from the event stream (one pass; libyaml when present)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: ~20× faster
_MERGE = object()  # the pending key of a `<<` merge
_UNSEEN = object()
# plain scalar text → its value (resolve_scalar is pure and its values immutable); short
# texts only, at most 10,000 of them: specs repeat the same few words and numbers
_PLAIN: dict[str, Any] = {}
_SKIP = object()  # the pending key of a duplicate (its value is parsed, then dropped)


@dataclass(slots=True)
class _Frame:
    """An open sequence or mapping while its events stream past."""

    value: list[Any] | dict[str, Any]
    path: DataPath
    anchor: str | None
    at: Location
    key: Any = None  # mappings: the key waiting for its value (None: expecting a key)
    merged: dict[str, Any] | None = None  # what its `<<` merges in (None: no merge)
    flow: bool = False  # written in flow style ([...] or {...})
    merge_at: Location | None = None  # where its `<<` key is (a second one is an error)
    size: int = 1  # values inside, aliases expanded
    depth: int = 0  # deepest nesting inside, aliases expanded

    def child_path(self) -> DataPath:
        if isinstance(self.value, list):
            return (*self.path, len(self.value))
        return (*self.path, self.key if isinstance(self.key, str) else "\0")


@dataclass
class _Anchor:
    value: Any
    marks: dict[DataPath, Location]  # relative to the anchored value
    keys: dict[DataPath, Location]
    size: int
    depth: int


class _EventBuilder:
    """Plain data and its source map from YAML events, with every guard on the way."""

    def __init__(self, text: str, file: str, limits: Limits) -> None:
        self.text = text
        self.file = file
        self.limits = limits
        self.source = SourceMap(file)
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.root: Any = None
        self.total = 0
        self.documents = 0
        self.merges = 0  # merge keys (`<<`) seen
        self.pure = False  # events from PyYAML's parser (set by run)

    def at(self, event: yaml.Event) -> Location:
        mark = event.start_mark
        return (
            Location(self.file, mark.line + 1, mark.column + 1)
            if mark
            else Location(self.file, 1, 1)
        )

    def run(self, loader: type[Any] | None = None) -> Any:
        """Build the document from ``loader``'s events (default: libyaml's, else PyYAML's)."""
        scalar, open_, close = self.scalar, self.open, self.close
        # the parser itself, not yaml.parse's generator around it (one call less per event)
        parser = (loader or _Loader)(self.text)
        self.pure = isinstance(parser, yaml.parser.Parser)  # PyYAML's own parser, not libyaml
        try:
            while parser.check_event():
                event = parser.get_event()
                kind = type(event)
                if kind is yaml.ScalarEvent:
                    scalar(event)
                elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                    open_(event)
                elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                    close()
                else:
                    self.event(event)
        finally:
            parser.dispose()
        return self.root

    def event(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self.scalar(event)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self.open(event)
        elif isinstance(event, yaml.CollectionEndEvent):
            self.close()
        elif isinstance(event, yaml.AliasEvent):
            self.alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                self.fail(
                    Problem(
                        "a spec is one YAML document, but a second one starts here",
                        "remove the `---` and what follows, or split the file",
                        self.at(event),
                    )
                )

    # -------------------------------------------------------------- values
    def scalar(self, event: yaml.ScalarEvent) -> None:
        # the hot path of the loader (most events are scalars): the steps of check_tag,
        # guard_size, at and child_path written out, in the same order
        mark = event.start_mark
        at = Location(self.file, mark.line + 1, mark.column + 1) if mark else self.at(event)
        if not event.value and self.pure:
            at = self.empty_at(event, at)
        if event.tag is not None:
            self.problems.append(_tag_problem(event.tag, at))
        self.total += 1
        if self.total > self.limits.max_nodes:
            self.guard_size(0, event)
        stack = self.stack
        if stack:
            frame = stack[-1]
            container = frame.value
            if type(container) is dict:
                key = frame.key
                if key is None:
                    self.mapping_key(frame, event, at)
                    return
                path: DataPath = (*frame.path, key if type(key) is str else "\0")
            else:
                path = (*frame.path, len(container))
        else:
            path = ()
        value = event.value if event.style else self.plain(event)  # libyaml: '' when plain
        self.source.values[path] = at
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value, {(): at}, {}, 1, 0)
        self.add(value, 1, 0)

    def empty_at(self, event: yaml.ScalarEvent, at: Location) -> Location:
        """Where libyaml places an empty value inside a flow collection (``{a: , b: 1}``):
        at the token after it; PyYAML places it right after the ``:``. The pure-Python
        path moves it on over spaces, line breaks and comments, so both paths give one
        source map (tests/test_loader_paths.py)."""
        flow = bool(self.stack) and self.stack[-1].flow
        mark = event.start_mark
        if event.style or event.tag is not None or event.anchor is not None or not flow:
            return at
        if mark is None:
            return at
        text, i = self.text, mark.index
        line, col = at.line, at.col
        while i < len(text):
            ch = text[i]
            if ch in " \t":
                i, col = i + 1, col + 1
            elif ch == "#":
                while i < len(text) and text[i] not in "\n\r\x85\u2028\u2029":
                    i += 1
            elif ch in "\n\x85\u2028\u2029" or ch == "\r":
                i += 2 if text[i : i + 2] == "\r\n" else 1
                line, col = line + 1, 1
            else:
                break
        return Location(self.file, line, col)

    def plain(self, event: yaml.ScalarEvent) -> Any:
        """The value of a plain scalar, through the memo of texts already resolved."""
        value = _PLAIN.get(event.value, _UNSEEN)
        if value is _UNSEEN:
            try:
                value = resolve_scalar(event.value)
            except ScalarError:
                return self.resolve(event)  # reports it (never memoized)
            if len(event.value) <= 64 and len(_PLAIN) < 10_000:
                _PLAIN[event.value] = value
        return value

    def resolve(self, event: yaml.ScalarEvent) -> Any:
        try:
            return resolve_scalar(event.value)
        except ScalarError as exc:
            self.problems.append(
                Problem(
                    f"{exc}: integers must be between -{MAX_INT:,} and {MAX_INT:,}",
                    "use a smaller number",
                    self.at(event),
                )
            )
            return None

    def mapping_key(self, frame: _Frame, event: yaml.ScalarEvent, at: Location) -> None:
        if event.style:
            key_text = event.value
        elif event.value == "<<":
            frame.key = self.merge_key(frame, event)
            return
        else:
            value = self.plain(event)
            if type(value) is str:
                key_text = value
            elif value is None:
                self.problems.append(
                    Problem(
                        "mapping keys must be plain words",
                        "write the key as a plain word",
                        at,
                    )
                )
                frame.key = _SKIP
                return
            else:
                key_text = str(value).lower() if isinstance(value, bool) else str(value)
        path = (*frame.path, key_text)
        if key_text in frame.value:
            first = self.source.keys[path]
            self.problems.append(
                Problem(
                    f"duplicate key '{key_text}' (first defined at line {first.line})",
                    "remove one of them: YAML keeps only the last",
                    at,
                    path,
                )
            )
            frame.key = _SKIP
            return
        self.source.keys[path] = at
        frame.key = key_text

    def open(self, event: yaml.CollectionStartEvent) -> None:
        # hot: check_tag, guard_size, at and child_path written out, in the same order
        mark = event.start_mark
        at = Location(self.file, mark.line + 1, mark.column + 1) if mark else self.at(event)
        if event.tag is not None:
            self.problems.append(_tag_problem(event.tag, at))
        self.total += 1
        if self.total > self.limits.max_nodes:
            self.guard_size(0, event)
        stack = self.stack
        parent = stack[-1] if stack else None
        if parent is not None and type(parent.value) is dict and parent.key is None:
            self.fail(
                Problem(
                    "mapping keys must be plain words, not lists or mappings",
                    "write the key as a plain word",
                    at,
                )
            )
        if len(stack) >= self.limits.max_depth:
            self.fail(
                Problem(
                    f"nesting is deeper than {self.limits.max_depth} levels",
                    "flatten the document",
                    at,
                )
            )
        path = parent.child_path() if parent else ()
        self.source.values[path] = at
        value: list[Any] | dict[str, Any] = [] if type(event) is yaml.SequenceStartEvent else {}
        stack.append(_Frame(value, path, event.anchor, at, flow=bool(event.flow_style)))

    def close(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merged and isinstance(value, dict):
            value = {**frame.merged, **value}
        if frame.anchor is not None:
            self.anchors[frame.anchor] = self.capture(frame, value)
        self.add(value, frame.size, frame.depth + 1)

    def alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor or ""
        if any(frame.anchor == name for frame in self.stack):
            self.fail(
                Problem(
                    "an alias is used inside its own anchor, which would make an endless value",
                    "use the alias (*name) only after the anchored value (&name) ends",
                    self.at(event),
                )
            )
        if name not in self.anchors:
            self.fail(
                Problem(
                    f"the alias *{name} has no anchor &{name} before it",
                    "define the anchor (&name) before using it (*name)",
                    self.at(event),
                )
            )
        anchor = self.anchors[name]
        frame = self.stack[-1] if self.stack else None
        if frame is not None and isinstance(frame.value, dict) and frame.key is None:
            self.fail(
                Problem(
                    "an alias cannot be a mapping key", "write the key as a word", self.at(event)
                )
            )
        if len(self.stack) + anchor.depth > self.limits.max_depth:
            self.fail(
                Problem(
                    f"nesting is deeper than {self.limits.max_depth} levels once "
                    "aliases are expanded",
                    "flatten the document or use fewer nested aliases",
                    self.at(event),
                )
            )
        path = frame.child_path() if frame else ()
        self.guard_size(anchor.size, event)
        for rel, loc in anchor.marks.items():
            self.source.values[(*path, *rel)] = loc
        for rel, loc in anchor.keys.items():
            self.source.keys[(*path, *rel)] = loc
        self.source.values[path] = self.at(event)
        self.add(copy.deepcopy(anchor.value), anchor.size, anchor.depth)

    def capture(self, frame: _Frame, value: Any) -> _Anchor:
        n = len(frame.path)
        marks = {k[n:]: v for k, v in self.source.values.items() if k[:n] == frame.path}
        keys = {k[n:]: v for k, v in self.source.keys.items() if k[:n] == frame.path and len(k) > n}
        return _Anchor(value, marks, keys, frame.size, frame.depth + 1)

    def add(self, value: Any, size: int, depth: int) -> None:
        """Put a finished value into the open collection (or make it the document)."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        frame.size += size
        if depth > frame.depth:
            frame.depth = depth
        container = frame.value
        if type(container) is list:
            container.append(value)
            return
        key = frame.key
        if key is _MERGE:
            self.merge(frame, value, self.source.values.get(frame.child_path(), frame.at))
        elif key is not _SKIP:
            container[key] = value
        frame.key = None

    def merge_key(self, frame: _Frame, event: yaml.ScalarEvent) -> object:
        """Issue #13: a second `<<` in one mapping silently replaced the first."""
        self.merges += 1
        if frame.merge_at is None:
            frame.merge_at = self.at(event)
            return _MERGE
        self.problems.append(
            Problem(
                f"a second merge key '<<' in one mapping (first at line {frame.merge_at.line})",
                "merge several mappings with one key: `<<: [*first, *second]`",
                self.at(event),
                (*frame.path, "<<"),
            )
        )
        return _SKIP

    def merge(self, frame: _Frame, value: Any, at: Location) -> None:
        sources = value if isinstance(value, list) else [value]
        for source in reversed(sources):
            if isinstance(source, dict):
                if frame.merged is None:
                    frame.merged = {}
                frame.merged.update(source)
            else:
                self.problems.append(
                    Problem(
                        "a merge key '<<' needs a mapping or a list of mappings",
                        "write '<<: *anchor' where the anchor names a mapping",
                        at,
                    )
                )
                return

    def guard_size(self, extra: int, event: yaml.Event) -> None:
        """Count values as they come (aliases expanded); refuse past ``max_nodes``."""
        self.total += extra
        if self.total > self.limits.max_nodes:
            at = self.at(event)
            self.fail(
                Problem(
                    f"the document expands to more than "
                    f"{self.limits.max_nodes:,} values (through aliases)",
                    "remove the recursive anchors/aliases",
                    at,
                )
            )

    def fail(self, problem: Problem) -> NoReturn:
        """Stop at ``problem``, reporting it with the problems found before it."""
        raise SpecError([*self.problems, problem])

    def check_tag(self, event: yaml.NodeEvent) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None:
            self.problems.append(_tag_problem(tag, self.at(event)))


def parse(text: str, file: str = "<spec>", limits: Limits = DEFAULT_LIMITS) -> Document:
    """Parse YAML ``text`` into plain data plus its source map.

    Raises :class:`SpecError` with located problems for YAML syntax errors,
    forbidden tags, duplicate keys and exceeded resource limits.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise SpecError(
            [
                Problem(
                    f"the file is {size:,} bytes, more than the limit of {limits.max_bytes:,}",
                    "split the spec or raise the limit",
                    Location(file, 1, 1),
                )
            ]
        )
    try:
        text.encode("utf-8")  # libyaml reads UTF-8: a lone surrogate cannot even be passed in
    except UnicodeEncodeError as exc:
        raise SpecError(
            [
                Problem(
                    f"invalid YAML: the character U+{ord(text[exc.start]):04X} "
                    "is not allowed in YAML text",
                    "remove it: YAML allows printable characters, tabs and line breaks only",
                    _position(text, exc.start, file),
                )
            ]
        ) from None
    builder = _EventBuilder(text, file, limits)
    try:
        try:
            data = builder.run()
        except yaml.MarkedYAMLError as exc:
            # libyaml ≥ 0.2.5 stops at 1,000 levels while scanning ahead, before the builder
            # sees level `max_depth`: the pure-Python parser has no such cap, so the builder
            # reports our own located limit (or accepts, if the limit was raised past 1,000).
            if "maximum nesting depth" not in str(exc.problem) or _Loader is yaml.SafeLoader:
                raise
            builder = _EventBuilder(text, file, limits)
            data = builder.run(yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, text, file)]) from None
    except yaml.reader.ReaderError as exc:  # found by tests/test_fuzz.py: "\x00" was unlocated
        raise SpecError([_reader_problem(exc, text, file)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(
            [Problem(f"invalid YAML: {exc}", "fix the YAML syntax", Location(file, 1, 1))]
        ) from None
    if builder.problems:
        raise SpecError(builder.problems)
    if builder.documents == 0 or (data is None and not builder.source.values):
        return Document(None, SourceMap(file, {(): Location(file, 1, 1)}))
    plain = not builder.anchors and not builder.merges and builder.documents == 1
    return Document(data, builder.source, builder.total, plain)


_ITEM = re.compile(r"( *)- +([^\s#].*)")  # a block sequence item on one line: `  - conv: {…}`


def reparse(
    prev: Document, prev_text: str, text: str, limits: Limits = DEFAULT_LIMITS
) -> Document | None:
    """``parse(text)`` from ``prev`` (the Document of ``prev_text``) when the texts differ in
    one line that holds one whole list item, e.g. a layer written on one line, and the
    document has no anchors, aliases or merge keys; ``None`` otherwise (parse it whole).

    An editor re-checks a buffer on every keystroke, and most keystrokes change one layer:
    parsing that line alone spares the whole document's YAML events (~10 ms of 500
    layers). The result is exactly what ``parse`` gives (held to it by
    tests/test_reparse.py): every path and location of the item is replaced, the rest is
    shared, and any doubt (a line the item shares, a problem in the new line, a limit
    near) falls back to parsing the whole text, which reports it as always."""
    if not prev.plain or "\r" in text or "\r" in prev_text:
        return None
    old_lines, new_lines = prev_text.split("\n"), text.split("\n")
    if len(old_lines) != len(new_lines):
        return None
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    if len(changed) != 1:
        return None
    k = changed[0]
    old, new = _ITEM.fullmatch(old_lines[k]), _ITEM.fullmatch(new_lines[k])
    if old is None or new is None or len(old[1]) != len(new[1]):
        return None
    if not _ends_item(new_lines, k, len(new[1])):
        return None  # the next line is indented deeper: it could continue the item
    try:
        if len(text.encode("utf-8")) > limits.max_bytes:
            return None
    except UnicodeEncodeError:
        return None  # parse locates it
    item = _item_at(prev, k + 1, old.start(2) + 1)
    if item is None:
        return None
    path, values, keys = item
    sub = _line_document(new_lines[k][len(new[1]) :], prev.source.file, limits, len(path))
    if sub is None:
        return None
    data, sub_values, sub_keys, sub_nodes = sub
    nodes = prev.nodes - len(values) - len(keys) + sub_nodes
    if nodes > limits.max_nodes:
        return None
    shift = len(new[1])
    source = SourceMap(prev.source.file, dict(prev.source.values), dict(prev.source.keys))
    for p in values:
        del source.values[p]
    for p in keys:
        del source.keys[p]
    line = k + 1
    for rel, loc in sub_values.items():
        source.values[(*path, *rel)] = Location(loc.file, line, loc.col + shift)
    for rel, loc in sub_keys.items():
        source.keys[(*path, *rel)] = Location(loc.file, line, loc.col + shift)
    return Document(_replaced(prev.data, path, data), source, nodes, True)


def _ends_item(lines: list[str], k: int, indent: int) -> bool:
    """Whether the next line with content after line ``k`` is indented no deeper than the
    item's dash (so it cannot continue the item's value)."""
    for line in lines[k + 1 :]:
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        return not body.startswith("\t") and len(line) - len(body) <= indent
    return True


def _item_at(
    prev: Document, line: int, col: int
) -> tuple[DataPath, list[DataPath], list[DataPath]] | None:
    """The list item whose value starts at ``line``:``col``, with every value and key path
    under it, when all of them (and nothing else) are on that line."""
    on_line = [p for p, loc in prev.source.values.items() if loc.line == line]
    starts = [p for p in on_line if prev.source.values[p].col == col and p and type(p[-1]) is int]
    if not starts:
        return None
    path = min(starts, key=len)
    n = len(path)
    values = [p for p in prev.source.values if p[:n] == path]
    keys = [p for p in prev.source.keys if p[:n] == path]
    keys_on_line = [p for p, loc in prev.source.keys.items() if loc.line == line]
    # besides the item, the line may only hold where its list starts (the first item's
    # dash: unchanged, as the edit keeps the indentation)
    inside = [p for p in on_line if p[:n] == path]
    if any(path[: len(p)] != p for p in on_line if p[:n] != path):
        return None  # the line holds more than the item
    if sorted(values, key=repr) != sorted(inside, key=repr):
        return None  # the item spans more lines
    if sorted(keys, key=repr) != sorted(keys_on_line, key=repr):
        return None
    return path, values, keys


def _line_document(
    line: str, file: str, limits: Limits, depth: int
) -> tuple[Any, dict[DataPath, Location], dict[DataPath, Location], int] | None:
    """One list item (``- …``) parsed alone: its value, its paths and locations relative
    to it (line 1), and its node count; ``None`` on any problem or limit."""
    if depth >= limits.max_depth:
        return None
    inner = Limits(limits.max_bytes, limits.max_depth - depth + 1, limits.max_nodes)
    builder = _EventBuilder(line, file, inner)
    try:
        root = builder.run()
    except (SpecError, yaml.YAMLError):
        return None
    if builder.problems or builder.anchors or builder.merges or builder.documents != 1:
        return None
    if type(root) is not list or len(root) != 1:
        return None
    values = {p[1:]: loc for p, loc in builder.source.values.items() if p[:1] == (0,)}
    keys = {p[1:]: loc for p, loc in builder.source.keys.items() if p[:1] == (0,)}
    if any(loc.line != 1 for loc in (*values.values(), *keys.values())):
        return None
    return root[0], values, keys, builder.total - 1


def _replaced(data: Any, path: DataPath, value: Any) -> Any:
    """``data`` with the value at ``path`` replaced: the containers on the way copied, the
    rest shared (the previous Document stays as it was)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if type(data) is list:
        assert isinstance(head, int)
        items = list(data)
        items[head] = _replaced(data[head], rest, value)
        return items
    return {**data, head: _replaced(data[head], rest, value)}


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    at = _mark(exc, file)
    mark = exc.problem_mark
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        what += " (a tab)"  # libyaml does not name the character; the hint below needs it
    return Problem(f"invalid YAML: {what}", _yaml_hint(what), at)


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A character YAML does not allow (NUL, most control characters, a lone surrogate)."""
    char = exc.character if isinstance(exc.character, int) else 0
    return Problem(
        f"invalid YAML: the character U+{char:04X} is not allowed in YAML text",
        "remove it: YAML allows printable characters, tabs and line breaks only",
        _position(text, exc.position, file),
    )


def _position(text: str, index: int, file: str) -> Location:
    """1-based line and column of ``text[index]``, counting line breaks as PyYAML does."""
    line, start = 1, 0
    for i, ch in enumerate(text[:index]):
        if ch in "\n\x85\u2028\u2029" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
            line, start = line + 1, i + 1
    return Location(file, line, index - start + 1)


def _yaml_hint(problem: str) -> str:
    if "'\\t'" in problem or "tab" in problem:  # PyYAML writes the tab as '\t'
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return (
            "to give a layer keys such as name: or from:, write its kind with a colon "
            "(`- relu:`); otherwise quote a value containing ': ' or fix the indentation"
        )
    if "found undefined alias" in problem:
        return "define the anchor (&name) before using it (*name)"
    return "check the indentation and brackets around here"


def _too_big(file: str, what: str) -> SpecError:
    return SpecError(
        [Problem(f"the file {what}", "split the spec or raise the limit", Location(file, 1, 1))]
    )


def read(path: Path, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Read and parse a spec file; I/O problems become located errors too."""
    file = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _too_big(file, f"is {size:,} bytes, more than the limit of {limits.max_bytes:,}")
        # At most one byte past the limit: /dev/zero, a pipe or a /proc file reports size 0
        # (found by tests/test_safety.py: `archspec check /dev/zero` read until memory ran out)
        with path.open("rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
        if len(raw) > limits.max_bytes:
            raise _too_big(file, f"has more than {limits.max_bytes:,} bytes, the limit")
    except FileNotFoundError:
        # a bare name (`mnist_cnnn`) may have meant a bundled example spec: list them
        hint = bundled.missing_hint() if path.name == file else "check the path"
        raise SpecError([Problem("no such file", hint, Location(file, 1, 1))]) from None
    except IsADirectoryError:
        raise SpecError(
            [Problem("is a directory, not a spec file", "name a .yaml file", Location(file, 1, 1))]
        ) from None
    except OSError as exc:
        raise SpecError(
            [
                Problem(
                    f"cannot read the file: {exc.strerror}",
                    "check permissions",
                    Location(file, 1, 1),
                )
            ]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise SpecError(
            [
                Problem(
                    f"the file is not UTF-8 text "
                    f"(byte {raw[exc.start]:#04x} at offset {exc.start})",
                    "save the spec as UTF-8",
                    Location(file, line, col),
                )
            ]
        ) from None
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
