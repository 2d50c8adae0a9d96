"""libyaml's C parser and PyYAML's pure-Python one give the loader the same document.

The loader builds data and its source map from YAML events, from libyaml when it is
installed (several times faster) and from PyYAML's own parser otherwise. Whichever
parser runs, a spec must load to the same data, the same locations and the same
located problems (duplicate and merge keys, tags, aliases, depth and size limits). Only
the wording of a YAML *syntax* error is the parser's own: for those, both must refuse.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from archspec.errors import SpecError
from archspec.loader import source
from archspec.loader.source import DEFAULT_LIMITS, Limits, parse

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml"))
C = getattr(yaml, "CSafeLoader", None)
pytestmark = pytest.mark.skipif(C is None, reason="libyaml is not installed: one parser only")


@contextmanager
def parser(loader: type) -> Iterator[None]:
    saved = source._Loader
    source._Loader = loader
    try:
        yield
    finally:
        source._Loader = saved


def outcome(text: str, loader: type, limits: Limits = DEFAULT_LIMITS) -> tuple[object, ...]:
    """What the loader makes of ``text``: data (types included), both source maps, or
    the rendered problems."""
    with parser(loader):
        try:
            doc = parse(text, "spec.yaml", limits)
        except SpecError as exc:
            lines = [p.render() for p in exc.problems]
            if any("invalid YAML" in line for line in lines):
                return ("syntax",)  # the parsers word these differently
            return ("problems", lines)
    return ("ok", repr(doc.data), doc.source.values, doc.source.keys)


HOSTILE = {
    "duplicate keys": "a: 1\nb: {c: 2, c: 3}\na: 4\n",
    "merge": "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n",
    "merge list": "a: &a {x: 1}\nb: &b {y: 2}\nc: {<<: [*a, *b], z: 3}\n",
    "two merges": "a: &a {x: 1}\nc:\n  <<: *a\n  <<: *a\n",
    "merge of a scalar": "a: &a 5\nc: {<<: *a}\n",
    "tags": "a: !!python/object:os.system x\nb: !!str 5\nc: !custom {d: 1}\n",
    "alias": "a: &x [1, 2, {b: 3}]\nc: *x\nd: [*x, *x]\n",
    "undefined alias": "a: *nope\n",
    "alias in own anchor": "a: &x [1, *x]\n",
    "alias as key": "a: &k b\n? *k\n: 1\n",
    "list as key": "? [1, 2]\n: 3\n",
    "null key": "~: 1\n",
    "bool and number keys": "true: 1\n1: 2\n1.5: 3\nFalse: 4\n",
    "scalars": "a: [1e-4, no, on, 0x10, 010, .inf, -.Inf, .nan, ~, null, true, 1_000, '5']\n",
    "too big an integer": "a: 99999999999999999999\nb: 99999999999999999999\n",
    "huge literal": "a: " + "9" * 5000 + "\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "empty": "",
    "comment only": "# nothing\n",
    "block scalars": "a: |\n  line 1\n  line 2\nb: >-\n  folded\n  text\n",
    "quoted keys": "'x': 1\n\"y\": {'z': [a, 'b', \"c\"]}\n",
    "deep": "a: " + "[" * 70 + "]" * 70 + "\n",
    "layers": "input: [1, 28, 28]\nlayers:\n  - conv: {depth: 8, kernel: 3}\n  - relu\n",
    "tab": "a:\n\tb: 1\n",
    "control character": "a: \x07\n",
}


def laughs(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_both_parsers_agree_on_hostile_text(name: str) -> None:
    text = HOSTILE[name]
    assert outcome(text, C) == outcome(text, yaml.SafeLoader)


@pytest.mark.parametrize(
    ("text", "limits"),
    [
        (laughs(6), Limits(max_nodes=1000)),
        (laughs(3), Limits(max_nodes=1000)),
        ("a: " + "[" * 10 + "]" * 10 + "\n", Limits(max_depth=5)),
        ("a: &d [[[[1]]]]\nb: [[[*d]]]\n", Limits(max_depth=6)),
    ],
)
def test_both_parsers_agree_on_the_limits(text: str, limits: Limits) -> None:
    result = outcome(text, C, limits)
    assert result[0] == "problems"
    assert result == outcome(text, yaml.SafeLoader, limits)


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_both_parsers_agree_on_every_bundled_spec(spec: Path) -> None:
    text = spec.read_text()
    result = outcome(text, C)
    assert result[0] == "ok"
    assert result == outcome(text, yaml.SafeLoader)


def test_both_parsers_agree_on_mutated_specs() -> None:
    """Specs with characters deleted, duplicated or replaced: valid YAML loads alike,
    invalid YAML is refused by both."""
    rng = random.Random(18)
    texts = [p.read_text() for p in SPECS]
    agreed = kinds = 0
    for _ in range(300):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text))
            edit = rng.choice(["delete", "double", "replace"])
            if edit == "delete":
                text = text[:i] + text[i + 1 :]
            elif edit == "double":
                text = text[:i] + text[i] + text[i:]
            else:
                text = text[:i] + rng.choice(" -:[]{},&*!#'\"\n0aZ<") + text[i + 1 :]
        c, python = outcome(text, C), outcome(text, yaml.SafeLoader)
        assert c == python, text
        agreed += 1
        kinds += c[0] == "ok"
    assert agreed == 300 and 0 < kinds < 300  # both valid and invalid texts were tried


def test_a_too_large_integer_is_reported_every_time() -> None:
    """The loader remembers what plain scalars it has resolved; a refused one is not
    remembered, so each occurrence, in each parse, is reported."""
    text = "a: 99999999999999999999\nb: [99999999999999999999]\n"
    for _ in range(2):
        with pytest.raises(SpecError) as info:
            parse(text, "spec.yaml")
        assert [p.location.line for p in info.value.problems if p.location] == [1, 2]
