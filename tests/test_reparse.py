"""``loader.reparse``: a one-line edit parsed alone gives exactly what ``parse`` gives.

The editor (``archspec lsp``) parses a buffer from its previous Document when one list
item changed. Whatever the edit, the result must be ``parse(text)``'s own — data, every
value's and key's location, the node count — or ``None`` (then the whole text is
parsed), and a text ``parse`` refuses must never come back as a Document.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archspec.errors import SpecError
from archspec.loader.source import DEFAULT_LIMITS, Document, Limits, parse, reparse

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

# what an edit may put on a line: layers, half-typed layers, YAML that means something else
LINES = [
    "  - relu",
    "  - conv: {depth: 16, kernel: 3, padding: same}",
    "  - conv: {depth: 16, kernel: 99, padding: valid}",
    "  - conv: {depth: 16, kernel: 3, padding: same",
    "  - conv: {depth: 16, depth: 3}",
    "  - conv:",
    "  - conv: &a {depth: 4}",
    "  - conv: *a",
    "  - {<<: {depth: 4}, conv: 1}",
    "  - !!python/object:os.system relu",
    "  - conv: !!str 3",
    "  - dense: 1e3",
    "  - dense: .nan",
    "  - dense: 99999999999999999999999",
    '  - "relu',
    "  - 'relu'",
    "  - relu # a comment",
    "  - - relu",
    "  - [relu, tanh]",
    "  - relu: {a: {b: {c: {d: 1}}}}",
    "  -   relu",
    "    - relu",
    "- relu",
    "  - relu\t",
    "  -\trelu",
    "  - relu: \x00",
    "  - relu: \ud800",
    "  - conv: {depth: 16}  # trailing",
    "  # - relu",
    "",
    "  ",
    "layers:",
    "  - dense: 10",
    "  - name: x",
    "    from: y",
    "  - dropout: 0.5",
    "  - pool: 2",
    "  - conv: {depth: width * 2, kernel: 3}",
]


def _canonical(value: Any) -> Any:
    """Data with NaN made comparable (NaN != NaN), types kept apart (1, 1.0, True)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


def _same(a: Document, b: Document) -> None:
    assert _canonical(a.data) == _canonical(b.data)
    assert a.source == b.source
    assert (a.nodes, a.plain) == (b.nodes, b.plain)


def _check_edit(old: str, new: str, limits: Limits = DEFAULT_LIMITS) -> Document | None:
    try:
        prev = parse(old, "spec.yaml", limits)
    except SpecError:
        return None
    snapshot = (_canonical(prev.data), dict(prev.source.values), dict(prev.source.keys))
    result = reparse(prev, old, new, limits)
    assert (_canonical(prev.data), prev.source.values, prev.source.keys) == snapshot
    try:
        full = parse(new, "spec.yaml", limits)
    except SpecError:
        assert result is None, "reparse accepted a text that parse refuses"
        return None
    if result is not None:
        _same(result, full)
    return result


def _texts() -> list[str]:
    texts = [p.read_text() for p in SPECS]
    chain = ["name: big", "input: [3, 64, 64]", "layers:"]
    for i in range(40):
        chain.append(f"  - conv: {{depth: 16, kernel: {3 + 2 * (i % 2)}, padding: same}}")
        chain.append("  - relu")
    texts.append("\n".join(chain) + "\n")
    return texts


TEXTS = _texts()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_one_line_edit_reparses_exactly_or_not_at_all(data: st.DataObject) -> None:
    old = data.draw(st.sampled_from(TEXTS), label="spec")
    lines = old.split("\n")
    k = data.draw(st.integers(0, len(lines) - 1), label="line")
    choice = data.draw(
        st.one_of(
            st.sampled_from(LINES),
            st.sampled_from(lines),  # another line of the same spec
            st.text(alphabet=" -:{}[],#&*!|>'\"abc0123\t.", max_size=30),
            st.builds(  # one character of the line changed, removed or added
                lambda i, c, how: (
                    lines[k][:i] + c + lines[k][i + (how == "replace") :]
                    if how != "remove"
                    else lines[k][:i] + lines[k][i + 1 :]
                ),
                st.integers(0, max(len(lines[k]) - 1, 0)),
                st.sampled_from(list(" -:{}[],#&*!0123456789az")),
                st.sampled_from(["replace", "insert", "remove"]),
            ),
        ),
        label="new line",
    )
    lines[k] = choice
    _check_edit(old, "\n".join(lines))


def test_a_changed_layer_is_parsed_alone() -> None:
    """The fast path is taken for what an editor sends most: one layer's value changed."""
    old = TEXTS[-1]
    new = old.replace("kernel: 5, padding: same}", "kernel: 99, padding: valid}", 1)
    assert _check_edit(old, new) is not None
    new = old.replace("  - relu\n", "  - conv: {depth: 8}\n", 1)
    assert _check_edit(old, new) is not None
    mnist = (ROOT / "specs" / "mnist_cnn.yaml").read_text()
    assert "- dropout: 0.5" in mnist
    assert _check_edit(mnist, mnist.replace("- dropout: 0.5", "- dropout: 0.25")) is not None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # the next line, indented deeper, continues a plain scalar
        ("layers:\n  - relu\n    tanh\n", "layers:\n  - gelu\n    tanh\n"),
        # an item that spans lines
        ("layers:\n  - conv:\n      depth: 3\n", "layers:\n  - conv:\n      depth: 4\n"),
        # the line is text inside a block scalar
        ("note: |\n  - relu\nlayers: [relu]\n", "note: |\n  - gelu\nlayers: [relu]\n"),
        # anchors anywhere: the whole document is parsed
        ("a: &x 1\nlayers:\n  - relu\n", "a: &x 1\nlayers:\n  - gelu\n"),
        # two lines changed
        ("layers:\n  - relu\n  - relu\n", "layers:\n  - gelu\n  - gelu\n"),
        # the edit opens a flow mapping the next lines would close
        ("layers:\n  - relu\n  - tanh\n", "layers:\n  - {relu\n  - tanh\n"),
    ],
)
def test_what_is_not_one_item_is_parsed_whole(old: str, new: str) -> None:
    assert _check_edit(old, new) is None


def test_limits_hold_for_the_line_alone() -> None:
    """A new line past the node or depth limit is left to parse, which refuses it."""
    old = "layers:\n  - relu\n"
    deep = "layers:\n  - relu: {a: {b: {c: {d: {e: 1}}}}}\n"
    assert _check_edit(old, deep, Limits(max_depth=4)) is None
    wide = "layers:\n  - relu: [" + ", ".join(["1"] * 50) + "]\n"
    assert _check_edit(old, wide, Limits(max_nodes=30)) is None
    assert _check_edit(old, wide, Limits(max_nodes=100)) is not None
