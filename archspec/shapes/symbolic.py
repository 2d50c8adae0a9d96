"""Symbolic input sizes: which values of an input axis a network accepts.

Torch-free. A :class:`LegalSet` is the exact set of legal values of one symbol (``H``)
in a readable form: an arithmetic pattern ``minimum ≤ H ≤ maximum and H mod modulus ∈
residues``, or an explicit finite list of ``values``. :func:`legal_sets` walks a Plan
built at the nominal sizes, writes every layer's sizes as expressions
(:mod:`archspec.shapes.sizes`), collects what each layer requires (:class:`Constraint`,
located) and solves each symbol's set exactly (:func:`_solve`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from archspec.errors import Location
from archspec.shapes import SIZE_MAXIMUM, SIZE_MINIMUM
from archspec.shapes.geometry import (
    AxesGeometry,
    ConvGeometry,
    ConvTransposeGeometry,
    FlattenGeometry,
    PadGeometry,
    PoolGeometry,
    SliceGeometry,
    SplitGeometry,
    UpsampleGeometry,
)
from archspec.shapes.plan import Plan, PlanNode, Shape, format_shape
from archspec.shapes.sizes import (
    Const,
    Expr,
    Min,
    Var,
    div,
    lin,
    product,
    total,
)


@dataclass(frozen=True)
class Symbol:
    """One symbolic axis of a network input: ``H`` on axis 1 of ``input: [3, H, W]``."""

    name: str
    input: str  # the input it belongs to ("input" for a spec with one input)
    axis: int  # axis of that input, batch excluded (``[3, H, W]``: H is 1)
    nominal: int  # the size the module's parameters are built at
    minimum: int = 1
    maximum: int = 65536


@dataclass(frozen=True)
class LegalSet:
    """The exact legal values of one symbol.

    >>> s = LegalSet("H", minimum=32, maximum=1024, modulus=32, residues=(0,))
    >>> 64 in s, 65 in s, 16 in s
    (True, False, False)
    >>> s.describe()
    '32 ≤ H ≤ 1024 and H ≡ 0 (mod 32)'
    >>> LegalSet("H", minimum=28, maximum=31).describe()
    '28 ≤ H ≤ 31'
    """

    symbol: str
    minimum: int
    maximum: int
    modulus: int = 1
    residues: tuple[int, ...] = (0,)
    values: tuple[int, ...] | None = None  # set: exactly these (a finite irregular set)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if self.values is not None:
            return value in self.values
        return self.minimum <= value <= self.maximum and value % self.modulus in self.residues

    def describe(self) -> str:
        """``32 ≤ H ≤ 1024 and H ≡ 0 (mod 32)``, ``H ∈ {28, 30}``, ``H = 28``."""
        s = self.symbol
        if self.values is not None:
            if not self.values:
                return f"no value of {s}"
            if len(self.values) == 1:
                return f"{s} = {self.values[0]}"
            return f"{s} ∈ {{{', '.join(str(v) for v in self.values)}}}"
        if self.minimum == self.maximum:
            return f"{s} = {self.minimum}"
        text = f"{self.minimum} ≤ {s} ≤ {self.maximum}"
        if self.modulus > 1:
            rs = ", ".join(str(r) for r in self.residues)
            text += f" and {s} ≡ {rs} (mod {self.modulus})"
        return text

    @property
    def empty(self) -> bool:
        return self.values == () or (self.values is None and self.minimum > self.maximum)

    @property
    def smallest(self) -> int | None:
        if self.values is not None:
            return self.values[0] if self.values else None
        return None if self.empty else self.minimum

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest legal values (of a non-empty set)."""
        if self.values:
            return self.values[0], self.values[-1]
        return self.minimum, self.maximum

    def members(self) -> Iterator[int]:
        """Every legal value, in order."""
        if self.values is not None:
            yield from self.values
            return
        for x in range(self.minimum, self.maximum + 1):
            if x % self.modulus in self.residues:
                yield x

    def intersect(self, other: LegalSet) -> LegalSet:
        """The values in both (as one normalised set)."""
        if self.values is not None or other.values is not None:
            listed, other_set = (self, other) if self.values is not None else (other, self)
            return replace(
                self, values=tuple(x for x in listed.members() if x in other_set)
            ).normalised()
        modulus = math.lcm(self.modulus, other.modulus)
        if modulus > PERIOD_LIMIT:  # enumerate instead (never met by the shipped specs)
            lo, hi = max(self.minimum, other.minimum), min(self.maximum, other.maximum)
            kept = tuple(x for x in range(lo, hi + 1) if x in self and x in other)
            return LegalSet(self.symbol, lo, hi, values=kept).normalised()
        residues = tuple(
            r
            for first in self.residues
            for r in range(first, modulus, self.modulus)
            if r % other.modulus in other.residues
        )
        lo, hi = max(self.minimum, other.minimum), min(self.maximum, other.maximum)
        return LegalSet(self.symbol, lo, hi, modulus, tuple(sorted(residues))).normalised()

    def normalised(self) -> LegalSet:
        """The same set, written its simplest way: the smallest modulus, bounds that are
        members, a short list for a few values."""
        if self.values is not None:
            values = tuple(sorted(set(self.values)))
            if len(values) > 1 and values[-1] - values[0] + 1 == len(values):
                return LegalSet(self.symbol, values[0], values[-1])
            return replace(self, values=values)
        m, rs = self.modulus, set(self.residues)
        for d in sorted(d for d in range(1, m + 1) if m % d == 0):
            reduced = {r % d for r in rs}
            if len(reduced) * (m // d) == len(rs):
                m, rs = d, reduced
                break
        lo = next((x for x in range(self.minimum, self.minimum + m) if x % m in rs), None)
        hi = next((x for x in range(self.maximum, self.maximum - m, -1) if x % m in rs), None)
        if lo is None or hi is None or lo > hi:
            return LegalSet(self.symbol, self.minimum, self.maximum, values=())
        if (hi - lo) // m < 4 and m > 1:  # a few values: list them
            values = tuple(x for x in range(lo, hi + 1) if x % m in rs)
            return LegalSet(self.symbol, lo, hi, values=values)
        return LegalSet(self.symbol, lo, hi, m, tuple(sorted(rs)))

    def brief(self, lowest: int, highest: int) -> str:
        """:meth:`describe` leaving out a bound that is the domain's (``H ≥ 3``)."""
        if self.values is not None or self.empty or self.minimum == self.maximum:
            return self.describe()
        s = self.symbol
        parts = []
        if self.modulus > 1 and self.minimum < lowest + self.modulus:
            lowest = self.minimum  # the first multiple: no bound of its own
        if self.modulus > 1 and self.maximum > highest - self.modulus:
            highest = self.maximum
        if self.minimum > lowest and self.maximum < highest:
            parts.append(f"{self.minimum} ≤ {s} ≤ {self.maximum}")
        elif self.minimum > lowest:
            parts.append(f"{s} ≥ {self.minimum}")
        elif self.maximum < highest:
            parts.append(f"{s} ≤ {self.maximum}")
        if self.modulus > 1:
            rs = ", ".join(str(r) for r in self.residues)
            parts.append(f"{s} ≡ {rs} (mod {self.modulus})")
        return " and ".join(parts) or f"any {s}"


# ── constraints and the solver ──────────────────────────────────────────────────────────

PERIOD_LIMIT = 1 << 16  # residue classes examined one by one; beyond, sizes are enumerated
ENUMERATE_LIMIT = 1 << 20  # values enumerated for an expression without a period


class TooWide(ValueError):
    """A size range too wide to enumerate where no period applies (``H`` on two axes,
    flattened together, over millions of values)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"{symbol}: more than {ENUMERATE_LIMIT:,} values to try one by one (its sizes "
            "multiply each other here)"
        )
        self.symbol = symbol


@dataclass(frozen=True)
class Constraint:
    """``lhs ≥ rhs`` (``op="ge"``) or ``lhs = rhs`` (``"eq"``), imposed by ``layer``."""

    op: Literal["ge", "eq", "eq_or_1"]  # eq_or_1: equal, or lhs is 1 and broadcasts
    lhs: Expr
    rhs: Expr
    layer: str
    location: Location | None
    text: str  # why, with every producer involved located: "concat needs …"

    def holds(self, env: Mapping[str, int]) -> bool:
        a, b = self.lhs.at(env), self.rhs.at(env)
        if self.op == "ge":
            return a >= b
        return a == b or (self.op == "eq_or_1" and a == 1)

    def symbols(self) -> frozenset[str]:
        return self.lhs.symbols() | self.rhs.symbols()


def _first(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The smallest ``x`` in ``[lo, hi]`` with ``ok(x)``, for a predicate that stays true
    once true (a nondecreasing size against a bound); ``None`` if none."""
    if lo > hi or not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _solve(c: Constraint, sym: str, env: dict[str, int], lo: int, hi: int) -> LegalSet:
    """The values of ``sym`` in ``[lo, hi]`` where ``c`` holds (the others at ``env``)."""

    def diff(x: int) -> int:
        env[sym] = x
        return c.lhs.at(env) - c.rhs.at(env)

    if c.op == "ge":  # every size is nondecreasing in each symbol: a ray
        start = _first(lo, hi, lambda x: diff(x) >= 0)
        return LegalSet(sym, start, hi) if start is not None else LegalSet(sym, lo, hi, values=())
    if c.op == "eq_or_1":  # equal, or a size 1 that broadcasts: the union of the two
        equal = _solve(replace(c, op="eq"), sym, env, lo, hi)
        one = _solve(replace(c, op="eq", rhs=Const(1)), sym, env, lo, hi)
        return _union(equal, one, lo, hi)
    da, db = c.lhs.drift(sym), c.rhs.drift(sym)
    if da is not None and db is not None:
        period = math.lcm(da[0], db[0])
        if period <= PERIOD_LIMIT:
            gain = da[1] * (period // da[0]) - db[1] * (period // db[0])
            return _periodic(sym, diff, lo, hi, period, gain)
    if sym not in c.rhs.symbols():  # a nondecreasing size equal to a constant: an interval
        start = _first(lo, hi, lambda x: diff(x) >= 0)
        end = _first(lo, hi, lambda x: diff(x) > 0)
        last = hi if end is None else end - 1
        if start is None or start > last:
            return LegalSet(sym, lo, hi, values=())
        return LegalSet(sym, start, last)
    if hi - lo > ENUMERATE_LIMIT:
        raise TooWide(sym)
    return LegalSet(sym, lo, hi, values=tuple(x for x in range(lo, hi + 1) if diff(x) == 0))


def _union(a: LegalSet, b: LegalSet, lo: int, hi: int) -> LegalSet:
    """The values in either (listed: the unions met here are a few values)."""
    if a.empty or b.empty:
        return b if a.empty else a
    if hi - lo > ENUMERATE_LIMIT:
        raise TooWide(a.symbol)
    values = tuple(x for x in range(lo, hi + 1) if x in a or x in b)
    return LegalSet(a.symbol, lo, hi, values=values).normalised()


def _periodic(
    sym: str, diff: Callable[[int], int], lo: int, hi: int, period: int, gain: int
) -> LegalSet:
    """Zeros of ``diff`` on ``[lo, hi]`` where ``diff(x + period) = diff(x) + gain``: whole
    residue classes when ``gain`` is 0, else at most one value per class."""
    if gain == 0:
        residues = tuple(
            sorted((lo + r) % period for r in range(min(period, hi - lo + 1)) if diff(lo + r) == 0)
        )
        return LegalSet(sym, lo, hi, period, residues).normalised()
    found = []
    for r in range(min(period, hi - lo + 1)):
        v = diff(lo + r)
        if v % gain == 0 and -v // gain >= 0:
            x = lo + r + (-v // gain) * period
            if x <= hi:
                found.append(x)
    return LegalSet(sym, lo, hi, values=tuple(sorted(found)))


# ── propagation: each layer's sizes as expressions, and what each layer requires ────────

SymShape = tuple[Expr, ...]


@dataclass
class _Walk:
    """The state of one pass over a Plan: every value's symbolic shape and the
    constraints met so far."""

    plan: Plan
    nominal: dict[str, int]
    shapes: dict[tuple[str, int], SymShape] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)

    def producer(self, name: str) -> str:
        """``enc2 (specs/unet_tiny.yaml:21:5)``: a producer named with its location."""
        if any(i.name == name for i in self.plan.all_inputs):
            return f"the input {name}" if name != "input" else "the input"
        loc = self.plan.node(name).location
        return f"{name} ({loc})" if loc else name

    def need(
        self, node: PlanNode, op: Literal["ge", "eq", "eq_or_1"], lhs: Expr, rhs: Expr, text: str
    ) -> None:
        if lhs.symbols() or rhs.symbols():
            if op == "eq" and lhs == rhs:
                return  # the same size whatever the symbols: nothing required
            self.constraints.append(Constraint(op, lhs, rhs, node.name, node.location, text))

    def fixed(self, node: PlanNode, shape: SymShape, axes: Sequence[int], why: str) -> None:
        """Axes the layer's parameters (or its kind) fix at their nominal size."""
        for a in axes:
            e = shape[a]
            if e.symbols():
                self.need(
                    node,
                    "eq",
                    e,
                    Const(e.at(self.nominal)),
                    f"{node.kind} {node.name} {why}: axis {a} ({e.text()}) must stay "
                    f"{e.at(self.nominal)}",
                )

    def positive(self, node: PlanNode, shape: SymShape, what: str) -> SymShape:
        for a, e in enumerate(shape):
            self.need(node, "ge", e, Const(1), f"{node.kind} {node.name}: {what} along axis {a}")
        return shape

    def equal(self, node: PlanNode, shapes: Sequence[SymShape], axes: Sequence[int]) -> None:
        """The inputs' sizes must agree on ``axes`` (a merge): both producers named."""
        first = shapes[0]
        for i, other in enumerate(shapes[1:], start=1):
            for a in axes:
                if first[a] == other[a]:
                    continue
                self.need(
                    node,
                    "eq",
                    first[a],
                    other[a],
                    f"{node.kind} {node.name} needs equal sizes along axis {a}: "
                    f"{self.producer(node.inputs[0])} makes {first[a].text()}, "
                    f"{self.producer(node.inputs[i])} makes {other[a].text()}",
                )


Rule = Callable[[_Walk, PlanNode, list[SymShape]], tuple[SymShape, ...]]


def _same(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    return (ins[0],)


def _per_channel(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    w.fixed(node, ins[0], [0], "has one parameter (or group) per channel")
    return (ins[0],)


def _instancenorm(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    w.fixed(node, ins[0], [0], "has one parameter per channel")
    w.need(
        node,
        "ge",
        product(ins[0][1:]),
        Const(2),
        f"instancenorm {node.name} needs more than one position per channel",
    )
    return (ins[0],)


def _layernorm(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    over = getattr(node.params, "over", "channels")
    w.fixed(node, ins[0], [0 if over == "channels" else len(ins[0]) - 1], "normalises that axis")
    return (ins[0],)


def _conv(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, ConvGeometry)
    x = ins[0]
    w.fixed(node, x, [0], "has weights for a fixed number of input channels")
    mode = getattr(node.params, "padding_mode", "zeros")
    out: list[Expr] = [Const(node.shape[0])]
    for a, (n, k, s, (pl, pr), d) in enumerate(
        zip(x[1:], g.kernel, g.stride, g.pads, g.dilation, strict=True), start=1
    ):
        eff = d * (k - 1) + 1
        if mode in ("reflect", "circular") and max(pl, pr):
            least = max(pl, pr) + (mode == "reflect")
            w.need(
                node,
                "ge",
                n,
                Const(least),
                f"conv {node.name}: {mode} padding "
                f"{max(pl, pr)} needs at least {least} values along axis {a}",
            )
        size = lin(div(n, s, pl + pr - eff), 1, 1)
        w.need(
            node,
            "ge",
            size,
            Const(1),
            f"conv {node.name}: its {eff}-wide kernel must fit the padded input along axis {a}",
        )
        out.append(size)
    return (tuple(out),)


def _conv_transpose(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, ConvTransposeGeometry)
    x = ins[0]
    w.fixed(node, x, [0], "has weights for a fixed number of input channels")
    out: list[Expr] = [Const(node.shape[0])]
    for a, (n, k, s, p, op, d) in enumerate(
        zip(x[1:], g.kernel, g.stride, g.padding, g.output_padding, g.dilation, strict=True),
        start=1,
    ):
        size = lin(n, s, -s - 2 * p + d * (k - 1) + op + 1)
        w.need(
            node,
            "ge",
            size,
            Const(1),
            f"conv_transpose {node.name}: its output must be non-empty along axis {a}",
        )
        out.append(size)
    return (tuple(out),)


def _pool(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, PoolGeometry)
    x = ins[0]
    ceil = bool(getattr(node.params, "ceil_mode", False))
    pool_kind = getattr(node.params, "kind", "max")
    out: list[Expr] = [x[0]]
    for a, (n, k, s, p, d) in enumerate(
        zip(x[1:], g.size, g.stride, g.padding, g.dilation, strict=True), start=1
    ):
        eff = d * (k - 1) + 1
        if len(g.size) == 3 and pool_kind != "max":
            w.need(
                node,
                "ge",
                n,
                Const(k),
                f"pool {node.name}: 3-D {pool_kind} pooling needs "
                f"the {k}-wide window within the unpadded input along axis {a}",
            )
        # torch's ceil mode drops a last window that starts in the right padding:
        # out = min(⌈span/s⌉, ⌈(n+p)/s⌉ − 1) + 1 — both ⌊(n + c)/s⌋ + 1, the smaller c wins
        offset = min(2 * p - eff + s, p) - 1 if ceil else 2 * p - eff
        size = lin(div(n, s, offset), 1, 1)
        w.need(
            node,
            "ge",
            size,
            Const(1),
            f"pool {node.name}: its {eff}-wide window must fit the padded input along axis {a}",
        )
        out.append(size)
    return (tuple(out),)


def _global_pool(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    return ((ins[0][0],),)


def _constant(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    """A layer whose output ignores the varying sizes (adaptive_pool keeps channels)."""
    out: SymShape = tuple(Const(n) for n in node.shape)
    if node.kind == "adaptive_pool":
        out = (ins[0][0], *out[1:])
    return (out,)


def _upsample(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, UpsampleGeometry)
    x = ins[0]
    return ((x[0], *(lin(n, s) for n, s in zip(x[1:], g.scale, strict=True))),)


def _pad(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, PadGeometry)
    x = ins[0]
    crop = node.kind == "crop"
    mode = getattr(node.params, "mode", "zeros")
    out: list[Expr] = [x[0]]
    for a, (n, (lo, hi)) in enumerate(zip(x[1:], g.pads, strict=True), start=1):
        if not crop and mode in ("reflect", "circular") and max(lo, hi):
            least = max(lo, hi) + (mode == "reflect")
            w.need(
                node,
                "ge",
                n,
                Const(least),
                f"pad {node.name}: {mode} padding "
                f"{max(lo, hi)} needs at least {least} values along axis {a}",
            )
        size = lin(n, 1, -(lo + hi) if crop else lo + hi)
        if crop:
            w.need(
                node,
                "ge",
                size,
                Const(1),
                f"crop {node.name}: it must leave something along axis {a}",
            )
        out.append(size)
    return (tuple(out),)


def _pixel_shuffle(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    x = ins[0]
    r = int(getattr(node.params, "factor", 0) or getattr(node.params, "scale", 0))
    w.fixed(node, x, [0], "rearranges a fixed number of channels")
    if node.kind == "pixel_shuffle":
        return ((Const(node.shape[0]), *(lin(n, r) for n in x[1:])),)
    for a, n in enumerate(x[1:], start=1):
        w.need(
            node,
            "eq",
            lin(div(n, r), r),
            n,
            f"pixel_unshuffle {node.name} needs sizes divisible by {r} along axis {a}",
        )
    return ((Const(node.shape[0]), *(div(n, r) for n in x[1:])),)


def _broadcast_merge(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    """add/multiply, per axis. Where some input has a fixed size other than 1, that is the
    output's size, and each varying size must equal it or be 1 (and broadcast): exact.
    Where every size varies, they must be equal (that one of them might shrink to 1 and
    broadcast is not counted: the legal set is then a subset; no shipped spec meets it)."""
    out: list[Expr] = []
    for a in range(len(ins[0])):
        sizes = [x[a] for x in ins]
        pairs = [i for i, e in enumerate(sizes) if e.symbols() or e != Const(1)]
        fixed = [i for i in pairs if not sizes[i].symbols()]
        if not pairs:
            out.append(Const(1))
            continue
        first = fixed[0] if fixed else pairs[0]
        out.append(sizes[first])
        for i in pairs:
            if i == first or sizes[i] == sizes[first]:
                continue
            w.need(
                node,
                "eq_or_1" if fixed else "eq",
                sizes[i],
                sizes[first],
                f"{node.kind} {node.name} needs equal sizes along axis {a}"
                + (" (or 1, which broadcasts)" if fixed else "")
                + f": {w.producer(node.inputs[first])} makes {sizes[first].text()}, "
                f"{w.producer(node.inputs[i])} makes {sizes[i].text()}",
            )
    return (tuple(out),)


def _concat(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, AxesGeometry)
    axis = g.axes[0]
    w.equal(node, ins, [a for a in range(len(ins[0])) if a != axis])
    joined = total([x[axis] for x in ins])
    return ((*ins[0][:axis], joined, *ins[0][axis + 1 :]),)


def _flatten(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, FlattenGeometry)
    x = ins[0]
    return ((*x[: g.start], product(x[g.start : g.end + 1]), *x[g.end + 1 :]),)


def _dense(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    x = ins[0]
    w.fixed(node, x, [len(x) - 1], "has weights for a fixed number of input features")
    return ((*x[:-1], Const(node.shape[-1])),)


def _to_tokens(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    x = ins[0]
    return ((product(x[1:]), x[0]),)


def _from_tokens(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    x = ins[0]
    w.fixed(node, x, [0], "makes a grid of a fixed size from the tokens")
    return ((x[1], *(Const(n) for n in node.shape[1:])),)


def _reshape(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    x = ins[0]
    n = product(x)
    if n.symbols():
        w.need(
            node,
            "eq",
            n,
            Const(n.at(w.nominal)),
            f"reshape {node.name} makes a fixed shape: its input must keep "
            f"{n.at(w.nominal)} elements ({n.text()})",
        )
    return (tuple(Const(d) for d in node.shape),)


def _permute(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, AxesGeometry)
    return (tuple(ins[0][a] for a in g.axes),)


def _slice(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, SliceGeometry)
    x = list(ins[0])
    n = x[g.axis]
    if node.kind == "select":
        w.need(
            node,
            "ge",
            n,
            Const(g.start + 1),
            f"select {node.name} reads position {g.start} of axis {g.axis}",
        )
        return (tuple(x[: g.axis] + x[g.axis + 1 :]),)
    # len(range(start, min(stop, n), step)) where it is positive
    clamped = Min(n, g.stop) if n.symbols() else Const(min(n.at(w.nominal), g.stop))
    size = div(lin(clamped, 1, -g.start), g.step, g.step - 1)
    w.need(
        node,
        "ge",
        size,
        Const(1),
        f"slice {node.name} [{g.start}:{g.stop}:{g.step}] must keep something of axis {g.axis}",
    )
    x[g.axis] = size
    return (tuple(x),)


def _mean(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, AxesGeometry)
    x = ins[0]
    if len(node.shape) == len(x):  # keepdims
        return (tuple(Const(1) if a in g.axes else e for a, e in enumerate(x)),)
    return (tuple(e for a, e in enumerate(x) if a not in g.axes),)


def _split(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    g = node.geometry
    assert isinstance(g, SplitGeometry)
    x = ins[0]
    w.fixed(node, x, [g.axis], f"cuts pieces of fixed sizes {list(g.sizes)}")
    return tuple((*x[: g.axis], Const(s), *x[g.axis + 1 :]) for s in g.sizes)


def _sequence(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    """attention, encoder layers, LSTM/GRU: any number of tokens, fixed features."""
    for x in ins:
        w.fixed(node, x, [len(x) - 1], "has weights for a fixed number of features")
    if len(node.shape) == 1:  # an LSTM's last state
        return ((Const(node.shape[0]),),)
    return ((ins[0][0], Const(node.shape[-1])),)


def _embedding(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    return ((*ins[0], Const(node.shape[-1])),)


def _positional(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    """Adds a learned tensor of the nominal shape: each size equal to it, or 1 (torch then
    broadcasts the input over the learned tensor, whose shape the output takes)."""
    for a, e in enumerate(ins[0]):
        if e.symbols():
            n = e.at(w.nominal)
            w.need(
                node, "eq_or_1", e, Const(n),
                f"positional_embedding {node.name} adds a learned {format_shape(node.shape)} "
                f"tensor: axis {a} ({e.text()}) must stay {n} (or be 1 and broadcast)",
            )  # fmt: skip
    return (tuple(Const(n) for n in node.shape),)


def _held(w: _Walk, node: PlanNode, ins: list[SymShape]) -> tuple[SymShape, ...]:
    """A kind not analysed here: every varying size stays nominal (a subset of the legal
    sizes, never a wrong one). Every kind of the registry has a rule today."""
    for x in ins:
        w.fixed(node, x, range(len(x)), "is not analysed symbolically (sizes held nominal)")
    return tuple(tuple(Const(n) for n in s) for s in node.shapes)


_SAME = [
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "hardswish",
    "relu6",
    "hardsigmoid",
    "mish",
    "softplus",
    "identity",
    "softmax",
    "log_softmax",
    "drop_path",
    "dropout",
    "local_response_norm",
]
_PER_CHANNEL = ["batchnorm", "prelu", "layer_scale", "groupnorm", "channel_shuffle"]

RULES: dict[str, Rule] = {
    **dict.fromkeys(_SAME, _same),
    **dict.fromkeys(_PER_CHANNEL, _per_channel),
    "instancenorm": _instancenorm,
    "layernorm": _layernorm,
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "pool": _pool,
    "global_pool": _global_pool,
    "adaptive_pool": _constant,
    "parameter": _constant,
    "upsample": _upsample,
    "pad": _pad,
    "crop": _pad,
    "pixel_shuffle": _pixel_shuffle,
    "pixel_unshuffle": _pixel_shuffle,
    "add": _broadcast_merge,
    "multiply": _broadcast_merge,
    "concat": _concat,
    "flatten": _flatten,
    "dense": _dense,
    "to_tokens": _to_tokens,
    "from_tokens": _from_tokens,
    "reshape": _reshape,
    "permute": _permute,
    "transpose": _permute,
    "select": _slice,
    "slice": _slice,
    "mean": _mean,
    "split": _split,
    "chunk": _split,
    "attention": _sequence,
    "transformer_encoder_layer": _sequence,
    "lstm": _sequence,
    "gru": _sequence,
    "embedding": _embedding,
    "positional_embedding": _positional,
}


# ── the engine ──────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Reason:
    """A constraint that removes values of a symbol, with what it alone allows."""

    constraint: Constraint
    allows: LegalSet

    def line(self, lowest: int, highest: int) -> str:
        """``specs/x.yaml:12:5: concat up needs …: H ≡ 0 (mod 2)``."""
        where = f"{self.constraint.location}: " if self.constraint.location else ""
        return f"{where}{self.constraint.text} → {self.allows.brief(lowest, highest)}"


@dataclass(frozen=True)
class Legality:
    """What :func:`legal_sets` found: each symbol's legal set (the other symbols at their
    nominal values), the constraints that shape it, every layer's sizes as expressions."""

    symbols: tuple[Symbol, ...]
    sets: dict[str, LegalSet]
    reasons: dict[str, tuple[Reason, ...]]
    shapes: dict[str, tuple[SymShape, ...]]  # layer → its outputs' shapes
    inputs: dict[str, SymShape]
    constraints: tuple[Constraint, ...]

    @property
    def nominal(self) -> dict[str, int]:
        return {s.name: s.nominal for s in self.symbols}

    def admits(self, values: Mapping[str, int]) -> bool:
        """Whether the module built at the nominal sizes runs at ``values`` (jointly: every
        symbol may differ from its nominal value), within each symbol's bounds."""
        env = self.nominal | dict(values)
        if any(not s.minimum <= env[s.name] <= s.maximum for s in self.symbols):
            return False
        return all(c.holds(env) for c in self.constraints)

    def shape_at(self, layer: str, values: Mapping[str, int], port: int = 0) -> Shape:
        env = self.nominal | dict(values)
        return tuple(e.at(env) for e in self.shapes[layer][port])

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": {
                s.name: {
                    "input": s.input,
                    "axis": s.axis,
                    "nominal": s.nominal,
                    "minimum": s.minimum,
                    "maximum": s.maximum,
                }
                for s in self.symbols
            },
            "legal": {
                name: {
                    "text": legal.describe(),
                    "smallest": legal.smallest,
                    "minimum": legal.minimum,
                    "maximum": legal.maximum,
                    "modulus": legal.modulus,
                    "residues": list(legal.residues),
                    "values": None if legal.values is None else list(legal.values),
                    "reasons": [
                        {
                            "layer": r.constraint.layer,
                            "location": str(r.constraint.location)
                            if r.constraint.location
                            else None,
                            "text": r.constraint.text,
                            "allows": r.allows.describe(),
                        }
                        for r in self.reasons[name]
                    ],
                }
                for name, legal in self.sets.items()
            },
            "layers": {
                name: [[e.text() for e in shape] for shape in shapes]
                for name, shapes in self.shapes.items()
            },
        }


def legal_sets(plan: Plan, symbols: Sequence[Symbol]) -> Legality:
    """Each symbol's exact legal set for the module built once at the nominal sizes (the
    Plan's): the values in ``[minimum, maximum]`` where every layer's sizes are at least 1,
    every window fits, merged sizes agree and no parameter's shape changes — the other
    symbols held at their nominal values (:meth:`Legality.admits` checks joint values)."""
    unique = _unique(plan, symbols)
    w = _Walk(plan, {s.name: s.nominal for s in unique})
    inputs: dict[str, SymShape] = {}
    for inp in plan.all_inputs:
        shape: list[Expr] = [Const(n) for n in inp.shape]
        for s in unique:
            for t in symbols:
                if t.name == s.name and t.input == inp.name:
                    shape[t.axis] = Var(s.name)
        inputs[inp.name] = w.shapes[inp.name, 0] = tuple(shape)
    layers: dict[str, tuple[SymShape, ...]] = {}
    for node in plan.nodes:
        ins = [w.shapes[x, node.port(i)] for i, x in enumerate(node.inputs)]
        outs: tuple[SymShape, ...]
        if all(not e.symbols() for x in ins for e in x):
            outs = tuple(tuple(Const(n) for n in s) for s in node.shapes)
        else:
            outs = RULES.get(node.kind, _held)(w, node, ins)
            got = tuple(tuple(e.at(w.nominal) for e in s) for s in outs)
            assert got == node.shapes, f"{node.name}: symbolic {got} ≠ planned {node.shapes}"
        layers[node.name] = outs
        for port, out in enumerate(outs):
            w.shapes[node.name, port] = out
    sets: dict[str, LegalSet] = {}
    reasons: dict[str, tuple[Reason, ...]] = {}
    for s in unique:
        sets[s.name], reasons[s.name] = _legal_set(s, w.constraints, w.nominal)
    return Legality(unique, sets, reasons, layers, inputs, tuple(w.constraints))


def _unique(plan: Plan, symbols: Sequence[Symbol]) -> tuple[Symbol, ...]:
    """One symbol per name (``[3, H, H]`` names H twice), checked against the Plan."""
    seen: dict[str, Symbol] = {}
    for s in symbols:
        shape = plan.shape_of(s.input)
        if not 0 <= s.axis < len(shape) or shape[s.axis] != s.nominal:
            raise ValueError(f"{s.name}: axis {s.axis} of {s.input} is not {s.nominal}")
        if not s.minimum <= s.maximum:
            raise ValueError(f"{s.name}: minimum {s.minimum} > maximum {s.maximum}")
        first = seen.setdefault(s.name, s)
        if first.nominal != s.nominal:
            raise ValueError(
                f"{s.name} stands for two sizes, {first.nominal} and {s.nominal}: a symbol "
                "names one size"
            )
    return tuple(seen.values())


def _legal_set(
    s: Symbol, constraints: Sequence[Constraint], nominal: dict[str, int]
) -> tuple[LegalSet, tuple[Reason, ...]]:
    """Intersect, in layer order, what each constraint on ``s`` allows; keep the reasons
    that remove values no other kept reason removes."""
    env = dict(nominal)
    legal = LegalSet(s.name, s.minimum, s.maximum)
    found: list[Reason] = []
    for c in constraints:
        if s.name not in c.symbols() or legal.empty:
            continue
        lo, hi = legal.bounds()
        allowed = _solve(c, s.name, env, lo, hi)
        narrowed = legal.intersect(allowed)
        if narrowed != legal:
            if c.op == "eq" and c.lhs.drift(s.name) and c.rhs.drift(s.name):
                allowed = _solve(c, s.name, env, s.minimum, s.maximum)  # exact everywhere
            found.append(Reason(c, allowed))
            legal = narrowed
    kept = list(found)
    for r in found:
        others = [o for o in kept if o is not r]
        rest = LegalSet(s.name, s.minimum, s.maximum)
        for o in others:
            rest = rest.intersect(o.allows)
        if rest.intersect(r.allows) == rest and others:
            kept.remove(r)
    return legal, tuple(kept)


# ── where symbols come from ─────────────────────────────────────────────────────────────

DEFAULT_MINIMUM = SIZE_MINIMUM
DEFAULT_MAXIMUM = SIZE_MAXIMUM


def spec_symbols(data: Any, plan: Plan) -> list[Symbol]:
    """The symbolic axes a spec declares: an entry of ``input:`` (or of an input under
    ``inputs:``) that is the bare name of a ``vars:`` entry, e.g. ``input: [3, H, W]`` with
    ``vars: {H: {value: 224, min: 32, max: 1024}, W: 224}``. The variable's value is the
    nominal size (the Plan's), its declared ``min``/``max`` the bounds (else 1..65536)."""
    if not isinstance(data, dict) or not isinstance(data.get("vars"), dict):
        return []
    variables = data["vars"]
    declared: list[tuple[str, Any]] = []
    if "input" in data:
        declared.append(("input", data["input"]))
    if isinstance(data.get("inputs"), dict):
        declared += list(data["inputs"].items())
    names = {inp.name for inp in plan.all_inputs}
    out: list[Symbol] = []
    for name, raw in declared:
        shape = raw.get("shape") if isinstance(raw, dict) else raw
        if name not in names or not isinstance(shape, list):
            continue
        for axis, entry in enumerate(shape):
            if isinstance(entry, str) and entry in variables:
                rule = variables[entry] if isinstance(variables[entry], dict) else {}
                nominal = plan.shape_of(name)[axis]
                low = _bound(rule.get("min"), DEFAULT_MINIMUM, math.ceil)
                high = _bound(rule.get("max"), max(DEFAULT_MAXIMUM, nominal, low), math.floor)
                out.append(Symbol(entry, name, axis, nominal, low, max(high, low)))
    return out


def _bound(value: Any, default: int, rounding: Callable[[float], int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return default
    return max(1, rounding(value)) if math.isfinite(value) else default


def input_symbols(plan: Plan, dims: Sequence[int | str]) -> list[Symbol]:
    """``--input 3xHxW``: a symbol for each letter, nominal the Plan's size on that axis."""
    inp = plan.all_inputs[0]
    return [
        Symbol(d, inp.name, a, inp.shape[a], DEFAULT_MINIMUM, DEFAULT_MAXIMUM)
        for a, d in enumerate(dims)
        if isinstance(d, str)
    ]


def bounded(
    symbols: Sequence[Symbol], bounds: Mapping[str, tuple[int | None, int | None]]
) -> list[Symbol]:
    """``symbols`` with the bounds of ``--size H=32..1024`` where given (``None``: the
    symbol's own bound, as declared or the default)."""
    out = []
    for s in symbols:
        lo, hi = bounds.get(s.name, (None, None))
        out.append(
            replace(
                s, minimum=s.minimum if lo is None else lo, maximum=s.maximum if hi is None else hi
            )
        )
    return out
