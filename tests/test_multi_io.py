"""Networks with several named inputs and outputs (``inputs:``, ``outputs:``) and int
token-id inputs read by ``embedding`` (issue 14, item 2).

Each mistake is one located line; the Plan, the check report and the diagram show every
input and output; the compiled network takes its inputs by position or by name and
returns a tuple in `outputs:` order; verify and export feed each input (random ids for
token ids); the bundled two_tower and text_classifier equal the same models written in
torch; training such a network is refused in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.cli import main
from archspec.compile.verify import example_inputs, verify
from archspec.errors import SpecError
from archspec.outputs import diagram, export, report

ROOT = Path(__file__).resolve().parents[1]


def one_error(text: str, pattern: str) -> str:
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "s.yaml")
    rendered = info.value.render()
    assert len(info.value.problems) == 1, rendered
    assert re.search(pattern, rendered), rendered
    return rendered


TWO = "inputs:\n  image: [3, 8, 8]\n  meta: [5]\n"
BOTH_READ = (
    "  - conv: {depth: 4, kernel: 3}\n"
    "    from: image\n"
    "  - global_pool:\n"
    "    name: pooled\n"
    "  - dense: 4\n"
    "    from: meta\n"
    "    name: m\n"
    "  - concat:\n"
    "    from: [pooled, m]\n"
    "    name: joined\n"
)
GOOD = TWO + "layers:\n" + BOTH_READ + "outputs: [joined, pooled]\n"


# ---------------------------------------------------------------- errors, located
def test_input_and_inputs_together() -> None:
    one_error(
        "input: [3]\n" + TWO + "layers: [relu]\n",
        r"^s\.yaml:2:1: inputs: a spec has `input:` or `inputs:`, not both — keep",
    )


def test_neither_input_nor_inputs() -> None:
    one_error(
        "layers: [relu]\n",
        r"^s\.yaml:1:1: input: missing required key 'input' — add e\.g\. `input: \[1, 28, 28\]` "
        r"\(or several named inputs under `inputs:`\)$",
    )


def test_unknown_input_name_suggests_the_close_one() -> None:
    text = TWO + "layers:\n" + BOTH_READ.replace("from: meta", "from: metta")
    one_error(
        text,
        r"^s\.yaml:10:11: layers\[2\]\.from: from names 'metta', which is not a layer here — "
        r"did you mean 'meta'\?$",
    )


def test_unknown_output_name_suggests_the_close_one() -> None:
    one_error(
        TWO + "layers:\n" + BOTH_READ + "outputs: [joined, poled]\n",
        r"^s\.yaml:15:19: outputs\[1\]: outputs names 'poled', which is not a layer here — "
        r"did you mean 'pooled'\?$",
    )


def test_an_output_listed_twice() -> None:
    one_error(
        TWO + "layers:\n" + BOTH_READ + "outputs: [joined, joined]\n",
        r"^s\.yaml:15:19: outputs\[1\]: outputs lists 'joined' twice — list each output once$",
    )


def test_an_input_nobody_reads_is_an_error() -> None:
    text = TWO + "layers:\n  - relu:\n    from: image\n"
    one_error(
        text,
        r"^s\.yaml:3:3: inputs\.meta: input 'meta' is never read — read it with `from: meta`, "
        r"or remove it from `inputs:`$",
    )


def test_a_layer_named_like_an_input() -> None:
    text = TWO + "layers:\n  - relu:\n    from: image\n    name: meta\n"
    one_error(text, r"^s\.yaml:7:11: layers\[0\]\.name: 'meta' names an input; a layer cannot")


def test_the_first_layer_must_say_which_input_it_reads() -> None:
    one_error(
        TWO + "layers:\n  - relu\n",
        r"^s\.yaml:5:5: layers\[0\]: the network has 2 inputs \(image, meta\); this layer "
        r"reads none — name the one it reads: `from: image`$",
    )


def test_from_input_is_ambiguous_with_several() -> None:
    one_error(
        TWO + "layers:\n  - relu:\n    from: input\n",
        r"^s\.yaml:6:11: layers\[0\]\.from: from: input is ambiguous: the network has 2 inputs",
    )


def test_an_output_that_is_an_input() -> None:
    one_error(
        TWO + "layers:\n" + BOTH_READ + "outputs: [joined, meta]\n",
        r"^s\.yaml:15:19: outputs\[1\]: outputs names 'meta', which is an input, not a layer",
    )


def test_output_and_outputs_together() -> None:
    one_error(
        TWO + "layers:\n" + BOTH_READ + "output: joined\noutputs: [joined]\n",
        r"^s\.yaml:16:1: outputs: a spec has `output:` or `outputs:`, not both",
    )


def test_input_is_not_a_name_under_inputs() -> None:
    one_error(
        "inputs:\n  input: [3]\nlayers: [relu]\n",
        r"^s\.yaml:2:3: inputs: 'input' names the one input of `input:`",
    )


def test_int_input_needs_vocab_and_vocab_needs_int() -> None:
    one_error(
        "input: {shape: [6], dtype: int}\nlayers: [relu]\n",
        r"^s\.yaml:1:8: input: an int input \(token ids\) needs `vocab`",
    )
    one_error(
        "input: {shape: [6], vocab: 9}\nlayers: [relu]\n",
        r"^s\.yaml:1:8: input: `vocab` is for token ids; this input is float",
    )


def test_float_kinds_refuse_token_ids() -> None:
    one_error(
        "input: {shape: [6], dtype: int, vocab: 9}\nlayers: [relu]\n",
        r"^s\.yaml:2:10: layers\[0\]\.relu: relu receives token ids \(an int input\), not float "
        r"values — add an `embedding` first",
    )


def test_embedding_refuses_float_values() -> None:
    one_error(
        "input: [6]\nlayers: [{embedding: {vocab: 9, dim: 4}}]\n",
        r"embedding reads token ids \(an int input\), but receives a flat vector 6 of float",
    )


def test_embedding_table_smaller_than_the_ids() -> None:
    one_error(
        "input: {shape: [6], dtype: int, vocab: 50}\nlayers: [{embedding: {vocab: 9, dim: 4}}]\n",
        r"layers\[0\]\.embedding\.vocab: the input's ids reach 49, but the table has 9 rows — "
        r"use `vocab: 50` or more",
    )


def test_embedding_padding_idx_outside_the_table() -> None:
    one_error(
        "input: {shape: [6], dtype: int, vocab: 9}\n"
        "layers: [{embedding: {vocab: 9, dim: 4, padding_idx: 9}}]\n",
        r"padding_idx: padding_idx 9 is not an id of a table of 9 rows",
    )


def test_another_input_shape_is_refused_for_several_inputs() -> None:
    spec = archspec.loads(GOOD, "s.yaml")
    with pytest.raises(SpecError, match="this network has 2 inputs"):
        spec.plan((3, 16, 16))


# ---------------------------------------------------------------- the Plan and the report
def test_plan_lists_every_input_and_output() -> None:
    plan = archspec.loads(GOOD).plan()
    assert [(i.name, i.shape, i.layout) for i in plan.all_inputs] == [
        ("image", (3, 8, 8), "grid"),
        ("meta", (5,), "flat"),
    ]
    assert plan.all_outputs == (("joined", 0), ("pooled", 0))
    assert plan.input_shape == (3, 8, 8) and plan.output_shape == (8,)
    data = plan.to_dict()
    assert data["inputs"]["meta"] == {"shape": [5], "layout": "flat", "dtype": "float"}
    assert data["outputs"] == {"joined": [8], "pooled": [4]}
    assert plan.origins("joined") == {"image", "meta"} and plan.origins("pooled") == {"image"}


def test_one_input_specs_keep_their_plan_json() -> None:
    plan = archspec.load(ROOT / "specs" / "lenet5.yaml").plan()
    assert plan.plain_io and "inputs" not in plan.to_dict()
    text = report.plain_table(plan)
    assert "\ninput: 1×32×32\noutput: 10\n" in text


def test_report_shows_each_input_and_each_output_with_its_own_counts() -> None:
    text = report.plain_table(archspec.loads(GOOD, "g.yaml").plan())
    lines = text.splitlines()
    assert "input image: 3×8×8 grid" in lines
    assert "input meta: 5 flat" in lines
    # joined: conv 112 + dense 24 params; receptive field mixed (two inputs) → —
    assert "output joined: 8 — 136 params, 3,908 MACs, receptive field —, from image, meta" in lines
    # pooled: the conv only, its field relative to the image: global after the pooling
    assert "output pooled: 4 — 112 params, 3,888 MACs, receptive field all, from image" in lines
    assert "parameters: 136 (0.00 MiB as float32)" in lines


def test_receptive_field_is_relative_to_the_one_input_it_descends_from() -> None:
    text = "inputs:\n  a: [1, 9, 9]\n  b: [1, 9, 9]\nlayers:\n"
    text += "  - conv: {depth: 1, kernel: 3}\n    from: a\n    name: ca\n"
    text += "  - conv: {depth: 1, kernel: 5}\n    from: b\n    name: cb\n"
    text += "  - add:\n    from: [ca, ca]\n    name: s\n"
    text += "  - concat:\n    from: [cb, cb]\n    name: t\n"
    text += "outputs: [s, t]\n"
    plan = archspec.loads(text).plan()
    lines = report.plain_table(plan).splitlines()
    assert any(line.startswith("output s: 1×7×7") and "field 3×3, from a" in line for line in lines)
    assert any(line.startswith("output t: 2×5×5") and "field 5×5, from b" in line for line in lines)
    cross = (
        "inputs:\n  a: [1, 9, 9]\n  b: [1, 9, 9]\nlayers:\n"
        "  - conv: {depth: 1, kernel: 3}\n    from: a\n    name: ca\n"
        "  - add:\n    from: [ca, b]\n"
    )
    with pytest.raises(SpecError):  # 1×7×7 + 1×9×9 do not broadcast: a real shape error
        archspec.loads(cross)
    cross = cross.replace("kernel: 3}", "kernel: 3, padding: same}")
    plan = archspec.loads(cross).plan()
    assert plan.node("ca").field is not None and plan.node("add1").field is None
    assert "receptive field —, from a, b" in report.plain_table(plan)


def test_diagram_draws_each_input_and_output() -> None:
    layout = diagram.layout(archspec.loads(GOOD).plan())
    io = [box.lines for box in layout.boxes if box.role == "io"]
    assert io == [
        ["input image", "3×8×8"],
        ["input meta", "5"],
        ["output joined", "8"],
        ["output pooled", "4"],
    ]
    ids = {box.id for box in layout.boxes}
    assert len(ids) == len(layout.boxes)
    assert all(a in ids and b in ids for a, b in layout.edges)


# ---------------------------------------------------------------- the compiled network
def test_forward_takes_inputs_by_position_or_name_and_returns_outputs_in_order() -> None:
    spec = archspec.loads(GOOD)
    torch.manual_seed(0)
    network = spec.build().eval()
    image, meta = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    with torch.no_grad():
        joined, pooled = network(image, meta)
        assert joined.shape == (2, 8) and pooled.shape == (2, 4)
        by_name = network(meta=meta, image=image)
        mixed = network(image, meta=meta)
        # the parts by hand: conv → global pool; dense on meta; concat
        conv, dense = network.get_submodule("conv1"), network.get_submodule("m")
        expected = torch.cat([conv(image).mean((2, 3)), dense(meta)], 1)
    for got in (by_name, mixed):
        torch.testing.assert_close(got[0], joined, rtol=0, atol=0)
        torch.testing.assert_close(got[1], pooled, rtol=0, atol=0)
    torch.testing.assert_close(joined, expected)
    torch.testing.assert_close(pooled, expected[:, :4])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n, i, m: n(i), "missing input: meta"),
        (lambda n, i, m: n(i, m, m), "takes 2 inputs"),
        (lambda n, i, m: n(i, image=i, meta=m), "given twice"),
        (lambda n, i, m: n(image=i, metadata=m), "no input 'metadata'"),
    ],
)
def test_forward_says_which_input_is_wrong(call: object, message: str) -> None:
    network = archspec.loads(GOOD).build()
    with pytest.raises(TypeError, match=message):
        call(network, torch.randn(1, 3, 8, 8), torch.randn(1, 5))  # type: ignore[operator]


def test_outputs_may_name_split_outputs_and_earlier_layers() -> None:
    text = (
        "inputs:\n  a: [8]\n  b: [4]\nlayers:\n"
        "  - split: [3, 5]\n    from: a\n    outputs: [p, q]\n"
        "  - relu:\n    from: b\n    name: r\n"
        "  - tanh:\n    from: q\n    name: t\n"
        "outputs: [r, p, t, q]\n"
    )
    network = archspec.loads(text).build()
    a, b = torch.randn(2, 8), torch.randn(2, 4)
    r, p, t, q = network(a, b)
    torch.testing.assert_close(r, b.relu())
    torch.testing.assert_close(p, a[:, :3])
    torch.testing.assert_close(t, a[:, 3:].tanh())
    torch.testing.assert_close(q, a[:, 3:])


def test_a_single_output_spec_with_named_inputs_returns_a_tensor() -> None:
    text = TWO + "layers:\n" + BOTH_READ + "  - dense: 2\n"
    network = archspec.loads(text).build()
    out = network(torch.randn(2, 3, 8, 8), torch.randn(2, 5))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2)


def test_token_ids_run_through_embedding() -> None:
    text = "input: {shape: [5], dtype: int, vocab: 7}\n"
    text += "layers: [{embedding: {vocab: 7, dim: 3, padding_idx: 0}}]\n"
    spec = archspec.loads(text)
    plan = spec.plan()
    node = plan.nodes[0]
    assert (node.shape, node.layout, node.num_params, node.macs) == ((5, 3), "sequence", 21, 0)
    network = spec.build()
    ids = torch.tensor([[0, 1, 2, 3, 6], [6, 6, 0, 0, 1]])
    out = network(ids)
    table = network.get_submodule("embedding1").weight
    torch.testing.assert_close(out, table[ids])
    assert torch.all(out[0, 0] == 0)  # the padding id's vector is zero


def test_verify_feeds_each_input_int_ones_included() -> None:
    for name in ("two_tower", "text_classifier", "kinds_tour"):
        plan = archspec.load(ROOT / "specs" / f"{name}.yaml").plan()
        verify(plan)  # meta device
    plan = archspec.load(ROOT / "specs" / "text_classifier.yaml").plan()
    verify(plan, device="cpu")  # real random ids in [0, vocab)
    (ids,) = example_inputs(plan, 4, "cpu", torch.Generator().manual_seed(0))
    assert ids.dtype == torch.long and int(ids.min()) >= 0 and int(ids.max()) < 1000


def test_check_verify_cli_on_the_bundled_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--verify", "two_tower", "text_classifier"]) == 0
    out = capsys.readouterr().out
    assert "output boxes: 4 — 5,316 params" in out
    assert "input input: 64 int token ids in [0, 1,000)" in out
    assert out.count("verified: all") == 2


# ---------------------------------------------------------------- the bundled specs vs torch
def copy_by_order(source: nn.Module, target: nn.Module) -> None:
    theirs = list(source.state_dict().values())
    ours = target.state_dict()
    assert [tuple(v.shape) for v in theirs] == [tuple(v.shape) for v in ours.values()]
    target.load_state_dict(dict(zip(ours, theirs, strict=True)))


class TwoTower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.meta = nn.Sequential(nn.Linear(12, 32), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        self.boxes = nn.Linear(32, 4)

    def forward(self, image: torch.Tensor, meta: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.image(image)
        logits = self.head(torch.cat([features, self.meta(meta)], 1))
        return logits, self.boxes(features)


class Positions(nn.Module):
    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)


class TextClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 32, padding_idx=0)
        self.positions = Positions(64, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.positions.table
        out: torch.Tensor = self.head(self.encoder(x).mean(1))
        return out


def _randomise_batchnorm(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


def test_two_tower_equals_torch() -> None:
    spec = archspec.load(ROOT / "specs" / "two_tower.yaml")
    torch.manual_seed(0)
    reference = TwoTower()
    _randomise_batchnorm(reference)
    network = spec.build()
    assert sum(p.numel() for p in reference.parameters()) == spec.plan().total_params == 10_542
    copy_by_order(reference, network)
    reference.eval(), network.eval()
    image, meta = torch.randn(5, 3, 32, 32), torch.randn(5, 12)
    with torch.no_grad():
        expected, got = reference(image, meta), network(image, meta)
    assert [tuple(g.shape) for g in got] == [(5, 10), (5, 4)]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_text_classifier_equals_torch() -> None:
    spec = archspec.load(ROOT / "specs" / "text_classifier.yaml")
    torch.manual_seed(0)
    reference = TextClassifier()
    network = spec.build()
    assert sum(p.numel() for p in reference.parameters()) == spec.plan().total_params == 51_268
    copy_by_order(reference, network)
    reference.eval(), network.eval()
    ids = torch.randint(0, 1000, (5, 64), generator=torch.Generator().manual_seed(1))
    ids[:, -10:] = 0  # padding at the end
    with torch.no_grad():
        expected, got = reference(ids), network(ids)
    assert got.shape == (5, 4)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("fmt", ["torchscript", "exported", "onnx"])
def test_export_keeps_every_input_and_output(fmt: str, tmp_path: Path) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    source = export.load_source(str(ROOT / "specs" / "two_tower.yaml"))
    out = tmp_path / "net"
    export.export(source, fmt, out)
    image, meta = torch.randn(3, 3, 32, 32), torch.randn(3, 12)  # batch 3: dynamic
    with torch.no_grad():
        expected = source.network(image, meta)
    if fmt == "onnx":
        onnx = pytest.importorskip("onnx")
        model = onnx.load(str(out))
        assert [i.name for i in model.graph.input] == ["image", "meta"]
        assert [o.name for o in model.graph.output] == ["logits", "boxes"]
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": image.numpy(), "meta": meta.numpy()})
        got = tuple(torch.from_numpy(g) for g in got)
    elif fmt == "torchscript":
        got = torch.jit.load(str(out))(image, meta)  # type: ignore[no-untyped-call]
    else:
        got = torch.export.load(str(out)).module()(image, meta)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_export_metadata_names_inputs_and_outputs(tmp_path: Path) -> None:
    from safetensors import safe_open

    source = export.load_source(str(ROOT / "specs" / "text_classifier.yaml"))
    out = tmp_path / "w.safetensors"
    export.export(source, "safetensors", out)
    import json

    with safe_open(str(out), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {})["archspec"])
    assert meta["input"] == [64]
    assert meta["inputs"] == {"input": {"shape": [64], "dtype": "int", "vocab": 1000}}
    assert meta["outputs"] == ["output"]


def test_export_of_a_one_input_spec_names_input_and_output(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    source = export.load_source(str(ROOT / "specs" / "lenet5.yaml"))
    out = tmp_path / "net.onnx"
    export.export(source, "onnx", out)
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    assert "inputs" not in export.metadata(source)


# ---------------------------------------------------------------- training: refused
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("two_tower.yaml", "training a network with several inputs/outputs needs a dataset"),
        ("text_classifier.yaml", "training a network on int token ids needs integer samples"),
    ],
)
def test_train_refuses_in_one_line(
    spec: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "specs" / spec).read_text()
    text += "train:\n  data: {dataset: mnist}\n  epochs: 1\n"
    path = tmp_path / spec
    path.write_text(text)
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "not supported yet" in err[0]
    assert not (tmp_path / "run").exists()
