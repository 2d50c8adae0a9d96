"""Import a source, check the spec it gives, and write it (and its weights) atomically."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archspec import api, io
from archspec.errors import SpecError
from archspec.importers.fold import fold
from archspec.importers.graph import Imported, ImportFailed, Unsupported
from archspec.language.load import DEFAULT_MAX_LAYERS

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class Result:
    """What was written, for the command to report."""

    spec: api.Spec
    text: str
    names: dict[str, str]  # spec layer name → source path, for layers with weights
    stopped: Unsupported | None = None  # --partial: the first unsupported op
    tensors: int = 0
    max_diff: float | None = None
    # the source's output is the same for different inputs (e.g. torchvision's ViT, whose
    # head starts at zero): equal outputs then say little about the layers before it
    constant_output: bool = False
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said on stderr ("captured with …")

    @property
    def renamed(self) -> dict[str, str]:
        return {name: path for name, path in self.names.items() if name != path}


def checked(imported: Imported, out: Path, partial: bool) -> Result:
    """Fold the ops into spec text and load it as archspec would; refuse unsupported ops."""
    if imported.unsupported and not partial:
        raise ImportFailed(
            [u.line() for u in imported.unsupported],
            f"{len(imported.unsupported)} operation(s) have no archspec kind; "
            "--partial writes the spec up to the first one",
        )
    if not imported.ops:
        raise ImportFailed(["<source>: no layers to import"])
    text, names = fold(imported)
    try:
        spec = api.loads(text, str(out))
    except SpecError as exc:
        raise ImportFailed(
            [f"the imported spec does not check: {p.render()}" for p in exc.problems],
            "this source uses an operation in a way archspec cannot express yet",
        ) from exc
    stopped = imported.unsupported[0] if imported.unsupported else None
    return Result(spec, text, names, stopped)


def import_torch(
    source: str,
    input_shape: tuple[int, ...],
    out: Path,
    weights_out: Path | None,
    partial: bool,
    name: str | None = None,
    capture: str = "auto",
) -> Result:
    """``pkg.module:factory`` → a checked spec whose built network (with the imported
    weights) gives the module's outputs; writes the spec (and the weights) atomically.
    ``capture``: ``fx`` (torch.fx.symbolic_trace), ``export`` (torch.export) or ``auto``
    (fx, and export where fx cannot trace the forward pass)."""
    from safetensors.torch import save_file

    from archspec.importers import export_capture, torch_source

    model = torch_source.load_factory(source)
    label = name or _default_name(source.partition(":")[2] or source)
    notes: list[str] = []
    captured: export_capture.Captured | None = None
    if capture == "export":
        captured = export_capture.capture(model, input_shape, label, partial)
    else:
        try:
            imported = torch_source.trace(model, input_shape, label, partial)
        except torch_source.TraceFailed as exc:
            if capture == "fx":
                raise
            try:
                captured = export_capture.capture(model, input_shape, label, partial)
            except export_capture.ExportFailed as failed:
                raise ImportFailed(
                    [
                        f"<forward>: torch.fx cannot trace the model ({exc.reason}) and "
                        f"torch.export cannot capture it ({failed.reason})"
                    ],
                    failed.hint,
                ) from failed
            notes.append(
                f"torch.fx cannot trace the model ({_short(exc.reason)}); captured it with "
                "torch.export instead"
            )
    if captured is not None:
        imported = captured.imported
        if captured.vanished:
            shown = ", ".join(captured.vanished[:3])
            more = f" and {len(captured.vanished) - 3} more" if len(captured.vanished) > 3 else ""
            notes.append(
                f"torch.export saw no operation of {shown}{more} in eval mode: the spec has no "
                "layer for them, so training the spec differs from training the module"
            )
    result = checked(imported, out, partial)
    result.notes = notes
    if captured is not None:
        tensors = export_capture.weights(captured, result.names)
    else:
        tensors = torch_source.weights(model, result.names)
    network = result.spec.build().eval()
    mine = network.state_dict()
    if set(mine) != set(tensors) or any(mine[k].shape != v.shape for k, v in tensors.items()):
        missing = sorted(set(mine) ^ set(tensors))[:3]
        raise AssertionError(f"imported weights do not fit the built spec: {missing}")
    network.load_state_dict(tensors, strict=True)
    reference = None if captured is None else functools.partial(export_capture.reference, captured)
    result.max_diff, result.constant_output = _compare(
        model, network, imported, input_shape, reference
    )
    result.tensors = len(tensors)
    if captured is not None:
        result.left_out = export_capture.left_out(captured, result.names)
    else:
        result.left_out = torch_source.left_out(model, result.names)
    io.write_text(out, result.text)
    if weights_out is not None:
        io.write_with(weights_out, lambda tmp: save_file(tensors, str(tmp), {"format": "pt"}))
    return result


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:157] + "…"


def import_keras(path: Path, out: Path, partial: bool, name: str | None = None) -> Result:
    """A Keras ``model.to_json()`` file → a checked spec (architecture only), written."""
    from archspec.importers import keras

    imported = keras.read(path, partial, name)
    result = checked(imported, out, partial)
    io.write_text(out, result.text)
    return result


def import_onnx(
    path: Path,
    out: Path,
    weights_out: Path | None,
    partial: bool,
    name: str | None = None,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> Result:
    """A ``.onnx`` file → a checked spec (read as data, never run); with ``weights_out`` its
    initializers under the built spec's ``state_dict`` keys, loaded into it to prove the fit."""
    from archspec.importers import onnx_source

    read = onnx_source.read(path, partial, name, max_layers)
    result = checked(read.imported, out, partial)
    result.left_out = read.left_out
    if weights_out is not None:
        import torch
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for spec_name, source in result.names.items():
            for key, array in read.tensors[source].items():
                tensors[f"{spec_name}.{key}"] = torch.from_numpy(array.copy()).contiguous()
        network = result.spec.build().eval()
        mine = network.state_dict()
        for key, value in mine.items():
            if key.endswith(".num_batches_tracked") and key not in tensors:
                tensors[key] = value.clone()
        wrong = sorted(set(mine) ^ set(tensors)) + [
            k for k, v in tensors.items() if k in mine and mine[k].shape != v.shape
        ]
        if wrong:
            raise ImportFailed(
                [f"the imported weights do not fit the spec: {', '.join(wrong[:3])}"],
                "a weight was mapped wrongly: please report it with the model",
            )
        network.load_state_dict(tensors, strict=True)
        result.tensors = len(tensors)
        io.write_text(out, result.text)
        io.write_with(weights_out, lambda tmp: save_file(tensors, str(tmp), {"format": "pt"}))
        return result
    io.write_text(out, result.text)
    return result


def import_ultralytics(
    path: Path,
    out: Path,
    *,
    scale: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_layers: int = 10_000,
    name: str | None = None,
) -> Result:
    """An Ultralytics model YAML → a checked spec (architecture only), written."""
    from archspec.importers import ultralytics

    text, _ = ultralytics.read(
        path, scale=scale, input_shape=input_shape, max_layers=max_layers, name=name
    )
    try:
        spec = api.loads(text, str(out), max_layers=max_layers)
    except SpecError as exc:
        raise ImportFailed(
            [f"the imported spec does not check: {p.render()}" for p in exc.problems],
            "the model's shapes do not fit (an input size not divisible by its strides?)",
        ) from exc
    io.write_text(out, text)
    return Result(spec, text, {})


def _compare(
    model: nn.Module,
    network: nn.Module,
    imported: Imported,
    shape: tuple[int, ...],
    reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[float, bool]:
    """The largest difference between the source's value and the spec's output, and
    whether the source gave the same output for both (different, random) inputs.
    ``reference`` computes the source's value (default: the fx graph's node)."""
    import torch
    import torch.fx as fx

    key = imported.output
    values: dict[str, torch.Tensor] = {}

    class Capture(fx.Interpreter):
        def run_node(self, n: fx.Node) -> object:
            value = super().run_node(n)
            if n.name == key:
                values[key] = value
            return value

    torch.manual_seed(0)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        if reference is None:
            Capture(fx.symbolic_trace(model.eval())).run(x)
        else:
            values[key] = reference(x)
        got = network(x)
    expected = values[key]
    if got.shape != expected.shape:
        raise AssertionError(
            f"the spec gives {tuple(got.shape)}, the source {tuple(expected.shape)}"
        )
    diff = float((got - expected).abs().max())
    scale = float(expected.abs().max()) + 1.0
    if not diff <= 1e-4 * scale:
        raise ImportFailed(
            [f"the imported spec computes different outputs (max |difference| {diff:.3g})"],
            "an operation was mapped wrongly: please report it with the model",
        )
    return diff, bool(torch.equal(expected[0], expected[1]))


def _default_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-") or "imported"
