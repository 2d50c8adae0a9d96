"""``archspec import yolov8n.yaml``: Ultralytics model YAML, read as data, built exactly.

The YAML below is Ultralytics' ``ultralytics/cfg/models/v8/yolov8.yaml`` (its rows and
scales, copied; no network at test time). The oracle is a hand-written torch build of the
same file following Ultralytics' definitions (``nn/modules/conv.py`` Conv, ``block.py``
Bottleneck/C2f/SPPF/DFL, ``head.py`` Detect, ``nn/tasks.py`` parse_model and
``initialize_weights``' batch-norm eps 1e-3 / momentum 0.03), without installing
ultralytics. The imported spec, built and given the oracle's tensors under
:func:`ultralytics_key` names, must give the oracle's outputs (eval, atol 1e-5).

Parameter counts. Ultralytics' summary of YOLOv8n reads "3157200 parameters, 3157184
gradients": ``model.info()`` counts every parameter, including Detect's DFL — a
``Conv2d(16, 1, 1, bias=False)`` whose 16 weights are fixed to ``arange(16)`` and set
``requires_grad_(False)`` — while "gradients" counts the trainable ones. The spec is the
raw training-mode head (no DFL, no anchor decoding), so it has exactly the trainable count:
3,157,200 − 16 = 3,157,184, and likewise for every scale of the yolov8.yaml header.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

import archspec
from archspec.cli import main
from archspec.importers.ultralytics import DFL_PARAMS, ultralytics_key

YOLOV8 = """\
# Ultralytics YOLOv8 object detection model with P3-P5 outputs (cfg/models/v8/yolov8.yaml)

# Parameters
nc: 80 # number of classes
scales: # model compound scaling constants, i.e. 'model=yolov8n.yaml' will call yolov8.yaml with scale 'n'
  # [depth, width, max_channels]
  n: [0.33, 0.25, 1024] # YOLOv8n summary: 225 layers,  3157200 parameters,  3157184 gradients,   8.9 GFLOPs
  s: [0.33, 0.50, 1024] # YOLOv8s summary: 225 layers, 11166560 parameters, 11166544 gradients,  28.8 GFLOPs
  m: [0.67, 0.75, 768] # YOLOv8m summary: 295 layers, 25902640 parameters, 25902624 gradients,  79.3 GFLOPs
  l: [1.00, 1.00, 512] # YOLOv8l summary: 365 layers, 43691520 parameters, 43691504 gradients, 165.7 GFLOPs
  x: [1.00, 1.25, 512] # YOLOv8x summary: 365 layers, 68229648 parameters, 68229632 gradients, 258.5 GFLOPs

# YOLOv8.0n backbone
backbone:
  # [from, repeats, module, args]
  - [-1, 1, Conv, [64, 3, 2]] # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4
  - [-1, 3, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]] # 3-P3/8
  - [-1, 6, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]] # 5-P4/16
  - [-1, 6, C2f, [512, True]]
  - [-1, 1, Conv, [1024, 3, 2]] # 7-P5/32
  - [-1, 3, C2f, [1024, True]]
  - [-1, 1, SPPF, [1024, 5]] # 9

# YOLOv8.0n head
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]] # cat backbone P4
  - [-1, 3, C2f, [512]] # 12

  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]] # cat backbone P3
  - [-1, 3, C2f, [256]] # 15 (P3/8-small)

  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 12], 1, Concat, [1]] # cat head P4
  - [-1, 3, C2f, [512]] # 18 (P4/16-medium)

  - [-1, 1, Conv, [512, 3, 2]]
  - [[-1, 9], 1, Concat, [1]] # cat head P5
  - [-1, 3, C2f, [1024]] # 21 (P5/32-large)

  - [[15, 18, 21], 1, Detect, [nc]] # Detect(P3, P4, P5)
"""  # noqa: E501  (Ultralytics' file, its lines as they are)

# The "gradients" column of the header above (trainable parameters = all but DFL's 16).
PUBLISHED = {"n": 3_157_200, "s": 11_166_560, "m": 25_902_640, "l": 43_691_520, "x": 68_229_648}


# --- the oracle: Ultralytics' modules, written out -----------------------------------------


class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: Any = None, g: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)  # initialize_weights' values
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 3, 1)
        self.cv2 = Conv(c_, c2, 3, 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1):
        super().__init__()
        self.c = int(c2 * 0.5)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, g, e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class Concat(nn.Module):
    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, 1)


class DFL(nn.Module):
    def __init__(self, c1: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)


class Detect(nn.Module):
    """Training-mode forward: the per-level concat(box, cls) maps (no DFL, no decoding)."""

    def __init__(self, nc: int, ch: list[int]):
        super().__init__()
        self.nl, self.reg_max = len(ch), 16
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1))
            for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch
        )
        self.dfl = DFL(self.reg_max)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]


class Oracle(nn.Module):
    """parse_model's loop (tasks.py) over the YAML rows, with a fixed module table."""

    def __init__(self, d: dict[str, Any], scale: str, ch: int = 3):
        super().__init__()
        nc = d["nc"]
        if "scales" in d:
            depth, width, max_channels = d["scales"][scale]
        else:
            depth, width, max_channels = d["depth_multiple"], d["width_multiple"], math.inf
        table: dict[str, Any] = {
            "Conv": Conv,
            "C2f": C2f,
            "SPPF": SPPF,
            "Concat": Concat,
            "nn.Upsample": nn.Upsample,
            "Detect": Detect,
        }
        chs, layers, self.froms = [ch], [], []
        for i, (f, n, name, args) in enumerate(d["backbone"] + d["head"]):
            m = table[name]
            args = [nc if a == "nc" else None if a == "None" else a for a in args]
            n = max(round(n * depth), 1) if n > 1 else n
            if m in (Conv, C2f, SPPF):
                c1, c2 = chs[f], args[0]
                if c2 != nc:
                    c2 = math.ceil(min(c2, max_channels) * width / 8) * 8
                args = [c1, c2, *args[1:]]
                if m is C2f:
                    args.insert(2, n)
                    n = 1
            elif m is Concat:
                c2, args = sum(chs[x] for x in f), []
            elif m is Detect:
                args.append([chs[x] for x in f])
            else:
                c2 = chs[f]
            layers.append(nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args))
            self.froms.append(f)
            if i == 0:
                chs = []
            chs.append(c2)
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> Any:
        y: list[Any] = []
        for m, f in zip(self.model, self.froms, strict=True):
            if f != -1:
                x = y[f] if isinstance(f, int) else [x if j == -1 else y[j] for j in f]
            x = m(x)
            y.append(x)
        return x


# --- helpers ----------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str = YOLOV8, name: str = "yolov8n.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _randomised(model: nn.Module) -> nn.Module:
    """Random weights, biases and batch-norm statistics, so no layer hides behind 0 or 1."""
    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _oracle_params(model: nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


# --- the round trip ---------------------------------------------------------------------------


def test_yolov8n_imports_to_ultralytics_outputs_and_counts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, out = _write(tmp_path), tmp_path / "yolov8n.spec.yaml"
    code, stdout, err = _import(capsys, str(source), "-o", str(out), "--input", "3x128x128")
    assert code == 0, err
    assert "3,157,184 parameters" in stdout
    spec = archspec.load(out)
    oracle = _randomised(Oracle(yaml.safe_load(YOLOV8), "n"))

    # the published figures, reconciled: all parameters include DFL's 16 fixed weights
    total, trainable = _oracle_params(oracle, False), _oracle_params(oracle, True)
    assert total == PUBLISHED["n"] == 3_157_200
    assert trainable == total - DFL_PARAMS == 3_157_184
    assert spec.plan().total_params == trainable

    # every spec tensor has an Ultralytics key of the same shape; only DFL's is left over
    network = spec.build().eval()
    theirs = oracle.state_dict()
    mine = {key: ultralytics_key(key) for key in network.state_dict()}
    assert len(set(mine.values())) == len(mine)
    assert set(theirs) - set(mine.values()) == {"model.22.dfl.conv.weight"}
    network.load_state_dict({key: theirs[name] for key, name in mine.items()}, strict=True)

    torch.manual_seed(1)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        levels = oracle(x)
        got = network(x)
    # Detect's maps [B, 144, H, W] per level → tokens [B, H·W, 144], levels joined
    expected = torch.cat([level.flatten(2).transpose(1, 2) for level in levels], 1)
    assert got.shape == expected.shape == (2, 16 * 16 + 8 * 8 + 4 * 4, 4 * 16 + 80)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


SMALL = """\
nc: 3
depth_multiple: 0.5
width_multiple: 0.5
backbone:
  - [-1, 1, Conv, [32, 3, 2]]                   # 0
  - [-1, 4, Conv, [32, 3, 1]]                   # 1: two Convs, model.1.0 and model.1.1
  - [-1, 1, Conv, [64, 3, 2]]                   # 2
  - [-1, 4, C2f, [64, True, 2]]                 # 3: 2 Bottlenecks, groups 2
  - [-1, 1, SPPF, [64, 3]]                      # 4: k 3
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]  # 5
  - [[-1, 1], 1, Concat, [1]]                   # 6
  - [-1, 1, Conv, [3, 1, 1, 0]]                 # 7: c2 == nc is not scaled (parse_model)
  - [-1, 1, C2f, [16]]                          # 8: no shortcut
  - [[8, 4], 1, Detect, [nc]]                   # 9
"""


def test_multiples_repeated_convs_groups_and_explicit_padding_match_the_oracle(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """depth/width multiples (no scales:), a repeated Conv (nn.Sequential), C2f's g, SPPF's
    k, an explicit p, the c2 == nc exception and a Detect whose levels differ in width."""
    source, out = _write(tmp_path, SMALL, "small.yaml"), tmp_path / "small.spec.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out), "--input", "3x64x64")
    assert code == 0, err
    network = archspec.load(out).build().eval()
    oracle = _randomised(Oracle(yaml.safe_load(SMALL), ""))
    assert oracle.model[7].conv.out_channels == 3
    theirs = oracle.state_dict()
    mine = {key: ultralytics_key(key) for key in network.state_dict()}
    assert set(theirs) - set(mine.values()) == {"model.9.dfl.conv.weight"}
    assert "model.1.1.conv.weight" in theirs
    network.load_state_dict({key: theirs[name] for key, name in mine.items()}, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.cat([lv.flatten(2).transpose(1, 2) for lv in oracle(x)], 1)
        torch.testing.assert_close(network(x), expected, rtol=0, atol=1e-5)


def test_backbone_only_count_matches_the_oracle_backbone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The backbone alone (rows 0–9: head emptied) has the oracle's rows 0–9 parameters."""
    text = YOLOV8[: YOLOV8.index("# YOLOv8.0n head")] + "head: []\n"
    source, out = _write(tmp_path, text), tmp_path / "backbone.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out))
    assert code == 0, err
    oracle = Oracle(yaml.safe_load(YOLOV8), "n")
    backbone = sum(p.numel() for m in list(oracle.model)[:10] for p in m.parameters())
    assert archspec.load(out).plan().total_params == backbone == 1_272_656
    assert archspec.load(out).plan().output_shape == (256, 20, 20)


@pytest.mark.parametrize("scale", sorted(PUBLISHED))
def test_every_published_scale_has_ultralytics_trainable_count(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scale: str
) -> None:
    """Torch-free: each scale of yolov8.yaml checks to the header's count minus DFL's 16;
    the scale comes from the file name (yolov8s.yaml → s), as Ultralytics picks it."""
    source, out = _write(tmp_path, name=f"yolov8{scale}.yaml"), tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out))
    assert code == 0, err
    assert archspec.load(out).plan().total_params == PUBLISHED[scale] - DFL_PARAMS
    assert f"scale {scale}," in out.read_text(encoding="utf-8")


def test_scale_flag_and_the_unscaled_file_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, out = _write(tmp_path, name="yolov8.yaml"), tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out), "--scale", "s")
    assert code == 0, err
    assert archspec.load(out).plan().total_params == PUBLISHED["s"] - DFL_PARAMS
    assert archspec.load(out).name == "yolov8-s"
    code, _, err = _import(capsys, str(source), "-o", str(out))  # no scale: the first, as theirs
    assert code == 0, err
    assert "the first in scales:" in out.read_text(encoding="utf-8")
    assert archspec.load(out).plan().total_params == PUBLISHED["n"] - DFL_PARAMS
    code, _, err = _import(capsys, str(source), "-o", str(out), "--scale", "q")
    assert code == 1
    assert err.startswith(f"archspec: {source}:7:3: scale 'q' is not among scales: n, s, m, l, x")


@pytest.mark.parametrize(
    ("activation", "line"),
    [("nn.ReLU()", "      - relu"), ("nn.LeakyReLU(0.1, inplace=True)", "      - leaky_relu: 0.1")],
)
def test_a_plain_activation_override_is_mapped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, activation: str, line: str
) -> None:
    source = _write(tmp_path, f"activation: {activation}\n" + YOLOV8)
    out = tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out))
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    assert line + "\n" in text and "- silu" not in text


# --- refusals ---------------------------------------------------------------------------------

MARKER = "PWNED"


def _hostile(edit: str) -> str:
    row = "  - [-1, 1, Conv, [128, 3, 2]] # 1-P2/4"
    assert row in YOLOV8
    if edit.startswith("activation:"):
        return edit + "\n" + YOLOV8
    if edit.startswith("  n: ["):
        return YOLOV8.replace("  n: [0.33, 0.25, 1024]", edit)
    return YOLOV8.replace(row, edit)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            f"activation: __import__('os').system('touch {MARKER}')",
            ":1:13: activation \"__import__('os').system('touch PWNED')\" is not a plain "
            "activation; archspec reads the YAML as data and never evaluates it",
        ),
        (
            "activation: nn.SiLU().__class__.__init__.__globals__",
            ":1:13: activation 'nn.SiLU().__class__.__init__.__globals__' is not a plain",
        ),
        (
            f"  - [-1, 1, eval, [\"__import__('os').system('touch {MARKER}')\"]]",
            ":17:13: backbone[1]: module 'eval' has no archspec mapping — the Ultralytics "
            "importer maps Conv, C2f, SPPF, Concat, nn.Upsample, Detect",
        ),
        (
            f"  - [-1, 1, \"__import__('os').system('touch {MARKER}')\", [128]]",
            ":17:13: backbone[1]: module \"__import__('os').system('touch PWNED')\" has no",
        ),
        (
            "  - [-1, 1, Conv, [128, 3, 2, \"__import__('os')\"]]",
            ":17:31: p must be a whole number in 0…99; got \"__import__('os')\"",
        ),
        ("  - [5, 1, Conv, [128, 3, 2]]", ":17:6: from 5 is out of range for row 1"),
        ("  - [[-1, -7], 1, Concat, [1]]", ":17:11: from -7 is out of range for row 1"),
        (
            "  - [-1, 1000000000000, C2f, [128, True]]",
            ":17:10: 1,000,000,000,000 repeats are more than the layer limit of 10,000",
        ),
        (
            "  - [-1, 5000, C2f, [128, True]]",
            ":17:10: the model expands to more than 10,000 layers",
        ),
        (
            "  - [-1, 1, Conv, [100000000000, 3, 2]]",  # capped by max_channels 1024: fine
            None,
        ),
        (
            "  n: [0.33, 60000, 1024]",
            ":16:20: 3,840,000 output channels are more than 65,536 — lower the width",
        ),
        ("  n: [0.33, 0.25, 1.0e+300]", ":7:19: 1e+300 is out of range (0, 65,536]"),
    ],
)
def test_hostile_yaml_is_refused_located_and_nothing_runs(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: str,
    message: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    source, out = _write(tmp_path, _hostile(edit), "yolov8n.yaml"), tmp_path / "out.yaml"
    code, stdout, err = _import(capsys, "yolov8n.yaml", "-o", str(out))
    if message is None:  # Ultralytics caps it too: min(c2, max_channels) * width
        assert code == 0, err
        assert '  - Conv: {c: 256, k: 3, s: 2, p: 1}\n    name: "1"' in out.read_text()
        return
    assert code == 1, err
    assert stdout == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"archspec: yolov8n.yaml{message}"), err
    assert not out.exists()
    assert not (tmp_path / MARKER).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_every_unmapped_module_is_listed_one_line_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = YOLOV8.replace("[-1, 3, C2f, [128, True]]", "[-1, 3, C3k2, [128, True]]").replace(
        "[[15, 18, 21], 1, Detect, [nc]]", "[[15, 18, 21], 1, Segment, [nc, 32, 256]]"
    )
    source, out = _write(tmp_path, text), tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out), "--max-layers", "400")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"archspec: {source}:18:13: backbone[2]: module 'C3k2' has no")
    assert lines[1].startswith(f"{source}:45:23: head[12]: module 'Segment' has no")
    assert not out.exists()


def test_the_layer_limit_counts_expanded_layers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, out = _write(tmp_path), tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out), "--max-layers", "223")
    assert code == 1
    assert "the model expands to more than 223 layers (row 22 reaches 224)" in err
    assert "--max-layers" in err
    assert not out.exists()
    code, _, err = _import(capsys, str(source), "-o", str(out), "--max-layers", "224")
    assert code == 0, err


def test_weights_and_trust_code_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, out = _write(tmp_path), tmp_path / "out.yaml"
    for flags in (["--weights", "w.safetensors"], ["--trust-code"], ["--partial"]):
        code, _, err = _import(capsys, str(source), "-o", str(out), *flags)
        assert code == 2 and "are not for an Ultralytics model YAML" in err
        assert not out.exists()


def test_a_yaml_without_backbone_and_head_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = _write(tmp_path, "name: x\nlayers: [relu]\n", "spec.yaml")
    code, _, err = _import(capsys, str(source), "-o", str(tmp_path / "out.yaml"))
    assert code == 1
    assert err.startswith(f"archspec: {source}:1:1: not an Ultralytics model YAML")


def test_an_input_not_divisible_by_the_strides_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, out = _write(tmp_path), tmp_path / "out.yaml"
    code, _, err = _import(capsys, str(source), "-o", str(out), "--input", "3x100x100")
    assert code == 1
    assert "the imported spec does not check" in err
    assert not out.exists()
