"""Symbolic input sizes: which values of an input axis a network accepts.

Torch-free. A :class:`LegalSet` is the exact set of legal values of one symbol (``H``)
in a readable form: an arithmetic pattern ``minimum ≤ H ≤ maximum and H mod modulus ∈
residues``, or an explicit finite list of ``values``.
"""

from __future__ import annotations

from dataclasses import dataclass


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
