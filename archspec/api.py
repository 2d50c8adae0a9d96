"""The Python API: ``archspec.load(path)`` → :class:`Spec` → ``.plan()`` / ``.build()``.

>>> import archspec
>>> spec = archspec.loads("input: [1, 28, 28]\\nlayers: [flatten, {dense: 10}]")
>>> spec.plan().total_params
7850
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import Problem, SpecError
from archspec.language.load import DEFAULT_MAX_LAYERS, Validated, validate_file, validate_text
from archspec.loader.source import DEFAULT_LIMITS, Limits
from archspec.shapes.infer import infer_validated
from archspec.shapes.plan import Plan, Shape

if TYPE_CHECKING:
    import torch

    from archspec.compile.network import Network
    from archspec.language.train import TrainConfig


class Spec:
    """A validated network spec. Loading validates everything and infers every shape."""

    def __init__(self, validated: Validated) -> None:
        self._v = validated
        self._plans: dict[Shape, Plan] = {}

    @property
    def name(self) -> str:
        return self._v.name

    @property
    def path(self) -> Path | None:
        return self._v.path

    @property
    def input_shape(self) -> Shape:
        return self._v.input_shape

    @property
    def train(self) -> TrainConfig | None:
        return self._v.train

    @property
    def data(self) -> Any:
        """The spec as plain data (after ``extends:``), e.g. to save the resolved spec."""
        return self._v.data

    def plan(self, input_shape: Shape | None = None) -> Plan:
        """Shapes, parameters, MACs and receptive fields of every layer (torch-free).

        ``input_shape`` re-checks the network at another input size.
        """
        shape = tuple(input_shape) if input_shape is not None else self.input_shape
        if shape not in self._plans:
            self._plans[shape] = infer_validated(self._v, shape)
        return self._plans[shape]

    def build(
        self,
        input_shape: Shape | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Network:
        """A ``torch.nn.Module`` whose layers have exactly the Plan's shapes."""
        from archspec.compile import build

        return build(self.plan(input_shape), device=device, dtype=dtype)

    def __repr__(self) -> str:
        layers = len(self._v.layers)
        return f"Spec(name={self.name!r}, input={list(self.input_shape)}, layers={layers})"


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a spec loads: loading makes ~10 objects per
    YAML value and frees none, so the collector's passes over them are pure cost (30% of a
    10,000-layer check). Reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _finish(validated: Validated, problems: list[Problem], input_shape: Shape | None) -> Spec:
    spec = Spec(validated)
    try:
        spec.plan(input_shape)
    except SpecError as exc:
        problems = [*problems, *exc.problems]
    if validated.train is not None:  # the augmentation list against the input (C, H, W)
        shape = input_shape or validated.input_shape
        from archspec.language.recipe import check_recipe  # only a spec with `train:`

        train = validated.train
        problems += check_recipe(train.augment, tuple(shape), validated.source, train.tta)
    if problems:
        raise SpecError(problems)
    return spec


def load(
    path: str | Path,
    *,
    input_shape: Shape | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> Spec:
    """Read, validate and infer the spec at ``path``; raises :class:`SpecError` with every
    independent problem located at ``file:line:col``."""
    with _no_gc():
        validated, problems = validate_file(Path(path), limits, max_layers)
        return _finish(validated, problems, input_shape)


def loads(
    text: str,
    file: str = "<string>",
    *,
    input_shape: Shape | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> Spec:
    """Like :func:`load`, from YAML text."""
    with _no_gc():
        validated, problems = validate_text(text, file, limits, max_layers)
        return _finish(validated, problems, input_shape)


def check(path: str | Path, *, input_shape: Shape | None = None) -> Plan:
    """The Plan of the spec at ``path`` (raises :class:`SpecError` if it is invalid)."""
    return load(path, input_shape=input_shape).plan(input_shape)
