"""Size expressions: the size of one axis as an exact function of symbolic input sizes.

Torch-free, pure integers. ``⌈H/2⌉``, ``⌊(H+1)/3⌋``, ``2·⌊H/16⌋``: what
:mod:`archspec.shapes.symbolic` computes for every layer and solves for legal sizes.

>>> conv = lin(div(Var("H"), 2, 2 - 3), 1, 1)  # 3×3, stride 2, padding 1
>>> conv.text(), lin(div(conv, 2, -1), 1, 1).text(), conv.at({"H": 7}), conv.drift("H")
('⌈H/2⌉', '⌈H/4⌉', 4, (2, 1))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# ── expressions: the size of one axis as a function of the symbols ─────────────────────
#
# Every size a layer makes from its input's size is a composition of monotone maps
# (conv, pool, pad, crop, upsample, conv_transpose, pixel (un)shuffle): ``m·e + a`` and
# ``⌊(e + a)/s⌋``, plus sums (concat along an axis), products (flatten, to_tokens) and a
# clamp (slice). Each such expression ``e`` satisfies ``e(x + P) = e(x) + D`` for every
# integer ``x`` (``drift``), which is what makes legal sets exact and fast to compute.

MINUS = "−"


class Expr:
    """An integer size expression over symbols (frozen, hashable, structural equality)."""

    def at(self, env: Mapping[str, int]) -> int:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def symbols(self) -> frozenset[str]:
        raise NotImplementedError

    def drift(self, sym: str) -> tuple[int, int] | None:
        """``(P, D)`` with ``self(x + P) = self(x) + D`` for every integer ``x`` of ``sym``
        (the others fixed); ``None`` when there is none (a product of two sizes of
        ``sym``, a clamp)."""
        raise NotImplementedError

    def atomic(self) -> bool:
        """Whether the text needs no parentheses inside a product or a division."""
        return True

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Const(Expr):
    value: int

    def at(self, env: Mapping[str, int]) -> int:
        return self.value

    def text(self) -> str:
        return str(self.value) if self.value >= 0 else f"{MINUS}{-self.value}"

    def symbols(self) -> frozenset[str]:
        return frozenset()

    def drift(self, sym: str) -> tuple[int, int] | None:
        return 1, 0


@dataclass(frozen=True)
class Var(Expr):
    name: str

    def at(self, env: Mapping[str, int]) -> int:
        return env[self.name]

    def text(self) -> str:
        return self.name

    def symbols(self) -> frozenset[str]:
        return frozenset((self.name,))

    def drift(self, sym: str) -> tuple[int, int] | None:
        return 1, int(sym == self.name)


@dataclass(frozen=True)
class Lin(Expr):
    """``mul·e + add`` (``mul ≥ 1``)."""

    e: Expr
    mul: int
    add: int

    def at(self, env: Mapping[str, int]) -> int:
        return self.mul * self.e.at(env) + self.add

    def text(self) -> str:
        bare = self.e.atomic() or (isinstance(self.e, Prod) and self.mul > 1)
        inner = self.e.text() if bare else f"({self.e.text()})"
        body = inner if self.mul == 1 else f"{self.mul}·{inner}"
        if self.add > 0:
            return f"{body}+{self.add}"
        return f"{body}{MINUS}{-self.add}" if self.add < 0 else body

    def atomic(self) -> bool:
        return self.add == 0 and self.mul == 1

    def symbols(self) -> frozenset[str]:
        return self.e.symbols()

    def drift(self, sym: str) -> tuple[int, int] | None:
        d = self.e.drift(sym)
        return None if d is None else (d[0], self.mul * d[1])


@dataclass(frozen=True)
class Div(Expr):
    """``⌊(e + off)/s⌋`` with ``0 ≤ off < s`` and ``s ≥ 2``."""

    e: Expr
    s: int
    off: int

    def at(self, env: Mapping[str, int]) -> int:
        return (self.e.at(env) + self.off) // self.s

    def text(self) -> str:
        inner = self.e.text()
        if self.off == 0:
            return f"⌊{inner if self.e.atomic() else f'({inner})'}/{self.s}⌋"
        if self.off == self.s - 1:
            return f"⌈{inner if self.e.atomic() else f'({inner})'}/{self.s}⌉"
        return f"⌊({inner}+{self.off})/{self.s}⌋"

    def symbols(self) -> frozenset[str]:
        return self.e.symbols()

    def drift(self, sym: str) -> tuple[int, int] | None:
        d = self.e.drift(sym)
        if d is None:
            return None
        period, gain = d
        if gain == 0:
            return period, 0
        k = self.s // math.gcd(gain, self.s)
        return period * k, gain * k // self.s


@dataclass(frozen=True)
class Sum(Expr):
    terms: tuple[Expr, ...]

    def at(self, env: Mapping[str, int]) -> int:
        return sum(t.at(env) for t in self.terms)

    def text(self) -> str:
        return "+".join(t.text() for t in self.terms)

    def atomic(self) -> bool:
        return False

    def symbols(self) -> frozenset[str]:
        return frozenset().union(*(t.symbols() for t in self.terms))

    def drift(self, sym: str) -> tuple[int, int] | None:
        drifts = [t.drift(sym) for t in self.terms]
        if any(d is None for d in drifts):
            return None
        known = [d for d in drifts if d is not None]
        period = math.lcm(*(p for p, _ in known))
        return period, sum(g * (period // p) for p, g in known)


@dataclass(frozen=True)
class Prod(Expr):
    factors: tuple[Expr, ...]

    def at(self, env: Mapping[str, int]) -> int:
        out = 1
        for f in self.factors:
            out *= f.at(env)
        return out

    def text(self) -> str:
        return "·".join(f.text() if f.atomic() else f"({f.text()})" for f in self.factors)

    def atomic(self) -> bool:
        return False

    def symbols(self) -> frozenset[str]:
        return frozenset().union(*(f.symbols() for f in self.factors))

    def drift(self, sym: str) -> tuple[int, int] | None:
        varying = [f for f in self.factors if sym in f.symbols()]
        if len(varying) != 1:
            return (1, 0) if not varying else None
        d = varying[0].drift(sym)
        if d is None:
            return None
        fixed = [f for f in self.factors if sym not in f.symbols()]
        scale = 1
        for f in fixed:
            if f.symbols():
                return None  # another symbol: its value is not known here
            scale *= f.at({})
        return d[0], d[1] * scale


@dataclass(frozen=True)
class Min(Expr):
    """``min(e, bound)``: a slice's end clamped to the axis."""

    e: Expr
    bound: int

    def at(self, env: Mapping[str, int]) -> int:
        return min(self.e.at(env), self.bound)

    def text(self) -> str:
        return f"min({self.e.text()}, {self.bound})"

    def symbols(self) -> frozenset[str]:
        return self.e.symbols()

    def drift(self, sym: str) -> tuple[int, int] | None:
        return (1, 0) if sym not in self.symbols() else None


def lin(e: Expr, mul: int = 1, add: int = 0) -> Expr:
    """``mul·e + add``, simplified."""
    if isinstance(e, Const):
        return Const(mul * e.value + add)
    if isinstance(e, Lin):
        return lin(e.e, mul * e.mul, mul * e.add + add)
    if mul == 1 and add == 0:
        return e
    return Lin(e, mul, add)


def div(e: Expr, s: int, add: int = 0) -> Expr:
    """``⌊(e + add)/s⌋``, simplified: nested divisions merge (``⌈⌈H/2⌉/2⌉ = ⌈H/4⌉``),
    a whole quotient moves out (``⌊(H+5)/2⌋ = ⌊(H+1)/2⌋+2``)."""
    if isinstance(e, Const):
        return Const((e.value + add) // s)
    if s == 1:
        return lin(e, 1, add)
    inner, mul, t = (e.e, e.mul, e.add + add) if isinstance(e, Lin) else (e, 1, add)
    if mul % s == 0:  # ⌊(m·y + t)/s⌋ = (m/s)·y + ⌊t/s⌋
        return lin(inner, mul // s, t // s)
    if s % mul == 0 and mul > 1:  # ⌊(m·y + t)/(m·s')⌋ = ⌊(y + ⌊t/m⌋)/s'⌋
        return div(inner, s // mul, t // mul)
    if mul == 1 and isinstance(inner, Div):  # ⌊(⌊(z + o)/a⌋ + t)/s⌋ = ⌊(z + o + a·t)/(a·s)⌋
        return div(inner.e, inner.s * s, inner.off + inner.s * t)
    q, r = divmod(t, s)
    body = inner if mul == 1 else Lin(inner, mul, 0)
    return lin(Div(body, s, r), 1, q)


def total(terms: Sequence[Expr]) -> Expr:
    """The sum of ``terms`` (constants folded)."""
    const = sum(t.value for t in terms if isinstance(t, Const))
    rest = [t for t in terms if not isinstance(t, Const)]
    if not rest:
        return Const(const)
    body = rest[0] if len(rest) == 1 else Sum(tuple(rest))
    return lin(body, 1, const) if const else body


def product(factors: Sequence[Expr]) -> Expr:
    """The product of ``factors`` (constants folded)."""
    const = 1
    for f in factors:
        if isinstance(f, Const):
            const *= f.value
    rest = [f for f in factors if not isinstance(f, Const)]
    if not rest or const == 0:
        return Const(const)
    body = rest[0] if len(rest) == 1 else Prod(tuple(rest))
    return lin(body, const) if const != 1 else body


def shape_text(shape: Sequence[Expr]) -> str:
    """``8×⌈H/2⌉×⌈W/2⌉``; a sum in parentheses: ``8×(H−4)×(W−4)``."""
    return "×".join(_axis_text(e) for e in shape) or "1"


def _axis_text(e: Expr) -> str:
    summed = isinstance(e, Sum) or (isinstance(e, Lin) and e.add != 0)
    return f"({e.text()})" if summed else e.text()
