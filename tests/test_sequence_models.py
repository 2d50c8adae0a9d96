"""The sequence specs equal the same models written directly in torch (issue 14).

For each bundled sequence spec: the torch model written by hand has the same
parameter count and parameter shapes in the same order; after copying its
``state_dict`` values into the compiled network by order, both give the same output
on random ``[N, T, D]`` batches in eval mode. Also: the ``attention`` kind equals
``nn.MultiheadAttention`` after copying weights (self, cross with other features,
causal), and the ``.ts`` reader of the UCR adapter.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.compile.network import Network

ROOT = Path(__file__).resolve().parents[1]


def copy_by_order(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s state values into ``target`` in order; shapes must agree."""
    theirs = list(source.state_dict().values())
    ours = target.state_dict()
    assert [tuple(v.shape) for v in theirs] == [tuple(v.shape) for v in ours.values()]
    target.load_state_dict(dict(zip(ours, theirs, strict=True)))


def assert_same_function(reference: nn.Module, network: Network, shape: tuple[int, ...]) -> None:
    assert sum(p.numel() for p in reference.parameters()) == network.plan.total_params
    copy_by_order(reference, network)
    reference.eval(), network.eval()
    torch.manual_seed(1)
    x = torch.randn(5, *shape)
    with torch.no_grad():
        expected, got = reference(x), network(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


class LstmForecaster(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 32, num_layers=2, dropout=0.1, batch_first=True)
        self.head = nn.Linear(32, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        out: torch.Tensor = self.head(h[-1])
        return out


class GruClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(1, 32, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        out: torch.Tensor = self.head(self.drop(torch.cat([h[-2], h[-1]], dim=-1)))
        return out


class TransformerClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, 32, 8) * 0.02)
        layer = nn.TransformerEncoderLayer(8, 2, 64, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(x + self.pos_embedding).flatten(1))
        return out


class TemporalBlock(nn.Module):
    """Bai et al.'s TCN block without weight norm: two causal dilated convs (left padding
    dilation·(k-1)), relu and dropout after each, a 1×1 shortcut when widths differ."""

    def __init__(self, cin: int, cout: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, 3, dilation=dilation)
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else None
        self.drop = nn.Dropout(0.1)
        self.left = 2 * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(torch.relu(self.conv1(nn.functional.pad(x, (self.left, 0)))))
        y = self.drop(torch.relu(self.conv2(nn.functional.pad(y, (self.left, 0)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + shortcut)


class Tcn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        widths = [(3, 32, 1), (32, 32, 2), (32, 32, 4), (32, 32, 8)]
        self.blocks = nn.Sequential(*(TemporalBlock(*w) for w in widths))
        self.head = nn.Linear(32, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [N, T, D]
        out: torch.Tensor = self.head(self.blocks(x.transpose(1, 2))[:, :, -1])
        return out


@pytest.mark.parametrize(
    ("spec", "reference", "params"),
    [
        ("lstm_forecaster", LstmForecaster, 13_324),
        ("gru_classifier", GruClassifier, 6_850),
        ("transformer_classifier", TransformerClassifier, 4_116),
        ("tcn", Tcn, 22_374),
    ],
)
def test_sequence_spec_equals_torch(spec: str, reference: type[nn.Module], params: int) -> None:
    loaded = archspec.load(ROOT / "specs" / f"{spec}.yaml")
    assert loaded.plan().total_params == params
    torch.manual_seed(0)
    assert_same_function(reference(), loaded.build(), loaded.plan().input_shape)


def test_tcn_is_causal_with_a_61_step_field() -> None:
    """The last step's output changes with the last input step, and not at all with the
    steps more than 60 before it (receptive field 1 + 2·2·(1+2+4+8) = 61)."""
    network = archspec.load(ROOT / "specs" / "tcn.yaml").build().eval()
    torch.manual_seed(0)
    x = torch.randn(2, 128, 3)
    with torch.no_grad():
        base = network(x)
        early, late, edge = x.clone(), x.clone(), x.clone()
        early[:, : 128 - 61] += 5.0  # every step the field does not reach
        edge[:, 128 - 61] += 5.0  # the oldest step it does
        late[:, -1] += 5.0
        torch.testing.assert_close(network(early), base, rtol=0, atol=0)
        assert not torch.allclose(network(edge), base)
        assert not torch.allclose(network(late), base)


@pytest.mark.parametrize(
    ("text", "context", "causal"),
    [
        (
            "input: {shape: [7, 12], layout: sequence}\nlayers: [{attention: {heads: 3}}]\n",
            None,
            False,
        ),
        (
            "input: {shape: [7, 12], layout: sequence}\n"
            "layers: [{attention: {heads: 4, causal: true}}]\n",
            None,
            True,
        ),
    ],
)
def test_self_attention_equals_multihead_attention(text: str, context: None, causal: bool) -> None:
    spec = archspec.loads(text)
    heads = spec.plan().nodes[0].params.heads  # type: ignore[attr-defined]
    mha = nn.MultiheadAttention(12, heads, batch_first=True)

    class Ref(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.ones(7, 7, dtype=torch.bool).triu(1) if causal else None
            return self.mha(x, x, x, need_weights=False, attn_mask=mask)[0]

    assert_same_function(Ref(), spec.build(), (7, 12))


def test_cross_attention_with_other_features_equals_multihead_attention() -> None:
    spec = archspec.loads(
        "input: {shape: [6, 8], layout: sequence}\nlayers:\n"
        "  - parameter: {shape: [5, 3], init: normal}\n    name: memory\n"
        "  - attention: 2\n    from: [input, memory]\n"
    )
    node = spec.plan().nodes[1]
    assert node.shape == (6, 8) and node.num_params == 8 * 8 + 2 * 3 * 8 + 8 * 8 + 4 * 8
    assert node.macs == 6 * 64 + 2 * 5 * 3 * 8 + 2 * 6 * 5 * 8 + 6 * 64
    network = spec.build().eval()
    mha = nn.MultiheadAttention(8, 2, batch_first=True, kdim=3, vdim=3)
    copy_by_order(mha, network.attention1)
    x = torch.randn(4, 6, 8)
    memory = network.memory.weight.expand(4, 5, 3)
    with torch.no_grad():
        expected = mha(x, memory, memory, need_weights=False)[0]
        torch.testing.assert_close(network(x), expected, rtol=1e-5, atol=1e-6)


def test_sequence_kinds_say_what_they_need() -> None:
    with pytest.raises(archspec.SpecError, match=r"lstm needs a \[tokens, features\] sequence"):
        archspec.loads("input: [3, 8, 8]\nlayers: [{lstm: 4}]\n")
    with pytest.raises(archspec.SpecError, match=r"receives a grid 5×8 — add `- to_tokens`"):
        archspec.loads("input: [5, 8]\nlayers: [{gru: 4}]\n")  # [C, L]: torch would read C as time
    with pytest.raises(archspec.SpecError, match=r"receives a flat vector 8"):
        archspec.loads("input: [8]\nlayers: [{attention: 2}]\n")
    with pytest.raises(archspec.SpecError, match=r"features divisible by 3, but the query has 8"):
        archspec.loads("input: {shape: [5, 8], layout: sequence}\nlayers: [{attention: 3}]\n")
    with pytest.raises(archspec.SpecError, match="only one"):
        archspec.loads(
            "input: {shape: [5, 8], layout: sequence}\nlayers: [{gru: {units: 4, dropout: 0.2}}]\n"
        )


def test_ts_reader(tmp_path: Path) -> None:
    from archspec.data.ucr import read_ts

    path = tmp_path / "x.ts"
    path.write_text("# c\n@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n4,5,6:b\n")
    series = read_ts(path)
    assert series.x.shape == (2, 3, 1) and series.labels == ["a", "b"]
    assert series.x[1, :, 0].tolist() == [4.0, 5.0, 6.0]


def test_bundled_ucr_set_when_aeon_is_installed() -> None:
    if importlib.util.find_spec("aeon") is None:
        pytest.skip("aeon (which bundles the UCR sets) is not installed")
    from archspec.data.ucr import bundled_folder, read_ts

    train = read_ts(bundled_folder("ItalyPowerDemand") / "ItalyPowerDemand_TRAIN.ts")
    assert train.x.shape == (67, 24, 1) and set(train.labels) == {"1", "2"}


def test_parameter_stored_without_batch_axis_and_constant_init() -> None:
    """ConvNeXt's layer scale: stored as [C, 1, 1] (not [1, C, 1, 1]), every element 1e-6,
    repeated over the batch and multiplied into a [C, H, W] map by broadcasting."""
    spec = archspec.loads(
        "input: [4, 3, 5]\nlayers:\n"
        "  - parameter: {shape: [4, 1, 1], init: constant, value: 1.0e-6, batch_axis: false}\n"
        "    name: gamma\n"
        "  - multiply:\n    from: [input, gamma]\n"
    )
    assert spec.plan().total_params == 4
    network = spec.build()
    (weight,) = network.parameters()
    assert tuple(weight.shape) == (4, 1, 1)
    assert torch.equal(weight, torch.full((4, 1, 1), 1e-6))
    x = torch.randn(2, 4, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(network(x), x * 1e-6)
    default = archspec.loads("input: [4, 3, 5]\nlayers: [{parameter: {shape: [4, 1, 1]}}]\n")
    (stored,) = default.build().parameters()
    assert tuple(stored.shape) == (1, 4, 1, 1) and not stored.any()  # ViT's class token way
