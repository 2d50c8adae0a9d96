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

import archspec
from archspec.shapes import counting, kinds
from archspec.shapes.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TOOLS = ("torchinfo", "fvcore", "ptflops", "ptflops-aten", "thop")

# The reference networks at their own input size; the two ImageNet nets at a smaller one
# (the counting rules do not depend on the size, and 224×224 VGG takes a while on CPU).
NETWORKS: dict[str, tuple[int, ...] | None] = {
    "lenet5": None,
    "mnist_cnn": None,
    "cifar_resnet": None,
    "resnet18": (3, 64, 64),
    "alexnet": (3, 96, 96),
    "vgg16": (3, 32, 32),
    "unet_tiny": None,
    "kinds_tour": None,
    "timeseries_cnn": None,
}

# One layer of each kind and variant, in 1-D, 2-D and 3-D where the kind allows.
LAYERS = [
    "conv: {depth: 4, kernel: 3, padding: 1}",
    "conv: {depth: 4, kernel: 3, groups: 2, bias: false}",
    "conv: {depth: 4, kernel: 4, padding: same}",  # asymmetric padding
    "conv: {depth: 4, kernel: 3, stride: 2, padding: same}",
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
]
INPUTS = {1: "[6, 9]", 2: "[6, 7, 7]", 3: "[6, 5, 6, 7]"}
HEADS = [
    "[flatten, {dense: 5}]",
    "[flatten, {dense: {units: 5, bias: false}}]",
    "[{conv: {depth: 6, kernel: 1}, name: a}, {add: null, from: [input, a]}]",
    "[{relu: null, name: a}, {multiply: null, from: [input, a, a], name: m},"
    " {concat: null, from: [m, a, input]}]",
]


def measure(plan: Plan, tool: str) -> int:
    """What ``tool`` reports for the compiled network on one sample (eval mode)."""
    import torch

    from archspec.compile import build

    torch.manual_seed(0)
    net = build(plan).eval()
    x = torch.randn(1, *plan.input_shape)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return int(_TOOLS[tool](net, x, plan.input_shape))
        finally:
            logging.disable(logging.NOTSET)


def _torchinfo(net: Any, x: Any, shape: tuple[int, ...]) -> int:
    torchinfo = pytest.importorskip("torchinfo")
    return int(torchinfo.summary(net, input_data=x, verbose=0).total_mult_adds)


def _fvcore(net: Any, x: Any, shape: tuple[int, ...]) -> int:
    nn = pytest.importorskip("fvcore.nn")
    analysis = nn.FlopCountAnalysis(net, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


def _ptflops(backend: str) -> Callable[[Any, Any, tuple[int, ...]], int]:
    def run(net: Any, x: Any, shape: tuple[int, ...]) -> int:
        ptflops = pytest.importorskip("ptflops")
        macs, _ = ptflops.get_model_complexity_info(
            net, shape, as_strings=False, print_per_layer_stat=False, backend=backend
        )
        assert macs is not None, "ptflops failed on this network"
        return int(macs)

    return run


def _thop(net: Any, x: Any, shape: tuple[int, ...]) -> int:
    thop = pytest.importorskip("thop")
    ops, _ = thop.profile(net, inputs=(x,), verbose=False)
    return int(ops)


_TOOLS: dict[str, Callable[[Any, Any, tuple[int, ...]], int]] = {
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


def test_the_kinds_pending_a_tool_measurement_are_real_kinds_and_refused_clearly() -> None:
    assert set(counting.TOOL_PENDING) <= set(kinds.REGISTRY)
    with pytest.raises(counting.UnknownKindError, match="not measured against the tool"):
        counting.rule("relu6", "thop")


def test_no_rule_for_a_kind_that_does_not_exist() -> None:
    stale = {kind for table in counting.RULES.values() for kind in table} - set(kinds.REGISTRY)
    assert not stale


def test_an_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(counting.UnknownKindError, match=r"^\"kind 'attention' has no counting"):
        counting.rule("attention", "thop")


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


# ---------------------------------------------------------------- the tools as the oracle


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("name", NETWORKS)
def test_reference_networks_match_each_tool_exactly(name: str, tool: str) -> None:
    plan = archspec.load(SPECS / f"{name}.yaml").plan(NETWORKS[name])
    pending = sorted({node.kind for node in plan.nodes} & counting.TOOL_PENDING)
    if pending:
        pytest.skip(f"{name} uses kinds not yet measured against {tool}: {', '.join(pending)}")
    assert counting.total(plan, tool) == measure(plan, tool)


def _layer_cases() -> list[Any]:
    cases = []
    for layer in LAYERS:
        ranks = (2,) if "gelu" in layer or "conv_transpose" in layer else (1, 2, 3)
        for rank in ranks:
            if "lp" in layer and rank == 3 and "ceil_mode" in layer:
                continue  # torch's 3-D avg_pool refuses the ceil-mode window here
            cases.append(
                pytest.param(f"input: {INPUTS[rank]}\nlayers: [{{{layer}}}]", id=f"{rank}d-{layer}")
            )
    for head in HEADS:
        cases.append(pytest.param(f"input: {INPUTS[2]}\nlayers: {head}", id=head))
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
