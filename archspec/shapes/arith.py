"""Shape arithmetic: small pure functions over ints, the formula in each docstring.

No torch, numpy or pydantic here. Every formula matches PyTorch's documented
output-size rule for the corresponding layer (the property tests compare them
against torch itself). Results may be zero or negative: callers decide what an
impossible size means and say so to the user.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``dilation * (kernel - 1) + 1``.

    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def conv_out(size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    """Convolution output length: ``(size + pad - dilation*(kernel-1) - 1) // stride + 1``.

    ``pad`` is the *total* padding (left + right).

    >>> conv_out(28, 5, 1, 4), conv_out(32, 5), conv_out(224, 11, 4, 4)
    (28, 28, 55)
    """
    return (size + pad - effective_kernel(kernel, dilation)) // stride + 1


def same_pads(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Left/right zero padding so that the output has ``ceil(size / stride)`` elements.

    ``total = max((ceil(size/stride) - 1)*stride + dilation*(kernel-1) + 1 - size, 0)``,
    ``left = total // 2``, the odd one goes right — TensorFlow/Keras' ``same``,
    which for stride 1 is also PyTorch's ``padding='same'``.

    >>> same_pads(28, 5), same_pads(28, 4), same_pads(7, 3, 2)
    ((2, 2), (1, 2), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def pool_out(
    size: int, kernel: int, stride: int, pad: int = 0, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Pooling output length as PyTorch computes it.

    ``span = size + 2*pad - dilation*(kernel-1) - 1``; ``out = span // stride + 1``
    (``ceil(span / stride) + 1`` with ``ceil_mode``), and in ceil mode the last
    window must start inside the input or the left padding:
    ``if (out - 1) * stride >= size + pad: out -= 1``. ``span`` may be negative:
    in ceil mode torch still runs one window that overhangs a too-small input.

    >>> pool_out(28, 2, 2), pool_out(7, 2, 2), pool_out(7, 2, 2, ceil_mode=True)
    (14, 3, 4)
    >>> pool_out(1, 2, 2), pool_out(1, 2, 2, ceil_mode=True)
    (0, 1)
    """
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def transpose_out(
    size: int, kernel: int, stride: int = 1, pad: int = 0, output_pad: int = 0, dilation: int = 1
) -> int:
    """Transposed-convolution output length:
    ``(size - 1)*stride - 2*pad + dilation*(kernel-1) + output_pad + 1``.

    >>> transpose_out(7, 2, 2), transpose_out(7, 3, 2, 1, 1)
    (14, 14)
    """
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1


def adaptive_window(size: int, out: int) -> int:
    """Largest window an adaptive pool uses: ``ceil((i+1)*size/out) - floor(i*size/out)``
    maximised over outputs ``i``, in O(1).

    With ``a = i*size/out``, the window is ``ceil(frac(a) + size/out)``; ``frac(a)`` takes
    every multiple of ``1/o`` where ``o = out / gcd(size, out)``, so its largest value is
    ``(o-1)/o`` and the largest window ``ceil((o-1)/o + size/out)``.

    >>> adaptive_window(6, 6), adaptive_window(7, 3), adaptive_window(5, 7), adaptive_window(10, 4)
    (1, 3, 2, 3)
    """
    o = out // math.gcd(size, out)
    numerator = (o - 1) * out + size * o  # (o-1)/o + size/out over the common denominator o*out
    return -(-numerator // (o * out))


Exact = int | Fraction  # receptive-field arithmetic stays exact; ints where they suffice


@dataclass(frozen=True)
class Field:
    """Receptive field along one axis, in input pixels.

    ``size``: how many input pixels one output element sees; ``jump``: the
    distance in input pixels between neighbouring outputs; ``start``: the centre of
    the first output's field, in input pixel coordinates (0 is the centre of the
    first input pixel; a negative start means the field reaches into the padding).
    """

    size: Exact
    jump: Exact
    start: Exact

    def through(self, kernel: int, stride: int, pad: int) -> Field:
        """After a window of ``kernel`` (already dilated) with ``stride``, left ``pad``:

        ``size' = size + (kernel-1)*jump``, ``jump' = jump*stride``,
        ``start' = start + ((kernel-1)/2 - pad)*jump``.

        >>> input_field().through(5, 1, 2), input_field().through(2, 2, 0).start
        (Field(size=5, jump=1, start=0), Fraction(1, 2))
        """
        return Field(
            size=self.size + (kernel - 1) * self.jump,
            jump=self.jump * stride,
            start=self.start + (_ratio(kernel - 1, 2) - pad) * self.jump,
        )

    def upsampled(self, factor: int, kernel: int = 1, pad: int = 0) -> Field:
        """After an upsampling by ``factor`` (a transposed conv: kernel, padding):
        outputs are ``jump/factor`` apart and each sees ``ceil(kernel/factor)`` inputs.
        """
        seen = -(-kernel // factor)
        return Field(
            size=self.size + (seen - 1) * self.jump,
            jump=self.jump * _ratio(1, factor),
            start=self.start - _ratio(pad, factor) * self.jump,
        )


def input_field() -> Field:
    """The receptive field of an input pixel: itself."""
    return Field(1, 1, 0)


def _ratio(numerator: int, denominator: int) -> Exact:
    """``numerator / denominator`` exactly: an int when it divides (fast, the common case),
    else a Fraction (a half-pixel start, a sub-pixel jump after upsampling)."""
    if numerator % denominator == 0:
        return numerator // denominator
    return Fraction(numerator, denominator)
