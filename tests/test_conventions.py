"""Counting conventions: archspec's static counts equal what torchinfo, fvcore, ptflops
(both backends) and thop measure on the compiled network — exactly, network by network and
kind by kind — and every layer kind has a rule in every table.

The tools are the oracle (they run here, on CPU, from the ``conventions`` extra); a tool
that is not installed skips its cases.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from strategies import valid_nets

import archspec
from archspec.shapes import counting, kinds
from archspec.shapes.plan import Plan, numel

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TOOLS = ("torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop")

# The reference networks at their own input size; the ImageNet ones at a smaller one (the
# counting rules do not depend on the size, and 224×224 VGG or ViT-B takes a while on CPU).
SMALL = (3, 32, 32)
NETWORKS: dict[str, tuple[int, ...] | None] = {
    "lenet5": None,
    "mnist_cnn": None,
    "cifar_resnet": None,
    "resnet18": (3, 64, 64),
    "alexnet": (3, 96, 96),
    "vgg16": SMALL,
    "unet_tiny": None,
    "kinds_tour": None,
    "timeseries_cnn": None,
    "mobilenet_v2": SMALL,
    "mobilenet_v3_small": SMALL,
    "shufflenet_v2_x1_0": SMALL,
    "efficientnet_b0": SMALL,
    "regnet_y_400mf": SMALL,
    "convnext_tiny": SMALL,
    "vit_b_16": SMALL,
    "two_tower": None,
    "tcn": None,
    "gru_classifier": None,
    "lstm_forecaster": None,
    "transformer_classifier": None,
    "text_classifier": None,
}

# One layer of each kind and variant, in 1-D, 2-D and 3-D where the kind allows.
LAYERS = [
    "conv: {depth: 4, kernel: 3, padding: 1}",
    "conv: {depth: 4, kernel: 3, groups: 2, bias: false}",
    "conv: {depth: 4, kernel: 4, padding: same}",  # asymmetric padding
    "conv: {depth: 4, kernel: 3, stride: 2, padding: same}",
    "conv: {depth: 4, kernel: 3, dilation: 2, padding: causal}",  # 1-D only: left padding
    "conv: {depth: 4, kernel: 1, padding: causal}",  # no padding at all: plain nn.Conv1d
    "conv_transpose: {depth: 4, kernel: 3, stride: 2}",
    "conv_transpose: {depth: 6, kernel: 2, stride: 2, groups: 2, bias: false}",
    "batchnorm",
    "batchnorm: {affine: false}",
    "relu",
    "leaky_relu: 0.1",
    "elu",
    "gelu",
    "gelu: tanh",
    "silu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "dropout",
    "pool: {kind: max, size: 3, stride: 2}",
    "pool: {kind: avg, size: 2, padding: 1}",
    "pool: {kind: lp, norm: 2, size: 2}",
    "pool: {kind: lp, norm: 1, size: 3, ceil_mode: true}",
    "upsample: 2",
    "upsample: {scale: 2, mode: linear}",
    "adaptive_pool: {kind: avg, size: 3}",
    "adaptive_pool: {kind: max, size: 3}",
    "global_pool: avg",
    "global_pool: max",
    "hardswish",
    "relu6",
    "hardsigmoid",
    "mish",
    "softplus",
    "prelu",
    "prelu: {per_channel: false}",
    "identity",
    "drop_path: 0.1",
    "layer_scale: 0.1",
    "groupnorm: 3",
    "groupnorm: {groups: 2, affine: false}",
    "instancenorm",
    "instancenorm: {affine: true}",
    "layernorm",
    "layernorm: {affine: false}",
    "layernorm: last",
    "layernorm: {over: last, affine: false}",
    "local_response_norm: 5",
    "local_response_norm: {size: 2, alpha: 0.001}",
    "channel_shuffle: 3",
    "pad: {size: 1, mode: reflect}",
    "pad: 2",
    "crop: {before: 2, after: 0}",
    "slice: {axis: 0, start: 1, stop: 5}",
    "select: {axis: 1, index: 2}",
    "mean: 0",
    "transpose",
    "to_tokens",
    "positional_embedding",
]
INPUTS = {1: "[6, 9]", 2: "[6, 7, 7]", 3: "[6, 5, 6, 7]"}
HEADS = [
    "[flatten, {dense: 5}]",
    "[flatten, {dense: {units: 5, bias: false}}]",
    "[{conv: {depth: 6, kernel: 1}, name: a}, {add: null, from: [input, a]}]",
    "[{relu: null, name: a}, {multiply: null, from: [input, a, a], name: m},"
    " {concat: null, from: [m, a, input]}]",
    "[{split: {sizes: [2, 4]}, outputs: [a, b]}, {concat: null, from: [b, a]}]",
    "[{chunk: 3, outputs: [a, b, c]}, {add: null, from: [a, b, c]}]",
    "[{permute: {order: [2, 0, 1]}}, {reshape: [14, 21]}]",
    "[{mean: [1, 2]}, {parameter: {shape: [4, 3]}}]",
    "[{parameter: {shape: [2, 3, 5], batch_axis: false, init: normal}}]",
]
# Whole specs: the kinds that need their own input (a sequence, token ids, channels a
# factor's square divides) — sequence kinds in several sizes, heads, biases and directions.
SEQUENCE = "input: {shape: [%d, %d], layout: sequence}\nlayers: [%s]"
WHOLE = [
    "input: [8, 6, 6]\nlayers: [{pixel_shuffle: 2}]",
    "input: [8, 6, 6]\nlayers: [{pixel_unshuffle: 2}]",
    SEQUENCE % (12, 6, "{from_tokens: [3, 4]}"),
    SEQUENCE % (5, 8, "{attention: 2}"),
    SEQUENCE % (7, 12, "{attention: {heads: 3, bias: false}}"),
    SEQUENCE % (5, 8, "{attention: {heads: 1, causal: true}}"),
    "inputs:\n  q: {shape: [4, 8], layout: sequence}\n  c: {shape: [6, 10], layout: sequence}\n"
    "layers: [{attention: 2, from: [q, c]}]",
    "inputs:\n  q: {shape: [3, 8], layout: sequence}\n  c: {shape: [5, 8], layout: sequence}\n"
    "layers: [{attention: {heads: 4, bias: false}, from: [q, c]}]",
    SEQUENCE % (5, 8, "{transformer_encoder_layer: {heads: 2, feedforward: 16}}"),
    SEQUENCE % (7, 8, "{transformer_encoder_layer: {heads: 4, feedforward: 12, activation: gelu}}"),
    SEQUENCE
    % (
        6,
        4,
        "{transformer_encoder_layer: {heads: 2, feedforward: 5, norm_first: true, causal: true}}",
    ),
    SEQUENCE % (5, 3, "{lstm: 4}"),
    SEQUENCE % (6, 3, "{lstm: {units: 4, layers: 2, bidirectional: true}}"),
    SEQUENCE % (6, 5, "{lstm: {units: 3, layers: 3, bias: false, return: last}}"),
    SEQUENCE % (5, 3, "{gru: 4}"),
    SEQUENCE % (6, 3, "{gru: {units: 4, layers: 2, bidirectional: true}}"),
    SEQUENCE % (6, 5, "{gru: {units: 3, layers: 3, bias: false, return: last}}"),
    SEQUENCE % (5, 3, "positional_embedding, {dense: 4}, {layernorm: last}"),
    "input: {shape: [5], dtype: int, vocab: 30}\nlayers: [{embedding: {vocab: 30, dim: 4}}]",
    "input: {shape: [5], dtype: int, vocab: 30}\n"
    "layers: [{embedding: {vocab: 40, dim: 6, padding_idx: 0}}, {attention: 2}]",
]


def measure(plan: Plan, tool: str) -> int:
    """What ``tool`` reports for the compiled network on one sample (eval mode): normal
    values for each float input, random ids for each token input (``check --verify``'s)."""
    import torch

    from archspec.compile import build
    from archspec.compile.verify import example_inputs

    torch.manual_seed(0)
    net = build(plan).eval()
    xs = example_inputs(plan, 1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return int(_TOOLS[tool](net, xs, plan))
        finally:
            logging.disable(logging.NOTSET)


def _torchinfo(net: Any, xs: tuple[Any, ...], plan: Plan) -> int:
    torchinfo = pytest.importorskip("torchinfo")
    return int(torchinfo.summary(net, input_data=list(xs), verbose=0).total_mult_adds)


def _fvcore(net: Any, xs: tuple[Any, ...], plan: Plan) -> int:
    nn = pytest.importorskip("fvcore.nn")
    analysis = nn.FlopCountAnalysis(net, xs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


def _ptflops(backend: str) -> Callable[[Any, tuple[Any, ...], Plan], int]:
    def run(net: Any, xs: tuple[Any, ...], plan: Plan) -> int:
        ptflops = pytest.importorskip("ptflops")
        # the inputs by name (one input: ptflops' own batch of plan.input_shape)
        names = [i.name for i in plan.all_inputs]
        build = (lambda _: dict(zip(names, xs, strict=True))) if plan.inputs else None
        macs, _ = ptflops.get_model_complexity_info(
            net,
            plan.input_shape,
            as_strings=False,
            print_per_layer_stat=False,
            backend=backend,
            input_constructor=build,
        )
        assert macs is not None, "ptflops failed on this network"
        return int(macs)

    return run


def _thop(net: Any, xs: tuple[Any, ...], plan: Plan) -> int:
    thop = pytest.importorskip("thop")
    ops, _ = thop.profile(net, inputs=xs, verbose=False)
    return int(ops)


_TOOLS: dict[str, Callable[[Any, tuple[Any, ...], Plan], int]] = {
    "torchinfo": _torchinfo,
    "fvcore": _fvcore,
    "ptflops": _ptflops("pytorch"),
    "ptflops-aten": _ptflops("aten"),
    "thop": _thop,
}


# ---------------------------------------------------------------- the registry


def test_every_kind_has_a_rule_in_every_convention() -> None:
    missing = [
        f"{kind} ({convention})"
        for kind in kinds.REGISTRY
        for convention in (*counting.CONVENTIONS, "flops")
        if kind
        not in (counting.FLOP_RULES if convention == "flops" else counting.RULES[convention])
        and not (convention not in ("flops", "archspec") and kind in counting.TOOL_PENDING)
    ]
    assert not missing, f"kinds without a counting rule: {', '.join(missing)}"


def test_every_kind_is_measured_against_every_tool() -> None:
    """No kind is pending, and the per-kind cases below use every kind."""
    assert not counting.TOOL_PENDING
    used = {
        node.kind for case in _layer_cases() for node in archspec.loads(case.values[0]).plan().nodes
    }
    assert sorted(set(kinds.REGISTRY) - used) == []


def test_a_kind_pending_a_tool_measurement_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thop = dict(counting.RULES["thop"])
    del thop["relu6"]
    monkeypatch.setitem(counting.RULES, "thop", thop)
    monkeypatch.setattr(counting, "TOOL_PENDING", frozenset({"relu6"}))
    with pytest.raises(counting.UnknownKindError, match="not measured against the tool"):
        counting.rule("relu6", "thop")


def test_no_rule_for_a_kind_that_does_not_exist() -> None:
    stale = {kind for table in counting.RULES.values() for kind in table} - set(kinds.REGISTRY)
    assert not stale


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(counting.UnknownKindError, match=r"^\"kind 'warp' has no counting"):
        counting.rule("warp", "thop")


def test_the_archspec_convention_is_the_plan_s_macs() -> None:
    plan = archspec.load(SPECS / "resnet18.yaml").plan()
    assert counting.total(plan) == plan.total_macs
    assert counting.per_layer(plan) == {node.name: node.macs for node in plan.nodes}


def test_archspec_flops_of_a_small_net_by_hand() -> None:
    plan = archspec.loads(
        "input: [2, 4, 4]\nlayers:\n"
        "  - conv: {depth: 3, kernel: 3}\n"  # 3·2·9·4 = 216 MACs; 4·3 = 12 outputs
        "  - relu\n"
        "  - pool: {kind: max, size: 2}\n"  # 3 outputs × 3 comparisons
        "  - flatten\n  - dense: 2\n"  # 3·2 = 6 MACs, 2 bias adds
    ).plan()
    assert counting.per_layer(plan, "flops") == {
        "conv1": 2 * 216 + 12,
        "relu1": 12,
        "pool1": 3 * 3,
        "flatten1": 0,
        "dense1": 2 * 6 + 2,
    }


def test_archspec_flops_of_the_sequence_kinds_by_hand() -> None:
    plan = archspec.loads(
        "input: {shape: [2, 4], layout: sequence}\nlayers:\n"
        "  - attention: 2\n"  # T = S = 2, D = 4: 2·16 + 2·2·4·4 + 2·2·2·4 + 2·16 = 160 MACs
        "  - layernorm: last\n"  # 8 elements
        "  - lstm: 3\n"  # 2 steps × (4·3·4 + 4·3·3) = 168 MACs
    ).plan()
    assert [node.macs for node in plan.nodes] == [160, 0, 168]
    assert counting.per_layer(plan, "flops") == {
        # 2 per MAC, scale + softmax (1 + 3) per score (2 heads × 2 × 2), biases 2·T·D + 2·S·D
        "attention1": 2 * 160 + 4 * 2 * 2 * 2 + (2 * 8 + 2 * 8),
        # mean 1, variance 3, normalise 2, ·γ + β 2
        "layernorm1": 8 * 8,
        # 2 per MAC; per step and unit: 4 gates × 3 adds, 3 sigmoids (4), 2 tanh, 3 products
        "lstm1": 2 * 168 + 2 * 3 * (4 * 3 + 3 * 4 + 2 + 3),
    }


# ---------------------------------------------------------------- the tools as the oracle


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("name", NETWORKS)
def test_reference_networks_match_each_tool_exactly(name: str, tool: str) -> None:
    plan = archspec.load(SPECS / f"{name}.yaml").plan(NETWORKS[name])
    assert counting.total(plan, tool) == measure(plan, tool)


def _layer_cases() -> list[Any]:
    cases = []
    for layer in LAYERS:
        ranks = (2,) if "gelu" in layer or "conv_transpose" in layer else (1, 2, 3)
        ranks = (1,) if "causal" in layer else ranks
        for rank in ranks:
            if "lp" in layer and rank == 3 and "ceil_mode" in layer:
                continue  # torch's 3-D avg_pool refuses the ceil-mode window here
            cases.append(
                pytest.param(f"input: {INPUTS[rank]}\nlayers: [{{{layer}}}]", id=f"{rank}d-{layer}")
            )
    for head in HEADS:
        cases.append(pytest.param(f"input: {INPUTS[2]}\nlayers: {head}", id=head))
    for spec in WHOLE:
        cases.append(pytest.param(spec, id=spec.replace("\n", " ")))
    return cases


@pytest.mark.parametrize("spec", _layer_cases())
def test_every_kind_matches_every_tool(spec: str) -> None:
    plan = archspec.loads(spec).plan()
    wrong = {
        tool: (counting.total(plan, tool), measure(plan, tool))
        for tool in TOOLS
        if counting.total(plan, tool) != measure(plan, tool)
    }
    assert not wrong, f"(archspec, tool) per tool: {wrong}"


def _aten_bias_slack(node: Any) -> int:
    """The bias adds ptflops-aten misses when a linear layer's input is a strided sequence
    (counting.py: memory layout is not in the Plan)."""
    if node.kind == "dense" and len(node.in_shapes[0]) >= 2:
        return counting.rule("dense", "ptflops-aten")(node) - node.macs
    if node.kind in ("attention", "transformer_encoder_layer", "gru"):
        products = node.macs - (counting._scores(node) if node.kind != "gru" else 0)
        return counting.rule(node.kind, "ptflops-aten")(node) - products
    return 0


@settings(
    max_examples=max(5, settings().max_examples // 2),
    suppress_health_check=list(HealthCheck),
    deadline=None,
)
@given(net=valid_nets())
def test_random_networks_match_each_tool(net: Any) -> None:
    """Networks drawn by tests/strategies.py (every kind, chains and merges): each tool's
    count equals archspec's; ptflops-aten's may fall short only by the biases of linear
    layers whose sequence input arrives strided."""
    plan = archspec.loads(net.text).plan()
    if any(
        numel(node.in_shapes[0]) == node.params.groups  # type: ignore[attr-defined]
        for node in plan.nodes
        if node.kind == "groupnorm"
    ):
        reject()  # one value per group: torch's group_norm refuses it at batch 1
    for tool in TOOLS:
        static, measured = counting.total(plan, tool), measure(plan, tool)
        if tool == "ptflops-aten":
            slack = sum(_aten_bias_slack(node) for node in plan.nodes)
            assert static - slack <= measured <= static, (tool, static, measured, slack)
        else:
            assert static == measured, (tool, static, measured)


# Kinds whose multiply-adds are matrix products or convolutions: torch's own FLOP counter
# counts 2 per multiply-add of exactly these (and nothing else archspec counts).
MATMUL_KINDS = (
    "conv",
    "conv_transpose",
    "dense",
    "attention",
    "transformer_encoder_layer",
    "lstm",
    "gru",
)


def test_the_flops_rule_s_products_are_torch_s_own_flop_count() -> None:
    """``torch.utils.flop_counter`` (2 per multiply-add of every mm/bmm/conv aten op) on each
    per-kind case equals 2 × archspec's MACs of its products — with scaled dot product
    attention and the recurrent cells decomposed into matrix products (math attention,
    oneDNN off), and gradients on (no fused encoder fast path)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from archspec.compile import build
    from archspec.compile.verify import example_inputs

    wrong: dict[str | None, tuple[int, int]] = {}
    for case in _layer_cases():
        plan = archspec.loads(case.values[0]).plan()
        products = sum(n.macs for n in plan.nodes if n.kind in MATMUL_KINDS)
        net = build(plan).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # oneDNN's note on Intel GPUs
            with (
                sdpa_kernel(SDPBackend.MATH),
                torch.backends.mkldnn.flags(enabled=False),
                FlopCounterMode(display=False) as counter,
            ):
                net(*example_inputs(plan, 1))
        if counter.get_total_flops() != 2 * products:
            wrong[case.id] = (2 * products, counter.get_total_flops())
    assert not wrong, f"(2 × archspec MACs, torch's FLOPs) per case: {wrong}"


# ------------------------------------------------ archspec check --flops / --convention


def test_check_convention_names_the_column_and_adds_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from archspec.cli import main

    assert main(["check", str(SPECS / "lenet5.yaml"), "--convention", "thop"]) == 0
    out = capsys.readouterr().out
    assert "MACs (thop)" in out.splitlines()[1]
    assert "MACs per sample: 416,520" in out
    assert "MACs (thop) per sample: 418,096" in out


def test_check_flops_json_has_per_layer_counts(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from archspec.cli import main

    assert main(["check", "--json", "--flops", str(SPECS / "lenet5.yaml")]) == 0
    plan = json.loads(capsys.readouterr().out)["specs"][0]["plan"]
    assert plan["count"] == "flops"
    assert plan["total_count"] == sum(layer["count"] for layer in plan["layers"])
    assert plan["layers"][0]["count"] == 2 * 117_600 + 6 * 28 * 28  # conv1: MACs, bias adds


def test_flops_and_a_tool_convention_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from archspec.cli import main

    assert main(["check", str(SPECS / "lenet5.yaml"), "--flops", "--convention", "fvcore"]) == 2
    assert capsys.readouterr().err.startswith(
        "archspec: --flops counts archspec's FLOPs; --convention fvcore counts"
    )
