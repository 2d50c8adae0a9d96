"""Declared variables: ``vars: {width: {value: 32, multiple_of: 8, min: 16, max: 256}}``.

A plain ``width: 32`` is a variable without constraints. A declared one states what
values the network is meant for; the spec is checked against it (a located error names
the rule, the value and the nearest legal values) and ``archspec fit`` only tries values
that satisfy it. The mapping's shape (keys, types) is validated by
:class:`~archspec.language.model.DeclaredVar`; this module checks the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archspec.errors import Problem
from archspec.language.expr import ExprError, Scalar, resolve
from archspec.loader.source import SourceMap


@dataclass(frozen=True)
class Constraint:
    """What a declared variable allows (``None``: no such rule)."""

    multiple_of: int | None = None
    min: float | None = None
    max: float | None = None

    def violation(self, value: float) -> tuple[str, str] | None:
        """``(what is wrong, how to fix it)`` when ``value`` breaks a rule."""
        m = self.multiple_of
        if m is not None:
            if not isinstance(value, int):
                return f"{value!r} is not an integer (declared multiple_of {m})", (
                    f"use a multiple of {m}"
                )
            if value % m:
                below, above = value - value % m, value - value % m + m
                hint = f"use {below} or {above}" if below > 0 else f"use {above}"
                return f"{value} is not a multiple of {m} (declared multiple_of)", hint
        if self.min is not None and value < self.min:
            return f"{value} is below the declared min {self.min:g}", "raise it or lower min"
        if self.max is not None and value > self.max:
            return f"{value} is above the declared max {self.max:g}", "lower it or raise max"
        return None

    def allows(self, value: float) -> bool:
        return self.violation(value) is None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def constraint(raw: Any) -> Constraint:
    """The rules of a ``vars:`` entry (a plain value has none); ill-typed rules are
    ignored here — :class:`~archspec.language.model.DeclaredVar` reports them."""
    if not isinstance(raw, dict):
        return Constraint()
    m = raw.get("multiple_of")
    multiple = m if isinstance(m, int) and not isinstance(m, bool) and m > 0 else None
    return Constraint(multiple, _number(raw.get("min")), _number(raw.get("max")))


def constraints(raw_vars: Any) -> dict[str, Constraint]:
    """Every variable's constraint, by name."""
    if not isinstance(raw_vars, dict):
        return {}
    return {str(name): constraint(raw) for name, raw in raw_vars.items()}


def declared_value(
    name: str,
    raw: dict[Any, Any],
    env: Mapping[str, Scalar],
    source: SourceMap,
    problems: list[Problem],
) -> Scalar | None:
    """The value of a declared variable, checked against its rules (problems located at
    the value, or at the rule it breaks)."""
    path = ("vars", name, "value")
    value = raw.get("value")
    if isinstance(value, str):
        try:
            value = resolve(value, env)
        except ExprError as exc:
            problems.append(Problem(exc.message, exc.hint, source.locate(path), path))
            return None
    if not isinstance(value, int | float | bool | str):
        return None  # missing or not a scalar: the model reports it
    number = _number(value)
    found = constraint(raw).violation(number) if number is not None else None
    if found is not None:
        message, hint = found
        problems.append(Problem(message, hint, source.locate(path), path))
    return value
