"""A check that reuses earlier work gives exactly what a check from nothing gives.

Three memos make checking fast in an editor and on specs that repeat layers: resolved
plain scalars (loader), validated parameters by exact content (language.load) and
shape-rule verdicts by parameters and inputs (shapes.infer). An editor session (the
LSP analysis) runs them warm, edit after edit. Here random edits are applied to
bundled specs, one after another, and each text is checked twice — with the memos as
the session left them, and with memos that remember nothing — and every problem (with
its location and hint), every inferred node (types included: ``repr``) and the
validated layers must be the same.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from archspec.language import load
from archspec.loader import source
from archspec.outputs.lsp.analysis import Analysis, analyze
from archspec.shapes import infer

ROOT = Path(__file__).parent.parent
SPECS = ["mnist_cnn", "resnet18", "kinds_tour", "transformer_classifier", "unet_tiny", "tcn"]


class _Forget(dict[Any, Any]):
    """A memo that never remembers: every lookup misses, as on a first check."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


@contextmanager
def no_memo() -> Iterator[None]:
    saved = source._PLAIN, load._PARAMS_MEMO, infer._RULE_MEMO
    source._PLAIN, load._PARAMS_MEMO, infer._RULE_MEMO = _Forget(), _Forget(), _Forget()
    try:
        yield
    finally:
        source._PLAIN, load._PARAMS_MEMO, infer._RULE_MEMO = saved


def summary(a: Analysis) -> tuple[Any, ...]:
    layers = [repr(layer) for layer in a.validated.layers] if a.validated else None
    return (
        [(f.problem.render(), f.problem.path, f.problem.notes, f.warning) for f in a.findings],
        [repr(node) for node in a.nodes],
        a.complete,
        layers,
    )


_NUMBER = re.compile(r"\b\d+\b")
_WORDS = ["same", "valid", "max", "avg", "relu", "conv", "dense", "pool", "2", "0", "-1"]


def edit(text: str, rng: random.Random) -> str:
    """One edit a person might make: a number changed, a word swapped, a line deleted,
    duplicated or moved."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    what = rng.choice(["number", "number", "number", "word", "delete", "double", "move"])
    if what == "number" and _NUMBER.search(lines[i]):
        found = list(_NUMBER.finditer(lines[i]))
        m = rng.choice(found)
        new = str(rng.choice([1, 2, 3, 5, 7, 16, 64, 99, int(m.group()) + 1]))
        lines[i] = lines[i][: m.start()] + new + lines[i][m.end() :]
    elif what == "word":
        words = [w for w in _WORDS if w in lines[i]]
        if words:
            lines[i] = lines[i].replace(rng.choice(words), rng.choice(_WORDS), 1)
    elif what == "delete" and len(lines) > 3:
        del lines[i]
    elif what == "double":
        lines.insert(i, lines[i])
    elif what == "move" and len(lines) > 3:
        lines.insert(rng.randrange(len(lines)), lines.pop(i))
    return "\n".join(lines)


@pytest.mark.parametrize("name", SPECS)
def test_warm_checks_equal_checks_from_nothing_over_random_edits(name: str) -> None:
    path = ROOT / "specs" / f"{name}.yaml"
    original = path.read_text()
    rng = random.Random(f"memo-{name}")
    text, outcomes = original, set()
    for step in range(40):
        text = edit(text if step % 10 else original, rng)
        warm = analyze(text, path, str(path))
        with no_memo():
            cold = analyze(text, path, str(path))
        assert summary(warm) == summary(cold), text
        outcomes.add((warm.complete, bool(warm.findings)))
    assert len(outcomes) > 1  # the edits made both valid and broken specs


def test_a_memo_hit_does_not_hide_the_problems_of_a_repeated_layer() -> None:
    """The same too-big kernel written on two layers: each is reported at its own line,
    on the first check and on a warm second one."""
    text = (
        "input: [3, 8, 8]\nlayers:\n"
        "  - conv: {depth: 4, kernel: 99}\n"
        "  - conv: {depth: 4, kernel: 3, padding: same}\n"
        "  - conv: {depth: 4, kernel: 99}\n"
    )
    for _ in range(2):
        a = analyze(text, None, "spec.yaml")
        assert [f.problem.location.line for f in a.findings if f.problem.location] == [3]
    branched = (
        "input: [3, 8, 8]\nlayers:\n"
        "  - conv: {depth: 4, kernel: 99}\n    name: a\n"
        "  - conv: {depth: 4, kernel: 99}\n    from: input\n"
        "  - add:\n    from: [a, conv1]\n"
    )
    a = analyze(branched, None, "spec.yaml")
    lines = sorted(f.problem.location.line for f in a.findings if f.problem.location)
    assert lines == [3, 5], [f.problem.render() for f in a.findings]
