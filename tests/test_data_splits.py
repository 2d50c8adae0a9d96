"""Split expressions: grammar, slicing, and the torch-free import path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archspec.data import DATASETS, parse_split
from archspec.data.splits import format_split, select
from archspec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("expr", "parsed"),
    [
        ("train", ("train", None, None)),
        ("test[:8000]", ("test", None, 8000)),
        ("test[8000:]", ("test", 8000, None)),
        ("all[100:-50]", ("all", 100, -50)),
        ("all[-10:]", ("all", -10, None)),
        ("all[:]", ("all", None, None)),
        (" test [ 1 : 2 ] ", ("test", 1, 2)),
        ("my-split_2", ("my-split_2", None, None)),
    ],
)
def test_parse(expr: str, parsed: tuple[str, int | None, int | None]) -> None:
    assert parse_split(expr) == parsed


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "test[5]",
        "test[1:2:3]",
        "test[a:b]",
        "test[:8000",
        "2train",
        "test[1.5:]",
        "__import__('os')[:]",
        "test[٣:]",
        "test[:" + "9" * 19 + "]",
        "a b",
    ],
)
def test_bad_expressions_state_the_grammar(expr: str) -> None:
    with pytest.raises(DataError, match=r"^split .* is not a split expression$") as caught:
        parse_split(expr)
    assert "NAME[START:STOP]" in caught.value.hint


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
bounds = st.none() | st.integers(min_value=-(10**17), max_value=10**17)


@given(names, bounds, bounds)
def test_format_then_parse_round_trips(name: str, start: int | None, stop: int | None) -> None:
    assert parse_split(format_split(name, start, stop)) == (name, start, stop)


@given(st.text(max_size=30))
def test_any_text_parses_or_is_a_data_error(text: str) -> None:
    try:
        name, start, stop = parse_split(text)
    except DataError:
        return
    assert name and all(bound is None or isinstance(bound, int) for bound in (start, stop))


@given(st.integers(0, 50), bounds, bounds)
def test_select_is_python_slicing(count: int, start: int | None, stop: int | None) -> None:
    expected = list(range(count))[start:stop]
    try:
        assert list(select(count, "all", start, stop, "src")) == expected
    except DataError:
        assert expected == []


def test_empty_selection_says_how_many_there_are() -> None:
    with pytest.raises(
        DataError, match=r"^split 'test\[9000:100\]' selects no samples: .* has 10000"
    ):
        select(10000, "test", 9000, 100, "the file")


def test_named_datasets() -> None:
    emnist = {f"emnist-{v}" for v in ("byclass", "bymerge", "balanced", "letters", "digits")}
    others = {"mnist", "fashion-mnist", "kmnist", "emnist-mnist", "cifar10", "cifar100", "svhn"}
    assert set(DATASETS) == emnist | others
    assert DATASETS["fashion-mnist"].classes[0] == "T-shirt/top"
    assert DATASETS["mnist"].classes == tuple("0123456789")


def test_parse_split_and_catalog_do_not_import_torch_or_numpy() -> None:
    code = (
        "import sys; from archspec.data import DATASETS, parse_split; parse_split('a[1:]'); "
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
