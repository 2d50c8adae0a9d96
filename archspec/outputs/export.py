"""Export a network — trained (a run directory or checkpoint) or freshly initialised (a spec).

Formats:

- ``safetensors``: the weights under their ``state_dict`` keys (``layer1.0.conv1.weight``),
  with the spec, class names and input normalisation as JSON in the header metadata
  (``archspec predict``/``eval`` read it back). Safe to load from anyone.
- ``torchscript``: ``torch.jit.trace`` of the compiled network (chains and graphs).
  PyTorch deprecates TorchScript; prefer ``exported``.
- ``onnx``: torch's ONNX exporter (needs ``pip install 'archspec[onnx]'``).
- ``exported``: a ``torch.export`` program saved with ``torch.export.save`` (``.pt2``).

Every format has a dynamic batch axis and carries the same JSON metadata
(``archspec.json`` extra file, or ONNX ``metadata_props``). The artifact computes the
network on *normalised* inputs: ``x·scale + shift`` per channel, from ``normalizer``.

``exported`` and ``onnx`` also take symbolic input sizes (``--dynamic``): each symbolic
axis gets a torch.export dim whose values are exactly the axis' legal set
(:mod:`archspec.outputs.dynamic`); ONNX names those axes (``dim_param`` ``H``, ``W``).

Security: loading a TorchScript or ``torch.export`` file (``torch.jit.load``,
``torch.export.load``) runs code from it. They are trusted artifacts: load only files
you made. archspec itself only ever reads safetensors.
"""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from archspec import __version__
from archspec.errors import ArchspecError, ResourceError, UsageError
from archspec.io import atomic_path, format_from_suffix, write_bytes
from archspec.loader import bundled
from archspec.outputs.dynamic import Axis, axes, described, torch_dim

if TYPE_CHECKING:
    import torch
    from torch import nn

    from archspec.api import Spec
    from archspec.shapes.symbolic import LegalSet, Symbol

FORMATS = ("safetensors", "torchscript", "onnx", "exported")
EXTENSIONS = {
    ".safetensors": "safetensors",
    ".pt": "torchscript",
    ".ts": "torchscript",
    ".torchscript": "torchscript",
    ".onnx": "onnx",
    ".pt2": "exported",
}
EXAMPLE_BATCH = 2
KEEP_META = ("spec", "name", "classes", "normalizer")
DYNAMIC_FORMATS = ("exported", "onnx")


T = TypeVar("T")


class ExportError(ArchspecError):
    """The network cannot be written in the requested format."""


class GuardError(ExportError):
    """torch.export's guards on a symbolic axis contradict the axis' legal set."""


class FixedSizeError(ExportError):
    """torch.export fixed a symbolic axis at its example size (no retry can help)."""


@dataclass(frozen=True)
class Written:
    """What :func:`export` wrote: the symbolic axes, and whether the program accepts every
    legal size (False: torch's 0/1 specialisation was kept, see :func:`_program`)."""

    axes: tuple[Axis, ...] = ()
    exact: bool = True


@dataclass
class Source:
    """What to export: the network in eval mode on the CPU, and the metadata to embed."""

    spec: Spec
    network: nn.Module
    meta: dict[str, Any]
    origin: str  # where the weights came from, for messages

    @property
    def trained(self) -> bool:
        return bool(self.meta.get("trained"))


def format_for(path: str, fmt: str | None) -> str:
    """The export format: ``fmt`` if given, else from the output file's extension."""
    return format_from_suffix(path, fmt, EXTENSIONS, "export", "|".join(FORMATS))


def is_trained(target: str) -> bool:
    """A run directory or a ``.safetensors`` checkpoint (else ``target`` names a spec)."""
    path = Path(target)
    return path.is_dir() or path.suffix == ".safetensors"


def load_source(
    target: str, *, which: str = "best", seed: int | None = None, max_layers: int | None = None
) -> Source:
    """The network of a run directory / checkpoint (trained), or of a spec (initialised,
    refused past ``max_layers`` layers: the loader's default when None)."""
    if is_trained(target):
        return _from_run(Path(target), which)
    return _from_spec(target, seed, max_layers)


def _from_run(target: Path, which: str) -> Source:
    from archspec.train import checkpoint
    from archspec.train.evaluate import checkpoint_path, restore

    restored = restore(target, which, device="cpu")
    path = checkpoint_path(target, which)
    meta = {k: v for k, v in checkpoint.load(path).meta.items() if k in KEEP_META}
    meta |= {"trained": True, "weights": str(path)}
    return Source(restored.spec, restored.network, meta, str(path))


def _from_spec(target: str, seed: int | None, max_layers: int | None) -> Source:
    from archspec.api import load
    from archspec.language.load import DEFAULT_MAX_LAYERS

    path = bundled.resolve(target)
    if not path.is_file():
        raise ExportError(
            f"{target}: no such run directory, checkpoint or spec file", bundled.missing_hint()
        )
    spec = load(path, max_layers=max_layers or DEFAULT_MAX_LAYERS)
    _check_memory(spec, path)
    import torch  # after the spec is checked: an invalid one is refused without it

    chosen = seed if seed is not None else (spec.train.seed if spec.train is not None else 0)
    torch.manual_seed(chosen)  # the same initial weights `archspec train` starts from
    network = spec.build().eval()
    data = {k: v for k, v in dict(spec.data).items() if k != "extends"}
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: a 1 MB spec took ~1.5 s
    text = f"# exported by archspec {__version__} from {path}\n" + yaml.dump(
        data, Dumper=dumper, sort_keys=False, allow_unicode=True
    )
    meta = {"spec": text, "name": spec.name, "trained": False, "seed": chosen}
    return Source(spec, network, meta, f"{path} (initialised with seed {chosen})")


def memory_needed(spec: Spec) -> int:
    """Bytes to export ``spec``'s network, float32: its weights twice (the network and the
    serialised copy) and every layer's output for the example batch the exporters trace."""
    from archspec.shapes.plan import numel

    plan = spec.plan()
    inputs = sum(numel(inp.shape) for inp in plan.all_inputs)
    activations = inputs + sum(numel(node.shape) for node in plan.nodes)
    return 4 * (2 * plan.total_params + EXAMPLE_BATCH * activations)


def _check_memory(spec: Spec, path: Path) -> None:
    """Issue #13: `dense: 1099511627776` died in torch's allocator (exit 3); the pre-flight
    ``train`` and ``eval`` have, before anything is allocated."""
    from archspec.shapes import memory

    needed, available = memory_needed(spec), memory.available_bytes()
    if available is not None and needed > available:
        raise ResourceError(
            f"{path}: exporting {spec.name} needs about {memory.human(needed)} "
            f"({memory.count(spec.plan().total_params)} parameters) but this machine has "
            f"{memory.human(available)} available",
            "make the layers smaller, or export on a machine with more memory",
        )


def metadata(source: Source, found: Sequence[Axis] = (), exact: bool = True) -> dict[str, Any]:
    plan = source.spec.plan()
    several: dict[str, Any] = {}
    if not plan.plain_io:  # named inputs/outputs, int ids: said; one float input: as before
        several = {
            "inputs": {
                i.name: {"shape": list(i.shape), "dtype": i.dtype}
                | ({"vocab": i.vocab} if i.vocab is not None else {})
                for i in plan.all_inputs
            },
            "outputs": output_names(source),
        }
    return {
        "archspec": __version__,
        "input": list(source.spec.input_shape),
        **several,
        **source.meta,
        **({"dynamic": described(found), "dynamic_exact": exact} if found else {}),
    }


def input_names(source: Source) -> list[str]:
    """The artifact's input names: the spec's (`input` for a network with one)."""
    return [inp.name for inp in source.spec.plan().all_inputs]


def output_names(source: Source) -> list[str]:
    """The artifact's output names: `output` for one, else the spec's `outputs:`."""
    plan = source.spec.plan()
    if len(plan.all_outputs) == 1:
        return ["output"]
    return [plan.output_label(i) for i in range(len(plan.all_outputs))]


def export(
    source: Source,
    fmt: str,
    dest: Path,
    dynamic: Mapping[Symbol, LegalSet] | None = None,
) -> Written:
    """Write ``source``'s network to ``dest`` in ``fmt``, atomically; ``dynamic``: the
    symbolic input axes and their legal sets (``exported`` and ``onnx`` only)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of {', '.join(FORMATS)}")
    if dynamic and fmt not in DYNAMIC_FORMATS:
        raise UsageError(
            f"--dynamic: the {fmt} format has no symbolic input sizes",
            "export to .pt2 (exported) or .onnx",
        )
    found = dynamic_dims(dynamic) if dynamic else ()
    if fmt == "safetensors":
        _safetensors(source, dest)
    elif fmt == "torchscript":
        _torchscript(source, dest)
    elif fmt == "onnx":
        return Written(found, _onnx(source, dest, found))
    else:
        return Written(found, _exported(source, dest, found))
    return Written()


def dynamic_dims(legal: Mapping[Symbol, LegalSet]) -> tuple[Axis, ...]:
    """Each symbolic axis as torch.export can express its legal set (a ``Dim`` range or
    ``m·Dim + r``), with the size to trace it at; a set it cannot express is refused
    (:class:`archspec.outputs.dynamic.DynamicError`, one line)."""
    return axes(legal)


def example_inputs(source: Source, found: Sequence[Axis] = ()) -> tuple[torch.Tensor, ...]:
    """A batch for each input (random ids in [0, vocab) for token ids), seeded; symbolic
    axes at their example sizes."""
    import torch

    from archspec.compile.verify import example_inputs as make

    generator = torch.Generator().manual_seed(0)
    plan = source.spec.plan()
    if not found:
        return make(plan, EXAMPLE_BATCH, "cpu", generator)
    sizes = {(a.symbol.input, a.symbol.axis): a.example for a in found}
    out = []
    for inp in plan.all_inputs:
        shape = [sizes.get((inp.name, i), d) for i, d in enumerate(inp.shape)]
        if inp.vocab is not None:
            out.append(torch.randint(0, inp.vocab, (EXAMPLE_BATCH, *shape), generator=generator))
        else:
            out.append(torch.randn((EXAMPLE_BATCH, *shape), generator=generator))
    return tuple(out)


def example_input(source: Source) -> torch.Tensor:
    """The example batch of a network with one input."""
    return example_inputs(source)[0]


def _safetensors(source: Source, dest: Path) -> None:
    from archspec.train import checkpoint

    tensors = {k: v.detach().cpu().contiguous() for k, v in source.network.state_dict().items()}
    checkpoint.save(dest, tensors, metadata(source))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation chatter and the ONNX exporter's logging."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            # several inputs share one batch axis: the ONNX exporter says it names it once
            warnings.filterwarnings("ignore", message="# The axis name")
            yield
    finally:
        logger.setLevel(level)


@contextmanager
def _size_oblivious(on: bool) -> Iterator[None]:
    """torch's ``backed_size_oblivious`` when ``on`` (see :func:`_program`)."""
    if not on:
        yield
        return
    from torch.fx.experimental import _config

    with _config.patch(backed_size_oblivious=True):  # type: ignore[attr-defined]
        yield


def _program(
    fmt: str, source: Source, found: Sequence[Axis], make: Callable[[], T]
) -> tuple[T, bool]:
    """``make()`` — torch's exporter — and whether the program takes every legal size.

    With a symbolic axis, first under torch's ``backed_size_oblivious``: else torch's 0/1
    specialisation guards every inner size to differ from 1, and the program refuses a legal
    size at which a pool gives 1×1 (the U-Net of the tests at H = 2). Some layers' guards
    contradict that mode (``nn.TransformerEncoderLayer`` guards the batch ≠ 1); then
    without it, and such sizes may be refused (``exact`` False)."""
    if any(not a.static for a in found):
        try:
            with _exporting(fmt, source, found, oblivious=True):
                return make(), True
        except GuardError:
            pass
        with _exporting(fmt, source, found):
            return make(), False
    with _exporting(fmt, source, found):
        return make(), True


@contextmanager
def _exporting(
    fmt: str, source: Source, found: Sequence[Axis] = (), oblivious: bool = False
) -> Iterator[None]:
    """Turn an exporter's failure into one clear line."""
    try:
        with _quiet(), _size_oblivious(oblivious):
            yield
    except ArchspecError:
        raise
    except Exception as exc:  # torch's exporters raise many types for unsupported code
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else ""
        if found and "Constraints violated" in str(exc):
            raise _disagreement(fmt, source, found, lines) from None
        raise ExportError(
            f"torch could not export {source.spec.name} as {fmt}: {type(exc).__name__}: {first}",
            "try another --format (safetensors always works)",
        ) from None


def _torchscript(source: Source, dest: Path) -> None:
    import torch

    # Traced without autograd: nn.TransformerEncoderLayer takes its fused inference path only
    # then, and a trace that saw both paths fails torch's check ("graphs differed").
    with _exporting("torchscript", source), torch.no_grad():
        xs = example_inputs(source)
        traced = torch.jit.trace(source.network, xs[0] if len(xs) == 1 else xs)  # type: ignore[no-untyped-call]
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"archspec.json": json.dumps(metadata(source))})
    write_bytes(dest, buffer.getvalue())


SPECIALISED = re.compile(
    r"You marked (\S+) as dynamic but your code specialized it to be a constant \((\d+)\)"
)


def _disagreement(fmt: str, source: Source, found: Sequence[Axis], lines: list[str]) -> ExportError:
    """torch.export found a guard on a symbolic axis the legal set does not imply."""
    text = "\n".join(lines)
    fixed = SPECIALISED.search(text)
    if fixed is not None:  # a layer torch traces at one size (nn.GRU/nn.LSTM unroll the steps)
        name = fixed[1].split("*")[-1].removesuffix("_blocks")
        return FixedSizeError(
            f"torch.export cannot keep {name} symbolic in {source.spec.name}: tracing fixed it "
            f"at {fixed[2]} (a layer torch traces at one size, such as lstm or gru)",
            f"leave {name} out of --dynamic (--dynamic NAMES lists the axes to keep symbolic)",
        )
    why = next((ln.strip(" -") for ln in lines[1:] if ln.strip().startswith("-")), lines[0])
    sets = "; ".join(a.legal.describe() for a in found if not a.static)
    return GuardError(
        f"torch could not export {source.spec.name} as {fmt} with the legal sizes {sets}: {why}",
        "narrow the sizes (--size NAME=LO..HI) or leave that axis out of --dynamic; "
        "please report it (archspec's legal set and torch's guards disagree)",
    )


def _dynamic_batch(count: int = 1) -> tuple[dict[int, Any], ...]:
    """Axis 0 of each of ``count`` inputs is the (shared) batch axis."""
    import torch

    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in range(count))


def _dynamic_shapes(source: Source, count: int, found: Sequence[Axis] = ()) -> Any:
    """``forward(input, *rest)``: the first input, then the others as one var-positional
    argument, which torch.export wants their specs under (one input: as before). Each
    symbolic axis (batch excluded: tensor axis + 1) gets its dim."""
    shapes = _dynamic_batch(count)
    for inp, spec in zip(source.spec.plan().all_inputs, shapes, strict=True):
        for a in found:
            if a.symbol.input == inp.name and not a.static:
                spec[a.symbol.axis + 1] = torch_dim(a)
    return shapes if count == 1 else {"input": shapes[0], "rest": shapes[1:]}


def _exported(source: Source, dest: Path, found: Sequence[Axis] = ()) -> bool:
    import torch

    xs = example_inputs(source, found)
    shapes = _dynamic_shapes(source, len(xs), found)
    program, exact = _program(
        "exported",
        source,
        found,
        lambda: torch.export.export(source.network, xs, dynamic_shapes=shapes),
    )
    with _exporting("exported", source):
        buffer = io.BytesIO()
        meta = json.dumps(metadata(source, found, exact))
        torch.export.save(program, buffer, extra_files={"archspec.json": meta})
    write_bytes(dest, buffer.getvalue())
    return exact


def require_onnx() -> None:
    """ONNX export needs the optional ``onnx`` and ``onnxscript`` packages."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError(
            "ONNX export needs the packages onnx and onnxscript, which are not installed",
            "install archspec[onnx]: pip install 'archspec[onnx]'",
        ) from None


def _onnx(source: Source, dest: Path, found: Sequence[Axis] = ()) -> bool:
    import torch

    require_onnx()
    xs = example_inputs(source, found)
    shapes = _dynamic_shapes(source, len(xs), found)
    program, exact = _program(
        "onnx",
        source,
        found,
        lambda: torch.onnx.export(
            source.network,
            xs,
            dynamo=True,
            dynamic_shapes=shapes,
            input_names=input_names(source),
            output_names=output_names(source),
            verbose=False,
        ),
    )
    with _exporting("onnx", source):
        assert program is not None
        program.model.metadata_props["archspec"] = json.dumps(metadata(source, found, exact))
        with atomic_path(dest) as tmp:
            program.save(tmp, external_data=False)
            if found:
                _name_dims(tmp, source, found)
    return exact


def _name_dims(path: Path, source: Source, found: Sequence[Axis]) -> None:
    """Rename the exporter's dim_params of the symbolic axes (``2*H_blocks``, ``s17``) to
    their symbols (``H``), and the batch axis to ``batch``, wherever the graph uses them."""
    import onnx

    model = onnx.load(str(path))
    names: dict[str, str] = {}
    by_axis = {(a.symbol.input, a.symbol.axis + 1): a.symbol.name for a in found}
    for inp, value in zip(input_names(source), model.graph.input, strict=False):
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            wanted = "batch" if i == 0 else by_axis.get((inp, i))
            if dim.dim_param and wanted is not None:
                names[dim.dim_param] = wanted
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    onnx.save(model, str(path))
