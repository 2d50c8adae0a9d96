"""A small, whitelisted arithmetic evaluator for spec variables — never ``eval``.

Grammar: numbers, variable names, ``+ - * / // %``, unary ``-``/``+``,
parentheses, the functions ``min(...)`` and ``max(...)``, comparisons
(``== != < <= > >=``, chained as in Python) and ``and``/``or``/``not`` on
booleans (for ``when: n > 1 and not last``). Nothing else: no
attribute access, no subscripts, no other calls, no strings, no ``**``.

A string in a spec is an expression when it parses under that grammar and
either uses an operator together with a number or a known variable, or is
exactly the name of a variable. Other strings (``same``, ``fashion-mnist``,
``test[:8000]``) stay text.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import math
import operator
import re
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

from archspec.errors import DataPath, suggest

Scalar = int | float | bool | str
MAX_LENGTH = 200
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# `atom op atom` with a variable name or a decimal integer on each side (`v1 + 1`, `w * 2`):
# most expressions of a spec, evaluated without parsing (a 1 MB spec holds 50,000 of them)
_ATOM = r"(?:([A-Za-z_][A-Za-z0-9_]*)|(0|[1-9][0-9]*))"
_SIMPLE = re.compile(rf"[ \t]*{_ATOM}[ \t]*(//|[-+*/%])[ \t]*{_ATOM}[ \t]*\Z")
_SIMPLE_OPS: dict[str, type[ast.operator]] = {
    "+": ast.Add,
    "-": ast.Sub,
    "*": ast.Mult,
    "/": ast.Div,
    "//": ast.FloorDiv,
    "%": ast.Mod,
}
MAX_MAGNITUDE = 10**18

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class ExprError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _parse(text: str) -> ast.expr | None:
    """The expression's tree when ``text`` fits the whitelisted grammar, else ``None``."""
    parsed = _parse_walk(text)
    return parsed[0] if parsed is not None else None


def _parse_walk(text: str) -> tuple[ast.expr, list[ast.AST]] | None:
    """:func:`_parse`, and every node of the tree (walked once: walking is most of the cost
    of a `vars:` entry, and a 1 MB spec holds 50,000 of them)."""
    if len(text) > MAX_LENGTH or not text.strip():
        return None
    if not text.isascii():  # Python folds 'ａ'/'ª' to 'a' (NFKC): issue #13, text stays text
        return None
    try:
        with warnings.catch_warnings():  # "1if x" warns; text from a spec must not
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    nodes = list(ast.walk(tree))
    return (tree.body, nodes) if all(_allowed(node) for node in nodes) else None


def _allowed(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float)
    if isinstance(node, ast.Call):
        return (
            isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and bool(node.args)
        )
    if isinstance(node, ast.BinOp):
        return type(node.op) in _BINARY
    if isinstance(node, ast.UnaryOp):
        return type(node.op) in _UNARY or isinstance(node.op, ast.Not)
    if isinstance(node, ast.Compare):
        return all(type(op) in _COMPARE for op in node.ops)
    return isinstance(
        node,
        ast.Expression
        | ast.Name
        | ast.Load
        | ast.operator
        | ast.unaryop
        | ast.cmpop
        | ast.BoolOp
        | ast.boolop,
    )


def _names(nodes: list[ast.AST]) -> list[str]:
    """The variables among ``nodes`` (a tree's walk), function names left out."""
    called = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    return [n.id for n in nodes if isinstance(n, ast.Name) and id(n) not in called]


def _is_expression(
    tree: ast.expr, nodes: list[ast.AST], names: list[str], env: Mapping[str, Scalar]
) -> bool:
    if isinstance(tree, ast.Name):
        return tree.id in env
    has_number = any(isinstance(n, ast.Constant) for n in nodes)
    return has_number or any(name in env for name in names)


def resolve(text: str, env: Mapping[str, Scalar]) -> Scalar:
    """Evaluate ``text`` if it is an expression (see the module docstring), else return it.

    >>> resolve("width * 2", {"width": 32}), resolve("same", {}), resolve("fashion-mnist", {})
    (64, 'same', 'fashion-mnist')
    """
    if _WORD.match(text):  # fast path: most strings are words (same, max, names)
        return env.get(text, text)
    simple = _SIMPLE.match(text)
    if simple is not None:
        quick = _simple(text, simple, env)
        if quick is not None:
            return quick
    parsed = _parse_walk(text)
    if parsed is None:
        return text
    tree, nodes = parsed
    names = _names(nodes)
    if not _is_expression(tree, nodes, names, env):
        return text
    unknown = [name for name in names if name not in env]
    if unknown:
        suggestion = suggest(unknown[0], env)
        known = _defined(env)
        raise ExprError(
            f"unknown variable '{unknown[0]}' in expression '{text}'",
            suggestion or f"define it under `vars:` (defined: {known})",
        )
    value: Scalar = _evaluate(tree, env, text)
    return value


def _operand(name: str | None, digits: str | None, env: Mapping[str, Scalar]) -> int | float | None:
    """One side of a simple expression; ``None`` when it needs the full path (an unknown or
    non-numeric variable, a keyword such as ``None`` or ``True``)."""
    if digits is not None:
        return int(digits)
    assert name is not None
    value = env.get(name)
    if type(value) not in (int, float) or keyword.iskeyword(name):
        return None
    return value  # type: ignore[return-value]


def _bounded(value: int | float) -> bool:
    """Finite and at most MAX_MAGNITUDE (NaN is neither)."""
    return abs(value) <= MAX_MAGNITUDE


def _simple(text: str, match: re.Match[str], env: Mapping[str, Scalar]) -> Scalar | None:
    """The value of ``atom op atom`` exactly as the full path computes it, or ``None`` to
    take the full path (which then also words every error)."""
    if len(text) > MAX_LENGTH:
        return None
    left_name, left_digits, op, right_name, right_digits = match.groups()
    left = _operand(left_name, left_digits, env)
    right = _operand(right_name, right_digits, env)
    if left is None or right is None or not (_bounded(left) and _bounded(right)):
        return None
    if op in ("/", "//", "%") and right == 0:
        return None
    value = _BINARY[_SIMPLE_OPS[op]](left, right)
    return value if _bounded(value) else None


def evaluate_tree(
    value: Any,
    path: DataPath,
    env: Mapping[str, Scalar],
    report: Callable[[DataPath, ExprError], None],
    text_only: Collection[DataPath] = (),
) -> Any:
    """``value`` (YAML data) with every expression string in it evaluated, at any depth.

    A string that fails is reported with its path and kept as written; the values at
    ``text_only`` paths (file paths, dataset names) are never evaluated.

    >>> evaluate_tree({"dense": "w * 2", "act": ["relu", 1]}, (), {"w": 4}, print)
    {'dense': 8, 'act': ['relu', 1]}
    """
    if path in text_only:
        return value
    if isinstance(value, str):
        try:
            return resolve(value, env)
        except ExprError as exc:
            report(path, exc)
            return value
    if isinstance(value, dict):
        return {k: evaluate_tree(v, (*path, k), env, report, text_only) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_tree(v, (*path, i), env, report, text_only) for i, v in enumerate(value)]
    return value


def _evaluate(node: ast.expr, env: Mapping[str, Scalar], text: str) -> Any:
    """The value of ``node``; every intermediate result is finite and at most MAX_MAGNITUDE."""
    value = _apply(node, env, text)
    if isinstance(value, float | int) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExprError(f"'{text}' is not a finite number ({value})", "use smaller values")
        if abs(value) > MAX_MAGNITUDE:
            raise ExprError(f"'{text}' is too large ({abs(value):.3g})", "use smaller values")
    return value


def _apply(node: ast.expr, env: Mapping[str, Scalar], text: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _boolean(_evaluate(node.operand, env, text), text)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_number(_evaluate(node.operand, env, text), text))
    if isinstance(node, ast.BoolOp):  # short-circuits like Python; each operand read is a boolean
        want = isinstance(node.op, ast.Or)
        for operand in node.values:
            if _boolean(_evaluate(operand, env, text), text) == want:
                return want
        return not want
    if isinstance(node, ast.Compare):
        return _compare(node, env, text)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_number(_evaluate(arg, env, text), text) for arg in node.args]
        return _FUNCTIONS[node.func.id](args)  # over a list: min(x) is x, as in a spec
    assert isinstance(node, ast.BinOp)
    left = _number(_evaluate(node.left, env, text), text)
    right = _number(_evaluate(node.right, env, text), text)
    if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
        raise ExprError(f"division by zero in '{text}'", "check the variables' values")
    return _BINARY[type(node.op)](left, right)


def _compare(node: ast.Compare, env: Mapping[str, Scalar], text: str) -> bool:
    """``a < b <= c`` as Python chains it. Ordering takes numbers; ``==``/``!=`` also
    compare booleans and text variables, but never a number with a boolean."""
    left = _evaluate(node.left, env, text)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _evaluate(right_node, env, text)
        if isinstance(op, _ORDERING):
            _number(left, text), _number(right, text)
        elif isinstance(left, bool) != isinstance(right, bool):
            raise ExprError(
                f"'{text}' compares {left!r} with {right!r}, a boolean with a non-boolean",
                "compare numbers with numbers and booleans with booleans",
            )
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _boolean(value: Any, text: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(
            f"'{text}' uses and/or/not on {value!r}, which is not true or false",
            "compare it first, e.g. `n > 1 and deep`",
        )
    return value


def _number(value: Any, text: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExprError(
            f"'{text}' does arithmetic on {value!r}, which is not a number",
            "use numeric variables in expressions",
        )
    return value


def _defined(env: Mapping[str, Scalar], limit: int = 20) -> str:
    """``a, b, c`` (sorted) for a hint; past ``limit`` variables the first ``limit`` defined
    and the count: a hint is one line, and a spec may define 100,000 variables and misspell
    each (issue #13: listing all of them made the output quadratic)."""
    if not env:
        return "none"
    if len(env) <= limit:
        return ", ".join(sorted(env))
    return f"{', '.join(sorted(itertools.islice(env, limit)))}, … ({len(env):,} in all)"


def unknown_name_hint(text: str, env: Mapping[str, Scalar]) -> str:
    """For a bare word that failed validation: a hint if it looks like a mistyped variable."""
    tree = _parse(text)
    if isinstance(tree, ast.Name):
        suggestion = suggest(tree.id, env)
        if suggestion:
            return f"'{tree.id}' is not a variable — {suggestion}"
    return ""
