"""An Ultralytics model YAML (``yolov8n.yaml``) → spec text, read as data only.

Ultralytics' own ``parse_model`` looks each module name up in ``globals()`` and runs
``eval`` on the ``activation:`` string (it sets ``Conv.default_act`` from it), so a model YAML
can run code. Here the file goes through archspec's safe YAML loader (plain types only, size
and nesting limits, a source map): a module name maps to archspec layers through a fixed
table, the activation through a fixed table of plain ``nn.X()`` names, and anything else is a
located ``file:line:col`` error before anything is written. Nothing is imported or run;
ultralytics need not be installed.

The channel and depth arithmetic is Ultralytics' ``parse_model``'s: a row's repeats become
``max(round(n * depth), 1)`` when ``n > 1``, a channel count ``c2`` (unless it equals ``nc``)
becomes ``make_divisible(min(c2, max_channels) * width, 8)``; ``depth, width, max_channels``
come from ``scales:`` (the scale chosen by ``--scale`` or the file name, ``yolov8n.yaml`` → n)
or ``depth_multiple``/``width_multiple``.

Mapped: ``Conv`` (conv without bias, batch norm eps 1e-3 momentum 0.03 as Ultralytics'
``initialize_weights`` sets them, the activation), ``C2f`` (its Bottlenecks), ``SPPF``,
``Concat`` (channels), ``nn.Upsample`` (nearest, whole scale) and ``Detect``'s convolution
stack. Layer ``i`` is named ``"i"``, so a key reads like Ultralytics' ``model.i.…``
(:func:`ultralytics_key` gives it). Detect becomes the raw training-mode head as one output:
per level the box (4·reg_max) and class (nc) maps are concatenated on channels, turned into
tokens and the levels joined along the token axis, ``[Σ H·W, 4·16 + nc]`` — no DFL
(whose 1×1 convolution holds 16 fixed weights) and no anchor decoding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.errors import DataPath, Location, Problem, SpecError
from archspec.loader import source

REG_MAX = 16  # Detect's DFL bins (fixed in Ultralytics' Detect)
DFL_PARAMS = REG_MAX  # DFL's Conv2d(16, 1, 1, bias=False): fixed, not in the spec
MAX_CHANNELS = 65_536  # the largest Ultralytics model has 1,280 channels
DEFAULT_SIZE = 640  # Ultralytics' default image size
MODULES = ("Conv", "C2f", "SPPF", "Concat", "nn.Upsample", "Detect")
_SCALE = re.compile(r"yolo[v]?\d+([nslmx])")
_ACTIVATIONS = {
    "SiLU": "silu",
    "ReLU": "relu",
    "ReLU6": "relu6",
    "Hardswish": "hardswish",
    "GELU": "gelu",
    "Mish": "mish",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "ELU": "elu",
    "Identity": "identity",
    "LeakyReLU": "leaky_relu",
}
_ACT = re.compile(r"^(?:torch\.)?nn\.([A-Za-z0-9]+)\((.*)\)$")
_NUMBER = re.compile(r"^(?:negative_slope=)?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


def ultralytics_key(key: str) -> str:
    """A spec ``state_dict`` key → the key Ultralytics' model gives the same tensor.

    >>> ultralytics_key("2.m.0.cv1.conv.weight"), ultralytics_key("22_cv3_1.2.bias")
    ('model.2.m.0.cv1.conv.weight', 'model.22.cv3.1.2.bias')
    """
    return "model." + re.sub(r"^(\d+)_(cv[23])_(\d+)\.", r"\1.\2.\3.", key)


@dataclass
class Scaling:
    scale: str
    depth: float
    width: float
    max_channels: float
    guessed: bool = False  # no --scale, none in the file name: the first of scales:


@dataclass
class _Out:
    """The spec being written: its layers' lines, the blocks they use, a layer count."""

    lines: list[str] = field(default_factory=list)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    layers: int = 0


class Fail(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def is_ultralytics(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("backbone"), list)
        and isinstance(data.get("head"), list)
    )


def read(
    path: Path,
    *,
    scale: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_layers: int = 10_000,
    name: str | None = None,
) -> tuple[str, Scaling]:
    """The spec text for the model YAML at ``path`` and the scaling used. Raises
    :class:`SpecError` (located, one problem per unsupported module) and writes nothing."""
    doc = source.read(path)
    return _Reader(doc, str(path), max_layers).spec(path, scale, input_shape, name)


class _Reader:
    def __init__(self, doc: source.Document, file: str, max_layers: int) -> None:
        self.data, self.map, self.file = doc.data, doc.source, file
        self.max_layers = max_layers

    def at(self, path: DataPath) -> Location:
        return self.map.locate(path) or Location(self.file, 1, 1)

    def fail(self, path: DataPath, what: str, hint: str = "") -> Fail:
        return Fail(Problem(what, hint, self.at(path)))

    def spec(
        self,
        path: Path,
        scale: str | None,
        input_shape: tuple[int, ...] | None,
        name: str | None,
    ) -> tuple[str, Scaling]:
        try:
            return self._spec(path, scale, input_shape, name)
        except Fail as exc:
            raise SpecError([exc.problem]) from None

    def _spec(
        self,
        path: Path,
        scale: str | None,
        input_shape: tuple[int, ...] | None,
        name: str | None,
    ) -> tuple[str, Scaling]:
        data = self.data
        if not is_ultralytics(data):
            raise self.fail(
                (),
                "not an Ultralytics model YAML: it needs `backbone:` and `head:` lists",
                "give a yolov8n.yaml-style file ([from, repeats, module, args] rows)",
            )
        nc = self._nc()
        scaling = self._scaling(path, scale)
        act = self._activation()
        rows = [("backbone", i, row) for i, row in enumerate(data["backbone"])]
        rows += [("head", i, row) for i, row in enumerate(data["head"])]
        if not rows:
            raise self.fail(("backbone",), "the model has no rows")
        if len(rows) > self.max_layers:
            raise self.fail(
                ("head",),
                f"{len(rows):,} rows are more than the layer limit of {self.max_layers:,}",
                "raise it with --max-layers",
            )
        unsupported = [
            Problem(
                f"{section}[{i}]: module {_short(row[2])} has no archspec mapping",
                "the Ultralytics importer maps " + ", ".join(MODULES),
                self.at((section, i, 2)),
            )
            for section, i, row in rows
            if isinstance(row, list) and len(row) == 4 and row[2] not in MODULES
        ]
        if unsupported:
            raise SpecError(unsupported)
        channels_in = self._channels_in(input_shape)
        out = _Out()
        _conv_block(out, act)
        ch: list[int] = []
        for index, (section, i, row) in enumerate(rows):
            c2 = self._row(out, index, (section, i), row, ch, channels_in, nc, scaling, rows)
            ch.append(c2)
            if out.layers > self.max_layers:
                raise self.fail(
                    (section, i, 1),
                    f"the model expands to more than {self.max_layers:,} layers "
                    f"(row {index} reaches {out.layers:,})",
                    "lower the repeats or raise the layer limit (--max-layers)",
                )
        shape = input_shape or (channels_in, DEFAULT_SIZE, DEFAULT_SIZE)
        label = name or _name(path, scaling)
        return self._text(path, label, shape, scaling, nc, out, rows), scaling

    # --- top-level keys -------------------------------------------------------------------

    def _nc(self) -> int | None:
        nc = self.data.get("nc")
        if nc is None:
            return None
        if not _whole(nc) or not 1 <= nc <= MAX_CHANNELS:
            raise self.fail(("nc",), f"nc must be a whole number of classes; received {nc!r}")
        return int(nc)

    def _scaling(self, path: Path, scale: str | None) -> Scaling:
        scales = self.data.get("scales")
        if scales is None:
            if scale is not None:
                raise self.fail((), f"--scale {scale}: the file has no `scales:`")
            depth = self._number(("depth_multiple",), self.data.get("depth_multiple", 1.0))
            width = self._number(("width_multiple",), self.data.get("width_multiple", 1.0))
            return Scaling("", depth, width, math.inf)
        if not isinstance(scales, dict) or not scales:
            raise self.fail(("scales",), "scales: must map n/s/m/l/x to [depth, width, max]")
        guessed = False
        if scale is None:
            found = _SCALE.search(path.stem)
            scale = found.group(1) if found else None
        if scale is None:  # as Ultralytics: the first scale, with a warning
            scale, guessed = str(next(iter(scales))), True
        if scale not in scales:
            raise self.fail(
                ("scales",),
                f"scale {scale!r} is not among scales: {', '.join(map(str, scales))}",
                "pass --scale with one of them",
            )
        value = scales[scale]
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(("scales", scale), "a scale is [depth, width, max_channels]")
        depth, width, top = (self._number(("scales", scale, k), v) for k, v in enumerate(value))
        return Scaling(scale, depth, width, top, guessed)

    def _number(self, path: DataPath, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number; received {value!r}")
        if not 0 < value <= MAX_CHANNELS or not math.isfinite(value):
            raise self.fail(path, f"{value!r} is out of range (0, {MAX_CHANNELS:,}]")
        return float(value)

    def _activation(self) -> tuple[str, float | None]:
        act = self.data.get("activation")
        if act is None:
            return "silu", None
        known = ", ".join(f"nn.{k}()" for k in _ACTIVATIONS)
        problem = self.fail(
            ("activation",),
            f"activation {_short(act)} is not a plain activation; archspec reads the "
            "YAML as data and never evaluates it",
            f"use one of {known} (LeakyReLU may take a slope)",
        )
        match = _ACT.match(act.replace(" ", "")) if isinstance(act, str) else None
        if match is None or match.group(1) not in _ACTIVATIONS:
            raise problem
        args = [a for a in match.group(2).split(",") if a and a != "inplace=True"]
        kind = _ACTIVATIONS[match.group(1)]
        if not args:
            return kind, (0.01 if kind == "leaky_relu" else None)
        number = _NUMBER.match(args[0]) if kind == "leaky_relu" and len(args) == 1 else None
        if number is None:
            raise problem
        return kind, float(number.group(1))

    def _channels_in(self, input_shape: tuple[int, ...] | None) -> int:
        ch = self.data.get("ch", 3)
        if not _whole(ch) or not 1 <= ch <= MAX_CHANNELS:
            raise self.fail(("ch",), f"ch must be a whole number of channels; received {ch!r}")
        if input_shape is not None:
            if len(input_shape) != 3:
                raise self.fail((), f"--input {input_shape} is not C×H×W")
            return input_shape[0]
        return int(ch)

    # --- rows -----------------------------------------------------------------------------

    def _row(
        self,
        out: _Out,
        index: int,
        where: tuple[str, int],
        row: Any,
        ch: list[int],
        channels_in: int,
        nc: int | None,
        s: Scaling,
        rows: list[tuple[str, int, Any]],
    ) -> int:
        if not isinstance(row, list) or len(row) != 4:
            raise self.fail(where, "a row is [from, repeats, module, args]")
        f, n, module, args = row
        if not isinstance(args, list):
            raise self.fail((*where, 3), "args must be a list")
        args = [self._arg((*where, 3, k), a, nc) for k, a in enumerate(args)]
        if not _whole(n) or n < 1:
            raise self.fail((*where, 1), f"repeats must be a whole number ≥ 1; received {n!r}")
        if n > self.max_layers:
            raise self.fail(
                (*where, 1),
                f"{n:,} repeats are more than the layer limit of {self.max_layers:,}",
                "lower the repeats or raise the layer limit (--max-layers)",
            )
        n = max(round(n * s.depth), 1) if n > 1 else n
        sources = self._from(where, f, index)

        def channels(x: str) -> int:
            return channels_in if x == "input" else ch[int(x)]

        c1 = channels(sources[0])
        label = f'"{index}"'
        lines = out.lines
        if module == "Detect":
            if index != len(rows) - 1:
                raise self.fail(
                    (*where, 2), "Detect must be the last row (its output is the model's)"
                )
            return self._detect(
                out, index, where, sources, args, nc, [channels(x) for x in sources]
            )
        if module == "Concat":
            dim = self._int((*where, 3, 0), args[0] if args else 1, "dimension")
            if dim != 1 or len(args) > 1:
                raise self.fail((*where, 3), "Concat joins channels only: args [1]")
            if len(sources) < 2:
                raise self.fail((*where, 0), "Concat needs a list of at least two sources")
            lines += ["  - concat:", f"    from: [{', '.join(_q(x) for x in sources)}]"]
            lines.append(f"    name: {label}")
            out.layers += 1
            return sum(channels(x) for x in sources)
        if len(sources) != 1:
            raise self.fail((*where, 0), f"{module} reads one layer; received {f!r}")
        repeat = [f"    repeat: {n}"] if n > 1 else []
        previous = str(index - 1) if index else "input"
        reads = [f"    from: {_q(sources[0])}"] if sources[0] != previous else []
        if module == "nn.Upsample":
            scale = self._upsample(where, args)
            lines += [f"  - upsample: {{scale: {scale}, mode: nearest}}", *reads, *repeat]
            lines.append(f"    name: {label}")
            out.layers += n
            return c1
        c2 = self._c2((*where, 3, 0), args, nc, s)
        if module == "Conv":
            given = self._conv_args(where, args)
            lines += [f"  - Conv: {_mapping({'c': c2, **given})}", *reads, *repeat]
            out.layers += 3 * n
        elif module == "SPPF":
            if len(args) > 2:
                raise self.fail((*where, 3), "SPPF takes [c2, k]")
            k = self._int((*where, 3, 1), args[1] if len(args) > 1 else 5, "k", 1, 99)
            if k % 2 == 0:
                raise self.fail((*where, 3, 1), f"SPPF's k must be odd; received {k}")
            _sppf_block(out)
            given = {"c": c1 // 2, "c2": c2, **({"k": k} if k != 5 else {})}
            lines += [f"  - SPPF: {_mapping(given)}", *reads, *repeat]
            out.layers += 10 * n
        else:  # C2f: its repeats are its Bottlenecks
            if len(args) > 4:
                raise self.fail((*where, 3), "C2f takes [c2, shortcut, g, e]")
            shortcut = args[1] if len(args) > 1 else False
            if not isinstance(shortcut, bool):
                raise self.fail((*where, 3, 1), f"shortcut must be True or False; got {shortcut!r}")
            g = self._int((*where, 3, 2), args[2] if len(args) > 2 else 1, "g", 1, MAX_CHANNELS)
            e = args[3] if len(args) > 3 else 0.5
            if isinstance(e, bool) or not isinstance(e, int | float) or not 0 < e <= 4:
                raise self.fail((*where, 3, 3), f"e must be a number in (0, 4]; received {e!r}")
            c = int(c2 * e)
            if c < 1:
                raise self.fail((*where, 3), f"C2f's hidden width int({c2} * {e}) is 0")
            block = _c2f_block(out, n)
            given = {"c": c, "c2": c2}
            if shortcut:
                given["shortcut"] = True
            if g != 1:
                given["g"] = g
            lines += [f"  - {block}: {_mapping(given)}", *reads]
            out.layers += 9 + (7 if shortcut else 6) * n  # a skipped add is no layer
        lines.append(f"    name: {label}")
        return c2

    def _arg(self, path: DataPath, value: Any, nc: int | None) -> Any:
        """An argument as Ultralytics reads it, without eval: ``nc`` and literal names."""
        if isinstance(value, str):
            if value == "nc":
                if nc is None:
                    raise self.fail(path, "argument 'nc' but the file has no nc:")
                return nc
            literal = {"None": None, "True": True, "False": False}
            return literal.get(value, value)
        if value is not None and not isinstance(value, bool | int | float):
            raise self.fail(path, f"an argument must be a number, a name or None; got {value!r}")
        return value

    def _from(self, where: tuple[str, int], f: Any, index: int) -> list[str]:
        """Source layer names (``"input"`` or an earlier index) of ``from``."""
        values = f if isinstance(f, list) else [f]
        if not values:
            raise self.fail((*where, 0), "from is an empty list")
        names = []
        for k, x in enumerate(values):
            path = (*where, 0, k) if isinstance(f, list) else (*where, 0)
            if not _whole(x):
                raise self.fail(path, f"from must be a layer index or a list of them; got {x!r}")
            j = index + x if x < 0 else x
            if x == -1 and index == 0:
                names.append("input")
            elif not 0 <= j < index:
                raise self.fail(
                    path,
                    f"from {x} is out of range for row {index} (rows 0…{index - 1} come before)",
                    "use -1 for the previous row or the index of an earlier one",
                )
            else:
                names.append(str(j))
        return names

    def _int(
        self, path: DataPath, value: Any, what: str, low: int = 0, high: int = MAX_CHANNELS
    ) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _whole(value) or not low <= value <= high:
            raise self.fail(path, f"{what} must be a whole number in {low}…{high}; got {value!r}")
        return int(value)

    def _c2(self, path: DataPath, args: list[Any], nc: int | None, s: Scaling) -> int:
        if not args:
            raise self.fail(path[:-1], "the first argument is the output channels; none given")
        c2 = self._int(path, args[0], "the output channels", 1, 2**62)
        if c2 != nc:
            c2 = math.ceil(min(c2, s.max_channels) * s.width / 8) * 8  # make_divisible(…, 8)
        if not 1 <= c2 <= MAX_CHANNELS:
            raise self.fail(
                path, f"{c2:,} output channels are more than {MAX_CHANNELS:,}", "lower the width"
            )
        return c2

    def _conv_args(self, where: tuple[str, int], args: list[Any]) -> dict[str, int]:
        """Conv(c2, k=1, s=1, p=None, g=1, d=1, act=True): the spec's arguments besides c."""
        if len(args) > 7:
            raise self.fail((*where, 3), "Conv takes [c2, k, s, p, g, d, act]")
        path = (*where, 3)
        k = self._int((*path, 1), args[1] if len(args) > 1 else 1, "k", 1, 99)
        stride = self._int((*path, 2), args[2] if len(args) > 2 else 1, "s", 1, 99)
        g = self._int((*path, 4), args[4] if len(args) > 4 else 1, "g", 1, MAX_CHANNELS)
        d = self._int((*path, 5), args[5] if len(args) > 5 else 1, "d", 1, 99)
        p_arg = args[3] if len(args) > 3 else None
        reach = d * (k - 1) + 1 if d > 1 else k
        p = reach // 2 if p_arg is None else self._int((*path, 3), p_arg, "p", 0, 99)
        if len(args) > 6 and args[6] is not True:
            raise self.fail(
                (*path, 6), "Conv's act argument: only True (the model's activation) is mapped"
            )
        given = {"k": k, "s": stride, "p": p, "g": g, "d": d}
        defaults = {"k": 1, "s": 1, "p": 0, "g": 1, "d": 1}
        return {key: v for key, v in given.items() if v != defaults[key]}

    def _upsample(self, where: tuple[str, int], args: list[Any]) -> int:
        size, scale, mode = (args + [None, None, "nearest"][len(args) :])[:3]
        if len(args) > 3 or size is not None or mode != "nearest":
            raise self.fail(
                (*where, 3), "nn.Upsample: only [None, scale, 'nearest'] is mapped (size is not)"
            )
        return self._int((*where, 3, 1), scale, "scale_factor", 1, 64)

    def _detect(
        self,
        out: _Out,
        index: int,
        where: tuple[str, int],
        sources: list[str],
        args: list[Any],
        nc: int | None,
        ch: list[int],
    ) -> int:
        classes = args[0] if args else nc
        if classes is None or not _whole(classes) or not 1 <= classes <= MAX_CHANNELS:
            raise self.fail((*where, 3), "Detect's argument is the number of classes (nc)")
        if len(args) > 1:
            raise self.fail((*where, 3), "Detect takes [nc] (the reg_max/end2end variants not)")
        box = max(16, ch[0] // 4, REG_MAX * 4)
        cls = max(ch[0], min(classes, 100))
        _detect_block(out)
        lines = out.lines
        for branch, c, width in (("cv2", box, 4 * REG_MAX), ("cv3", cls, classes)):
            for level, x in enumerate(sources):
                lines += [
                    f"  - DetectBranch: {{c: {c}, out: {width}}}",
                    f"    from: {_q(x)}",
                    f"    name: {index}_{branch}_{level}",
                ]
                out.layers += 7
        for level in range(len(sources)):
            lines += [
                "  - concat:",
                f"    from: [{index}_cv2_{level}, {index}_cv3_{level}]",
                f"    name: {index}_level{level}",
                "  - to_tokens:",
                f"    name: {index}_tokens{level}",
            ]
            out.layers += 2
        tokens = ", ".join(f"{index}_tokens{level}" for level in range(len(sources)))
        lines += ["  - concat: {axis: 0}", f"    from: [{tokens}]", f'    name: "{index}"']
        out.layers += 1
        return 4 * REG_MAX + classes

    def _text(
        self,
        path: Path,
        label: str,
        shape: tuple[int, ...],
        s: Scaling,
        nc: int | None,
        out: _Out,
        rows: list[tuple[str, int, Any]],
    ) -> str:
        how = (
            f"scale {s.scale} (the first in scales:, as Ultralytics assumes without one)"
            if s.guessed
            else f"scale {s.scale}"
            if s.scale
            else "depth/width multiples"
        )
        top = "none" if math.isinf(s.max_channels) else f"{s.max_channels:g}"
        head = [
            f"# Imported from the Ultralytics model YAML {path.name}: {how}, depth {s.depth:g},",
            f"# width {s.width:g}, max_channels {top}. Layer i is Ultralytics' model.i",
            "# (state_dict key 'model.' + key; Detect's 'i_cv2_j.' is 'i.cv2.j.').",
        ]
        if rows[-1][2][2] == "Detect":
            head += [
                "# Output: Detect's raw training-mode head as one tensor: per level concat(box",
                f"# 4*{REG_MAX}, classes {nc}) on channels → tokens, levels joined along the token",
                "# axis. No DFL (its fixed 16-weight 1x1 conv) and no anchor decoding.",
            ]
        text = [*head, f"name: {label}", f"input: [{', '.join(map(str, shape))}]", "blocks:"]
        for block in out.blocks.values():
            text += block
        return "\n".join([*text, "layers:", *out.lines]) + "\n"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _q(name: str) -> str:
    return name if name == "input" or not name.isdigit() else f'"{name}"'


def _mapping(values: dict[str, Any]) -> str:
    def show(v: Any) -> str:
        return "true" if v is True else "false" if v is False else str(v)

    return "{" + ", ".join(f"{k}: {show(v)}" for k, v in values.items()) + "}"


def _name(path: Path, s: Scaling) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem) or "ultralytics"
    if s.scale and not _SCALE.search(stem):
        return f"{stem}-{s.scale}"
    return stem


def _title(name: str, comment: str) -> str:
    return f"  {name}:".ljust(31) + f"# {comment}"


def _conv_block(out: _Out, act: tuple[str, float | None]) -> None:
    kind, value = act
    activation = f"      - {kind}: {value:g}" if value is not None else f"      - {kind}"
    out.blocks["Conv"] = [
        _title("Conv", "Ultralytics' Conv: conv (no bias), batch norm, activation"),
        "    args: {c: ~, k: 1, s: 1, p: 0, g: 1, d: 1}",
        "    layers:",
        "      - conv: {depth: c, kernel: k, stride: s, padding: p, groups: g, dilation: d, "
        "bias: false}",
        "        name: conv",
        "      - batchnorm: {eps: 0.001, momentum: 0.03}",
        "        name: bn",
        activation,
    ]


def _sppf_block(out: _Out) -> None:
    if "SPPF" in out.blocks:
        return
    pools = []
    for y in ("y1", "y2", "y3"):
        pools += [
            "      - pool: {kind: max, size: k, stride: 1, padding: k // 2}",
            f"        name: {y}",
        ]
    out.blocks["SPPF"] = [
        _title("SPPF", "cv1, three chained max pools, concat of all four, cv2"),
        "    args: {c: ~, c2: ~, k: 5}",
        "    layers:",
        "      - Conv: c",
        "        name: cv1",
        *pools,
        "      - concat:",
        "        from: [cv1, y1, y2, y3]",
        "      - Conv: c2",
        "        name: cv2",
    ]


def _c2f_block(out: _Out, n: int) -> str:
    """The C2f block with ``n`` Bottlenecks (and the blocks it uses); its name."""
    name = f"C2f_{n}"
    if name in out.blocks:
        return name
    if "Bottleneck" not in out.blocks:
        out.blocks["Bottleneck"] = [
            _title("Bottleneck", "two 3x3 Convs, plus the input when shortcut"),
            "    args: {c: ~, g: 1, shortcut: false}",
            "    layers:",
            "      - Conv: {c: c, k: 3, p: 1}",
            "        name: cv1",
            "      - Conv: {c: c, k: 3, p: 1, g: g}",
            "        name: cv2",
            "      - add:",
            "        from: [cv2, input]",
            "        when: shortcut",
        ]
    chain = []
    for i in range(n):
        chain += [
            "      - Bottleneck: {c: c, g: g, shortcut: shortcut}",
            *([f'        from: "{i - 1}"'] if i > 0 else []),
            f'        name: "{i}"',
        ]
    every = ", ".join(["input", *(f'"{i}"' for i in range(n))])
    out.blocks[f"C2f_m{n}"] = [
        _title(
            f"C2f_m{n}", f"C2f's {n} Bottleneck(s), each fed the last; its input and all outputs"
        ),
        "    args: {c: ~, g: 1, shortcut: false}",
        "    layers:",
        *chain,
        "      - concat:",
        f"        from: [{every}]",
    ]
    out.blocks[name] = [
        _title(name, "cv1, chunk 2, the Bottlenecks on the second half, concat, cv2"),
        "    args: {c: ~, c2: ~, g: 1, shortcut: false}",
        "    layers:",
        "      - Conv: 2 * c",
        "        name: cv1",
        "      - chunk: 2",
        "        outputs: [a, b]",
        f"      - C2f_m{n}: {{c: c, g: g, shortcut: shortcut}}",
        "        from: b",
        "        name: m",
        "      - concat:",
        "        from: [a, m]",
        "      - Conv: c2",
        "        name: cv2",
    ]
    return name


def _detect_block(out: _Out) -> None:
    out.blocks["DetectBranch"] = [
        _title("DetectBranch", "one level of Detect's cv2 (box) or cv3 (classes)"),
        "    args: {c: ~, out: ~}",
        "    layers:",
        "      - Conv: {c: c, k: 3, p: 1}",
        '        name: "0"',
        "      - Conv: {c: c, k: 3, p: 1}",
        '        name: "1"',
        "      - conv: {depth: out, kernel: 1}",
        '        name: "2"',
    ]
