"""archspec: write a network down once as a YAML spec, know it is right, train it.

>>> import archspec
>>> spec = archspec.load("specs/mnist_cnn.yaml")        # doctest: +SKIP
>>> spec.plan().total_params                            # doctest: +SKIP
3274634
>>> model = spec.build()                                # doctest: +SKIP
"""

from __future__ import annotations

from archspec.api import Spec, check, load, loads
from archspec.errors import ArchspecError, Location, Problem, SpecError
from archspec.shapes.plan import Plan, PlanNode

__version__ = "0.1.0"

__all__ = [
    "ArchspecError",
    "Location",
    "Plan",
    "PlanNode",
    "Problem",
    "Spec",
    "SpecError",
    "__version__",
    "check",
    "load",
    "loads",
]
