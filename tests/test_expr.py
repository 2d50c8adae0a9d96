"""The whitelisted arithmetic evaluator behind spec variables — never ``eval``."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archspec
from archspec.errors import SpecError
from archspec.language import expr as expr_module
from archspec.language.expr import MAX_LENGTH, MAX_MAGNITUDE, ExprError, resolve

ENV: dict[str, Any] = {"width": 32, "depth": 4, "rate": 0.5, "flag": True, "mode": "same"}


# ---------------------------------------------------------------- what is evaluated


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("width * 2", 64),
        ("width // 3", 10),
        ("width % 5", 2),
        ("width / 8", 4.0),
        ("-width + 1", -31),
        ("+depth", 4),
        ("(width + depth) * 2", 72),
        ("width - -3", 35),
        ("min(width, 16)", 16),
        ("max(depth, 2, 7)", 7),
        ("min(max(depth, 1), width)", 4),
        ("min(depth)", 4),  # one argument: itself (Python's min would need a list)
        ("rate * 4", 2.0),
        ("7 // 2 * 1.5", 4.5),
        ("1e-4", 0.0001),
        ("0x10 * 2", 32),
        ("1_000 * 2", 2000),
        ("width", 32),  # exactly a variable's name: its value, whatever its type
        ("flag", True),
        ("mode", "same"),
        ("  width * 2  ", 64),
    ],
)
def test_arithmetic_is_evaluated(text: str, value: object) -> None:
    result = resolve(text, ENV)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        "width.real",  # attribute access
        "width.__class__.__mro__",
        "abs(width)",  # calls other than min/max
        "__import__('os').system('true')",
        "eval('1')",
        "min(width, key=abs)",  # keyword arguments
        "max()",
        "width ** 2",  # power: 9**9**9 would hang
        "2 ** 10",
        "lambda: 1",
        "width[0]",  # subscripts
        "[width]",
        "'a' + 'b'",  # strings
        '"x" * 3',
        "width if flag else 1",  # anything else Python has
        "width is 3",  # identity and membership are not comparisons here
        "width in depth",
        "width * 1j",
        "f'{width}'",
        "width; 1",
        "1 +",
    ],
)
def test_outside_the_grammar_stays_text(text: str) -> None:
    assert resolve(text, ENV) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("width == 3", False),
        ("width != 3", True),
        ("depth < 5 and flag", True),
        ("not flag or depth >= 4", True),
        ("2 < depth <= 4", True),
        ("2 < depth < 3", False),
        ("mode == mode", True),
        ("not (depth > 1)", False),
    ],
)
def test_comparisons_and_boolean_logic(text: str, value: bool) -> None:
    assert resolve(text, ENV) is value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width and 1", "uses and/or/not on"),
        ("not width", "uses and/or/not on"),
        ("flag > 0", "does arithmetic on True"),
        ("flag == 1", "a boolean with a non-boolean"),
    ],
)
def test_boolean_logic_needs_booleans(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        resolve(text, ENV)


@pytest.mark.parametrize(
    "text",
    [
        "same",
        "valid",
        "relu",
        "fashion-mnist",
        "test[:8000]",
        "test[8000:]",
        "cuda:0",
        "a-b",
        "data/mnist",
    ],
)
def test_bare_words_stay_text(text: str) -> None:
    assert resolve(text, {}) == text
    assert resolve(text, ENV) == text


def test_overlong_text_stays_text() -> None:
    text = " + ".join(["1"] * (MAX_LENGTH // 4 + 1))
    assert len(text) > MAX_LENGTH
    assert resolve(text, {}) == text


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("text", ["width / 0", "width // (depth - 4)", "width % 0", "1 / 0.0"])
def test_division_by_zero(text: str) -> None:
    with pytest.raises(ExprError, match=rf"^division by zero in '{re.escape(text)}'$") as info:
        resolve(text, ENV)
    assert info.value.hint == "check the variables' values"


def test_unknown_variable_suggests_a_close_name() -> None:
    with pytest.raises(
        ExprError, match=r"^unknown variable 'widht' in expression 'widht \* 2'$"
    ) as info:
        resolve("widht * 2", ENV)
    assert info.value.hint == "did you mean 'width'?"


def test_unknown_variable_lists_the_defined_ones() -> None:
    with pytest.raises(
        ExprError, match=r"^unknown variable 'size' in expression 'size // 2'$"
    ) as info:
        resolve("size // 2", {"width": 3, "depth": 4})
    assert info.value.hint == "define it under `vars:` (defined: depth, width)"
    with pytest.raises(ExprError) as info:
        resolve("size // 2", {})
    assert info.value.hint == "define it under `vars:` (defined: none)"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("1000000000 * 1000000000 * 10", "1e+19"),
        ("99999999999999999999", "1e+20"),
        ("-99999999999999999999 + 1", "1e+20"),
        ("1e19 / 10", "1e+19"),
    ],
)
def test_huge_values_are_refused(text: str, shown: str) -> None:
    with pytest.raises(
        ExprError, match=rf"^'{re.escape(text)}' is too large \({re.escape(shown)}\)$"
    ):
        resolve(text, {})


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1e400 - 1e400", "min(1e400, 2)"])
def test_infinite_values_are_refused(text: str) -> None:
    with pytest.raises(
        ExprError, match=rf"^'{re.escape(text)}' is not a finite number \((inf|nan)\)$"
    ):
        resolve(text, {})


def test_the_magnitude_limit_itself_is_allowed() -> None:
    assert resolve("1000000000 * 1000000000", {}) == MAX_MAGNITUDE


@pytest.mark.parametrize(("text", "value"), [("flag * 2", "True"), ("mode + 1", "'same'")])
def test_arithmetic_on_non_numbers(text: str, value: str) -> None:
    with pytest.raises(
        ExprError, match=rf"^'{re.escape(text)}' does arithmetic on {value}, which is not a number$"
    ):
        resolve(text, ENV)


# ---------------------------------------------------------------- inside a spec


def test_expression_errors_in_a_spec_are_located() -> None:
    text = (
        "input: [1, 8]\n"
        "vars: {width: 4, halved: width / 0}\n"
        "layers:\n"
        "  - conv: {depth: widht * 2, kernel: 3}\n"
    )
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    assert info.value.render().splitlines() == [
        "s.yaml:2:26: vars.halved: division by zero in 'width / 0' — check the variables' values",
        "s.yaml:4:19: layers[0].conv.depth: unknown variable 'widht' in expression 'widht * 2' — "
        "did you mean 'width'?",
    ]


def test_text_outside_the_grammar_fails_validation_not_evaluation() -> None:
    text = "input: [1, 8]\nvars: {width: 4}\nlayers:\n  - conv: {depth: width ** 2, kernel: 3}\n"
    with pytest.raises(
        SpecError,
        match=r"^s\.yaml:4:19: layers\[0\]\.conv\.depth: must be a valid integer.*; "
        r"received 'width \*\* 2'",
    ):
        archspec.loads(text, "s.yaml")


def test_dataset_names_and_paths_are_never_arithmetic() -> None:
    text = (
        "input: [4]\nlayers: [{dense: 2}]\n"
        "train:\n  data: {dataset: cifar-10, path: data/set-2, train: 'train[:800]'}\n"
    )
    data = archspec.loads(text).train.data  # type: ignore[union-attr]
    assert (data.dataset, data.path, data.train) == ("cifar-10", "data/set-2", "train[:800]")


def test_variables_feed_the_train_section() -> None:
    text = (
        "input: [4]\nvars: {batch: 32}\nlayers: [{dense: 2}]\n"
        "train:\n  data: {dataset: mnist}\n  batch_size: batch * 2\n"
    )
    assert archspec.loads(text).train.batch_size == 64  # type: ignore[union-attr]


# ---------------------------------------------------------------- property: Python's own arithmetic


@dataclass(frozen=True)
class Expr:
    text: str
    value: Callable[[], Any]  # computes the expected value, raising like the evaluator


def _leaf(value: int) -> Expr:
    return Expr(str(value), lambda: value)


def _var(name: str) -> Expr:
    return Expr(name, lambda: VARS[name])


VARS = {"a": 7, "b": -3, "c": 0, "big": 10**12}
OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}


class Refused(Exception):
    pass


def _checked(value: Any) -> Any:
    if abs(value) > MAX_MAGNITUDE:
        raise Refused("too large")
    return value


def _binary(op: str, left: Expr, right: Expr) -> Expr:
    def value() -> Any:
        x, y = left.value(), right.value()
        if op in ("/", "//", "%") and y == 0:
            raise Refused("division by zero")
        return _checked(OPS[op](x, y))

    return Expr(f"({left.text} {op} {right.text})", value)


def _call(name: str, args: list[Expr]) -> Expr:
    fn = min if name == "min" else max
    return Expr(f"{name}({', '.join(a.text for a in args)})", lambda: fn(a.value() for a in args))


def _negate(inner: Expr) -> Expr:
    return Expr(f"-{inner.text}", lambda: _checked(-inner.value()))


leaves = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(_leaf),
    st.sampled_from(sorted(VARS)).map(_var),
)
expressions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(_binary, st.sampled_from(sorted(OPS)), inner, inner),
        st.builds(_negate, inner),
        st.builds(_call, st.sampled_from(["min", "max"]), st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_evaluation_equals_pythons_arithmetic(expr: Expr) -> None:
    try:
        expected: Any = expr.value()
    except Refused as exc:
        expected = exc
    if len(expr.text) > MAX_LENGTH:
        assert resolve(expr.text, VARS) == expr.text
    elif isinstance(expected, Refused):
        pattern = "^division by zero in " if "zero" in str(expected) else r"^'.*' is too large \("
        with pytest.raises(ExprError, match=pattern):
            resolve(expr.text, VARS)
    else:
        result = resolve(expr.text, VARS)
        assert result == expected and type(result) is type(expected), expr.text


# ------------------------------------------------- the `atom op atom` fast path (issue #13)

_FAST_ENV: dict[str, Any] = {
    "w": 32,
    "z": 0,
    "neg": -7,
    "half": 0.5,
    "big": 10**18,
    "huge": 10**30,
    "nan": float("nan"),
    "inf": float("inf"),
    "flag": True,
    "name": "same",
    "None": 3,
}
_ATOMS = st.one_of(
    st.sampled_from([*_FAST_ENV, "missing", "True", "v0", "0", "1", "7", "007", "10" * 10]),
    st.integers(0, 10**19).map(str),
)


def _slow(text: str, env: dict[str, Any]) -> object:
    """``resolve`` with its fast path turned off: the oracle."""
    simple = expr_module._SIMPLE
    expr_module._SIMPLE = re.compile(r"(?!)")  # never matches
    try:
        return _outcome(lambda: expr_module.resolve(text, env))
    finally:
        expr_module._SIMPLE = simple


def _outcome(call: Callable[[], object]) -> object:
    try:
        value = call()
    except expr_module.ExprError as exc:
        return ("error", exc.message)
    return ("nan",) if value != value else (type(value).__name__, value)


@settings(max_examples=400, deadline=None)
@given(
    left=_ATOMS,
    op=st.sampled_from(["+", "-", "*", "/", "//", "%"]),
    right=_ATOMS,
    gap=st.sampled_from(["", " ", "  ", "\t"]),
)
def test_the_fast_path_agrees_with_the_parser(left: str, op: str, right: str, gap: str) -> None:
    text = f"{left}{gap}{op}{gap}{right}"
    assert _outcome(lambda: expr_module.resolve(text, _FAST_ENV)) == _slow(text, _FAST_ENV), text
