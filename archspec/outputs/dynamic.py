"""``archspec export --dynamic``: symbolic input axes, and how torch.export expresses their
legal sets.

A network's input axis is *symbolic* when its size is a name (``H``) rather than a number.
The shape engine (:mod:`archspec.shapes.symbolic`) computes, per symbol, the exact set of
sizes the network accepts (a :class:`LegalSet`). torch.export can express two kinds of
sets, and this module turns a legal set into one of them or refuses it:

- a range ``lo ≤ H ≤ hi``: ``Dim("H", min=lo, max=hi)``;
- one residue class ``H ≡ r (mod m)`` in a range: the derived dim
  ``m·Dim("H_blocks", min=…, max=…) + r``.

A set with several residues (``H ≡ 0, 1 (mod 4)``) or an irregular finite set is refused:
torch.export has no way to say it, and a wider set would accept sizes the network
cannot run.

torch.export's own rules met here (torch 2.13): the example size a program is traced at
must not be 0 or 1, for a derived dim not even its root (``Dim`` ``H_blocks``), else torch
"specialises" the axis to that constant; a negative offset is refused. So the example is
the legal size nearest the spec's own size whose root is at least 2, and a set of one or
two values of a derived dim too small for that is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from archspec.errors import ArchspecError, UsageError
from archspec.shapes import symbolic
from archspec.shapes.plan import Plan
from archspec.shapes.symbolic import LegalSet, Symbol

# names of the spatial axes of a grid [C, *S], by the number of spatial axes
GRID_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
SEQUENCE_AXIS = "T"
DEFAULT_MIN = Symbol("_", "_", 0, 1).minimum
DEFAULT_MAX = Symbol("_", "_", 0, 1).maximum
# a pattern set spanning fewer values than this is listed to see whether it is a progression
ENUMERATE = 1_000_000


class DynamicError(ArchspecError):
    """The legal set of a symbolic axis is one torch.export cannot express."""


class NoLegalSize(DynamicError):
    """No size of a symbolic axis is legal (within its bounds)."""

    def __init__(self, legal: LegalSet, symbol: Symbol | None = None) -> None:
        s = legal.symbol
        within = f" in {symbol.minimum}..{symbol.maximum}" if symbol is not None else ""
        super().__init__(
            f"no size of {s}{within} is legal ({legal.describe()})",
            f"widen the bounds (--size {s}=LO..HI); `archspec check` says what the network needs",
        )


@dataclass(frozen=True)
class Progression:
    """The sizes ``first, first + step, …, last`` (``step`` 1: every size in a range).

    >>> p = Progression(32, 32, 1024)
    >>> 64 in p, 65 in p, p.count
    (True, False, 32)
    """

    first: int
    step: int
    last: int

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        return self.first <= value <= self.last and (value - self.first) % self.step == 0

    @property
    def count(self) -> int:
        return (self.last - self.first) // self.step + 1

    @property
    def offset(self) -> int:
        """``r`` of ``step·k + r``: the smallest non-negative size of the class."""
        return self.first % self.step

    def root(self, value: int) -> int:
        """``k`` of ``value = step·k + offset``."""
        return (value - self.offset) // self.step


@dataclass(frozen=True)
class Axis:
    """One symbolic axis of an export: its symbol, legal set, the progression torch.export
    expresses it as, and the size the example input is traced at."""

    symbol: Symbol
    legal: LegalSet
    progression: Progression
    example: int

    @property
    def static(self) -> bool:
        return self.progression.count == 1

    def torch_text(self) -> str:
        """The dim as torch.export code: ``Dim('H', min=28, max=31)``, ``32*Dim('H_blocks',
        min=1, max=32)``, or the size itself for a set of one value."""
        p, name = self.progression, self.symbol.name
        if self.static:
            return f"{p.first} (static)"
        if p.step == 1:
            return f"Dim('{name}', min={p.first}, max={p.last})"
        root = f"{p.step}*Dim('{name}_blocks', min={p.root(p.first)}, max={p.root(p.last)})"
        return root + (f" + {p.offset}" if p.offset else "")


# ---------------------------------------------------------------------------------------
# symbols: which axes --dynamic makes symbolic, and their bounds


def axis_names(shape: Sequence[int], layout: str, vocab: int | None) -> dict[int, str]:
    """The symbolic axes of an input (axis → name, batch excluded): the spatial axes of a
    grid ``[C, *S]``, the length of a sequence ``[T, D]`` or of token ids ``[T]``.

    >>> axis_names((3, 224, 224), "grid", None)
    {1: 'H', 2: 'W'}
    >>> axis_names((32, 8), "sequence", None), axis_names((64,), "flat", 1000)
    ({0: 'T'}, {0: 'T'})
    >>> axis_names((12,), "flat", None)
    {}
    """
    if layout == "grid" and len(shape) >= 2:
        spatial = len(shape) - 1
        names = GRID_AXES.get(spatial, tuple(f"S{i + 1}" for i in range(spatial)))
        return {i + 1: name for i, name in enumerate(names)}
    if layout == "sequence" or (layout == "flat" and vocab is not None):
        return {0: SEQUENCE_AXIS}
    return {}


def all_symbols(plan: Plan) -> tuple[Symbol, ...]:
    """Every axis ``--dynamic`` can make symbolic, at the default bounds. With several
    inputs the names carry the input's (``image_H``): each input's sizes are its own."""
    inputs = [(inp, axis_names(inp.shape, inp.layout, inp.vocab)) for inp in plan.all_inputs]
    several = sum(1 for _, names in inputs if names) > 1
    return tuple(
        Symbol(f"{inp.name}_{name}" if several else name, inp.name, axis, inp.shape[axis])
        for inp, names in inputs
        for axis, name in names.items()
    )


def parse_size(text: str) -> tuple[str, int, int]:
    """``--size H=32..1024`` → ``("H", 32, 1024)``; ``H=32..`` and ``H=..1024`` leave one
    bound at its default, ``H=28`` fixes the size.

    >>> parse_size("H=32..1024"), parse_size("W=..64"), parse_size("T=16")
    (('H', 32, 1024), ('W', 1, 64), ('T', 16, 16))
    """
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d*)\s*(\.\.)?\s*(\d*)\s*", text)
    if m is None or (not m[2] and not m[4]) or (m[3] is None and m[4]):
        raise UsageError(
            f"--size {text!r}: expected NAME=LO..HI",
            "e.g. --size H=32..1024, H=32.. (no upper bound), H=..1024, or H=28 (fixed)",
        )
    name, lo_text, dots, hi_text = m[1], m[2], m[3], m[4]
    lo = int(lo_text) if lo_text else DEFAULT_MIN
    hi = int(hi_text) if hi_text else (lo if dots is None else DEFAULT_MAX)
    if lo < 1 or lo > hi:
        raise UsageError(
            f"--size {text!r}: the bounds must satisfy 1 ≤ LO ≤ HI; received {lo}..{hi}",
            "give the smallest size first, e.g. --size H=32..1024",
        )
    return name, lo, hi


def choose_symbols(
    plan: Plan, names: Sequence[str] | None, sizes: Sequence[str] = ()
) -> tuple[Symbol, ...]:
    """The symbols of ``--dynamic [NAMES]`` (None: every axis) with ``--size`` bounds."""
    available = {s.name: s for s in all_symbols(plan)}
    listing = ", ".join(available) or "none"
    if not available:
        raise UsageError(
            "--dynamic: this network's inputs have no spatial or sequence axis to make symbolic",
            "export without --dynamic (the batch axis is always dynamic)",
        )
    chosen = list(available) if names is None else list(dict.fromkeys(names))
    bounds = {}
    for text in sizes:
        name, lo, hi = parse_size(text)
        bounds[name] = (lo, hi)
    for name in [*chosen, *bounds]:
        if name not in available:
            raise UsageError(
                f"--dynamic: this network has no input axis named {name!r}",
                f"its axes are {listing}",
            )
    for name in bounds:
        if name not in chosen:
            raise UsageError(
                f"--size {name}: {name} is not among the axes --dynamic makes symbolic",
                f"add it: --dynamic {','.join([*chosen, name])}",
            )
    out = []
    for name in chosen:
        lo, hi = bounds.get(name, (DEFAULT_MIN, DEFAULT_MAX))
        s = available[name]
        out.append(Symbol(s.name, s.input, s.axis, s.nominal, lo, hi))
    return tuple(out)


def legal_sets(plan: Plan, symbols: Sequence[Symbol]) -> dict[Symbol, LegalSet]:
    """Each symbol's legal set, from the shape engine (:func:`_legal`)."""
    sets = _legal(plan, tuple(symbols))
    return {s: sets[s.name] for s in symbols}


def _legal(plan: Plan, symbols: tuple[Symbol, ...]) -> dict[str, LegalSet]:
    """The one call into the symbolic-sizes engine (``shapes/symbolic.py``)."""
    return dict(symbolic.legal_sets(plan, symbols).sets)


# ---------------------------------------------------------------------------------------
# legal set → progression → torch.export dim


def progression(legal: LegalSet) -> Progression:
    """The legal set as one progression torch.export can express, or a refusal.

    >>> progression(LegalSet("H", minimum=28, maximum=31))
    Progression(first=28, step=1, last=31)
    >>> progression(LegalSet("H", minimum=30, maximum=1024, modulus=8, residues=(4, 0)))
    Progression(first=32, step=4, last=1024)
    >>> progression(LegalSet("H", minimum=1, maximum=9, values=(3, 5, 7)))
    Progression(first=3, step=2, last=7)
    """
    members = _members(legal)
    if members is None:
        period, residues = _reduced(legal.modulus, legal.residues)
        if len(residues) == 1:
            return _class(legal, period, residues[0])
        raise _refusal(legal, f"{len(residues)} residues modulo {period}")
    if not members:
        raise NoLegalSize(legal)
    if len(members) == 1:
        return Progression(members[0], 1, members[0])
    step = members[1] - members[0]
    if all(b - a == step for a, b in pairwise(members)):
        return Progression(members[0], step, members[-1])
    if legal.values is not None:
        raise _refusal(legal, "no single step between its sizes")
    period, residues = _reduced(legal.modulus, legal.residues)
    raise _refusal(legal, f"{len(residues)} residues modulo {period}")


def _members(legal: LegalSet) -> list[int] | None:
    """The legal sizes in order, when few enough to list (None: a long pattern)."""
    if legal.values is not None:
        return sorted(set(legal.values))
    if legal.maximum - legal.minimum > ENUMERATE:
        return None
    period, residues = _reduced(legal.modulus, legal.residues)
    if len(residues) == 1:
        return None  # one class: _class says it without listing
    return [v for v in range(legal.minimum, legal.maximum + 1) if v % period in residues]


def _reduced(modulus: int, residues: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """The smallest period of the residue pattern: ``{0, 2} (mod 4)`` is ``{0} (mod 2)``.

    >>> _reduced(4, (0, 2)), _reduced(4, (0, 1, 2, 3)), _reduced(6, (1, 4))
    ((2, (0,)), (1, (0,)), (3, (1,)))
    """
    m = max(modulus, 1)
    rs = {r % m for r in residues}
    for d in range(1, m + 1):
        if m % d == 0 and all((r + d) % m in rs for r in rs):
            return d, tuple(sorted({r % d for r in rs}))
    return m, tuple(sorted(rs))  # unreachable: d = m always qualifies


def _class(legal: LegalSet, step: int, residue: int) -> Progression:
    """``H ≡ residue (mod step)`` within ``legal``'s bounds."""
    first = legal.minimum + (residue - legal.minimum) % step
    last = legal.maximum - (legal.maximum - residue) % step
    if first > last:
        raise NoLegalSize(legal)
    return Progression(first, step, last)


def _refusal(legal: LegalSet, why: str) -> DynamicError:
    return DynamicError(
        f"the legal sizes of {legal.symbol} ({legal.describe()}) are not one range or one "
        f"residue class ({why}): torch.export cannot express them",
        f"fix {legal.symbol} (--size {legal.symbol}=N) or leave it out of --dynamic",
    )


def example_size(symbol: Symbol, p: Progression) -> int:
    """The size to trace at: the legal size nearest the spec's own whose root (the size
    itself for a range) is at least 2 — torch.export specialises an example of 0 or 1.

    >>> example_size(Symbol("H", "input", 1, 28), Progression(28, 1, 31))
    28
    >>> example_size(Symbol("H", "input", 1, 64), Progression(32, 32, 1024))
    64
    >>> example_size(Symbol("H", "input", 1, 32), Progression(32, 32, 1024))
    64
    """
    if p.count == 1:
        return p.first
    lowest = p.offset + 2 * p.step  # the smallest size whose root is 2
    if p.last < lowest:
        raise DynamicError(
            f"{symbol.name} takes {p.count} sizes ({p.first}, {p.last}); torch.export needs a "
            f"dynamic size of the form {p.step}·k + {p.offset} to allow k ≥ 2",
            f"fix {symbol.name} (--size {symbol.name}=N) or leave it out of --dynamic",
        )
    near = p.first + round((symbol.nominal - p.first) / p.step) * p.step
    return min(max(near, p.first, lowest), p.last)


def axes(legal: Mapping[Symbol, LegalSet]) -> tuple[Axis, ...]:
    """Each symbol with its progression and example size (refusing what torch cannot say)."""
    out = []
    for symbol, legal_set in legal.items():
        try:
            p = progression(legal_set)
        except NoLegalSize:
            raise NoLegalSize(legal_set, symbol) from None
        out.append(Axis(symbol, legal_set, p, example_size(symbol, p)))
    return tuple(out)


def torch_dim(axis: Axis) -> Any:
    """The torch.export dim of a non-static axis: a ``Dim`` range or ``step·Dim + offset``."""
    from torch.export import Dim

    p, name = axis.progression, axis.symbol.name
    if p.step == 1:
        return Dim(name, min=p.first, max=p.last)
    root = Dim(f"{name}_blocks", min=p.root(p.first), max=p.root(p.last))
    return p.step * root + p.offset if p.offset else p.step * root


def described(found: Sequence[Axis]) -> dict[str, dict[str, Any]]:
    """The artifact's metadata for its symbolic axes."""
    return {
        a.symbol.name: {
            "input": a.symbol.input,
            "axis": a.symbol.axis,
            "legal": a.legal.describe(),
            "first": a.progression.first,
            "step": a.progression.step,
            "last": a.progression.last,
        }
        for a in found
    }
