"""Shape arithmetic and whole-spec shape inference: properties, receptive fields, doctests."""

from __future__ import annotations

import doctest
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import archspec
from archspec.errors import SpecError
from archspec.shapes import arith
from archspec.shapes.arith import (
    conv_out,
    effective_kernel,
    input_field,
    pool_out,
    same_pads,
    transpose_out,
)

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"

sizes = st.integers(min_value=1, max_value=64)
kernels = st.integers(min_value=1, max_value=9)
strides = st.integers(min_value=1, max_value=4)
dilations = st.integers(min_value=1, max_value=3)
pads = st.integers(min_value=0, max_value=4)

FAST = settings(max_examples=150, deadline=None)
WHOLE = settings(max_examples=60, deadline=None)  # each example validates a whole spec


def accepts(text: str) -> bool:
    try:
        archspec.loads(text)
    except SpecError:
        return False
    return True


# ---------------------------------------------------------------- arith.py


def test_arith_doctests_pass() -> None:
    result = doctest.testmod(arith, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5  # every public function shows an example
    assert result.failed == 0


@FAST
@given(sizes, kernels, dilations)
def test_same_with_stride_1_keeps_the_size(size: int, kernel: int, dilation: int) -> None:
    left, right = same_pads(size, kernel, 1, dilation)
    assert conv_out(size, kernel, 1, left + right, dilation) == size
    assert left + right == effective_kernel(kernel, dilation) - 1  # PyTorch's padding='same'


@FAST
@given(sizes, kernels, strides, dilations)
def test_same_gives_ceil_of_size_over_stride(
    size: int, kernel: int, stride: int, dilation: int
) -> None:
    left, right = same_pads(size, kernel, stride, dilation)
    assert 0 <= left <= right <= left + 1  # the odd pixel goes right, as in Keras/TensorFlow
    assert conv_out(size, kernel, stride, left + right, dilation) == -(-size // stride)


@FAST
@given(sizes, kernels, strides, pads, dilations)
def test_conv_out_is_the_number_of_window_positions(
    size: int, kernel: int, stride: int, pad: int, dilation: int
) -> None:
    span = effective_kernel(kernel, dilation)
    starts = range(0, size + pad - span + 1, stride)  # every window that fits the padded input
    assert max(conv_out(size, kernel, stride, pad, dilation), 0) == len(starts)


@FAST
@given(sizes, kernels, strides, pads, dilations, st.booleans())
def test_pool_out_counts_windows_like_pytorch(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool
) -> None:
    span = effective_kernel(kernel, dilation)
    assume(2 * pad <= span)
    padded = size + 2 * pad
    if ceil_mode:  # partial windows count, if they start inside the input or the left padding
        starts = [s for s in range(0, padded - span + stride, stride) if s < size + pad]
    else:
        starts = list(range(0, padded - span + 1, stride))
    assert max(pool_out(size, kernel, stride, pad, dilation, ceil_mode), 0) == len(starts)


@FAST
@given(sizes, kernels, strides, pads, dilations)
def test_transpose_undoes_the_conv_size(
    size: int, kernel: int, stride: int, pad: int, dilation: int
) -> None:
    out = conv_out(size, kernel, stride, 2 * pad, dilation)
    assume(out >= 1)
    # a transposed conv with the same settings maps `out` back to `size` minus what the
    # stride dropped; output_padding restores it
    extra = (size + 2 * pad - effective_kernel(kernel, dilation)) % stride
    assert transpose_out(out, kernel, stride, pad, extra, dilation) == size


def test_field_through_a_window() -> None:
    field = input_field().through(5, 1, 2).through(2, 2, 0)
    assert (field.size, field.jump) == (Fraction(6), Fraction(2))
    assert field.start == Fraction(1, 2)  # the first 2×2 window is centred between pixels 0 and 1


# ---------------------------------------------------------------- whole specs


@WHOLE
@given(sizes, kernels, strides, pads, dilations, st.sampled_from([1, 2]))
def test_a_conv_is_accepted_exactly_when_it_has_outputs(
    size: int, kernel: int, stride: int, pad: int, dilation: int, rank: int
) -> None:
    spatial = ", ".join([str(size)] * rank)
    text = (
        f"input: [2, {spatial}]\nlayers:\n  - conv: {{depth: 3, kernel: {kernel}, "
        f"stride: {stride}, padding: {pad}, dilation: {dilation}}}\n"
    )
    out = conv_out(size, kernel, stride, 2 * pad, dilation)
    assert accepts(text) == (out >= 1)
    if out >= 1:
        plan = archspec.loads(text).plan()
        assert plan.output_shape == (3, *[out] * rank)
        assert plan.total_params == 3 * 2 * kernel**rank + 3


@WHOLE
@given(sizes, kernels, strides, pads, dilations, st.booleans(), st.sampled_from(["max", "avg"]))
def test_a_pool_is_accepted_exactly_when_it_has_outputs(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool, kind: str
) -> None:
    dilation = dilation if kind == "max" else 1
    assume(2 * pad <= kernel)  # torch: padding at most half the window, before dilation
    text = (
        f"input: [2, {size}, {size}]\nlayers:\n  - pool: {{kind: {kind}, size: {kernel}, "
        f"stride: {stride}, padding: {pad}, dilation: {dilation}, "
        f"ceil_mode: {str(ceil_mode).lower()}}}\n"
    )
    out = pool_out(size, kernel, stride, pad, dilation, ceil_mode)
    assert accepts(text) == (out >= 1)
    if out >= 1:
        assert archspec.loads(text).plan().output_shape == (2, out, out)


@WHOLE
@given(sizes, kernels, dilations)
def test_same_with_stride_1_keeps_the_size_in_a_spec(size: int, kernel: int, dilation: int) -> None:
    text = (
        f"input: [1, {size}, {size + 1}]\nlayers:\n  - conv: {{depth: 2, kernel: {kernel}, "
        f"dilation: {dilation}, padding: same}}\n"
    )
    assert archspec.loads(text).plan().output_shape == (2, size, size + 1)


# A chain of sliding windows: (yaml, kernel span, stride); activations are (yaml, 1, 1).
conv_layers = st.builds(
    lambda k, s, d, same: (
        f"conv: {{depth: 2, kernel: {k}, stride: {s}, dilation: {d}"
        f"{', padding: same' if same else ''}}}",
        effective_kernel(k, d),
        s,
    ),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(1, 2),
    st.booleans(),
)
pool_layers = st.builds(
    lambda kind, k, s: (f"pool: {{kind: {kind}, size: {k}, stride: {s}}}", k, s),
    st.sampled_from(["max", "avg"]),
    st.integers(1, 3),
    st.integers(1, 3),
)
activations = st.sampled_from([("relu", 1, 1), ("tanh", 1, 1), ("batchnorm", 1, 1)])
chains = st.lists(st.one_of(conv_layers, pool_layers, activations), min_size=1, max_size=8)


@WHOLE
@given(chains, st.sampled_from([1, 2]))
def test_receptive_field_grows_along_any_chain(
    chain: list[tuple[str, int, int]], rank: int
) -> None:
    spatial = ", ".join(["200"] * rank)
    text = f"input: [2, {spatial}]\nlayers:\n" + "".join(f"  - {yaml}\n" for yaml, _, _ in chain)
    try:
        plan = archspec.loads(text).plan()
    except SpecError:
        assume(False)
        return
    size, jump = 1, 1
    previous = (1, 1)
    for node, (_, span, stride) in zip(plan.nodes, chain, strict=True):
        size += (span - 1) * jump  # independent of arith.Field: r += (k - 1)·j, j *= s
        jump *= stride
        assert node.field is not None
        for axis in node.field:
            assert axis.size == size and axis.jump == jump
            assert axis.size >= previous[0] and axis.jump >= previous[1]  # monotone
        previous = (size, jump)


def test_mnist_receptive_fields() -> None:
    plan = archspec.load(SPECS_DIR / "mnist_cnn.yaml").plan()
    fields = [(node.name, node.field) for node in plan.nodes if node.field is not None][:6]
    assert [name for name, _ in fields] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    sizes = [[int(axis.size) for axis in field] for _, field in fields]
    jumps = [[int(axis.jump) for axis in field] for _, field in fields]
    assert sizes == [[5, 5], [5, 5], [6, 6], [14, 14], [14, 14], [16, 16]]
    assert jumps == [[1, 1], [1, 1], [2, 2], [2, 2], [2, 2], [4, 4]]
    assert plan.node("dense1").field is None  # a dense unit sees the whole image


def test_global_pool_makes_the_field_global() -> None:
    plan = archspec.load(SPECS_DIR / "timeseries_cnn.yaml").plan()
    assert plan.node("conv3").field is not None
    assert plan.node("global_pool1").field is None


@pytest.mark.parametrize(
    ("spec", "params"),
    [("mnist_cnn", 3_274_634), ("lenet5", 61_706), ("resnet18", 11_689_512)],
)
def test_published_parameter_counts(spec: str, params: int) -> None:
    assert archspec.load(SPECS_DIR / f"{spec}.yaml").plan().total_params == params
