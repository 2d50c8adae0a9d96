"""Fitting a budget: search a spec's ``vars:`` for the values that meet targets.

Each candidate is the spec with new variable values merged over it the way a spec that
``extends:`` it would (:func:`archspec.language.extends.override`), validated and
inferred by the static engine — never a text substitution, never torch. A variable's
declared ``multiple_of``/``min``/``max`` limit the values tried. The search is
exhaustive over the grid of ``--vary`` values (bounded by :data:`MAX_CANDIDATES`).

Goals: ``METRIC<=V`` and ``METRIC>=V`` are hard bounds; ``METRIC=V`` asks for the value
closest to V (by relative error) — or, when a metric is to be maximised or minimised,
is an upper bound. Metrics: ``params``, ``macs`` (archspec's), ``flops``, and ``memory``:
the bytes :mod:`archspec.shapes.memory` estimates for training at the spec's batch size
(parameters, gradients, optimizer state, activations; the same estimate ``archspec
check`` refuses specs with).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from archspec.errors import ArchspecError, SpecError, UsageError, suggest
from archspec.language.extends import override
from archspec.language.load import DEFAULT_MAX_LAYERS, validate_document
from archspec.language.train import TrainConfig
from archspec.language.variables import Constraint, constraints
from archspec.loader.source import Document, SourceMap
from archspec.shapes import counting, memory
from archspec.shapes.infer import infer_validated
from archspec.shapes.plan import Plan

METRICS = ("params", "macs", "flops", "memory")
MAX_CANDIDATES = 100_000
Op = Literal["<=", ">=", "="]
_SUFFIX = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_NUMBER = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([kKMGT]i?)?B?\s*$")
_TARGET = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|=)\s*(.+)$")
_RANGE = re.compile(r"^\s*(-?[0-9]+)\s*\.\.\s*(-?[0-9]+)\s*(?::\s*([0-9]+))?\s*$")


@dataclass(frozen=True)
class Target:
    metric: str
    op: Op
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:,.0f}"


@dataclass(frozen=True)
class Vary:
    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Candidate:
    values: Mapping[str, int]
    totals: Mapping[str, int]
    score: float  # smaller is better

    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values.items())


@dataclass
class Result:
    best: list[Candidate]
    evaluated: int = 0
    invalid: int = 0  # the spec is not valid with these values (e.g. a size shrinks to 0)
    out_of_bounds: int = 0  # valid, but outside a <= / >= target
    seconds: float = 0.0
    skipped_by_declaration: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else math.inf


# ---------------------------------------------------------------- parsing the options


def parse_number(text: str, what: str) -> float:
    """``5M`` → 5e6, ``1.5G``, ``300k``, ``2_000``, ``5e6``; bytes also ``2GB``, ``512MiB``."""
    match = _NUMBER.match(text)
    if match is None:
        raise UsageError(
            f"{what}: '{text}' is not a number",
            "write e.g. 5M, 1.5G, 300k or 5000000",
        )
    suffix = match.group(2) or ""
    scale = _BINARY[suffix] if suffix.endswith("i") else _SUFFIX[suffix]
    return float(match.group(1).replace("_", "")) * scale


def parse_target(text: str) -> Target:
    """``params=5M``, ``macs<=1G``, ``params>=1e6``."""
    match = _TARGET.match(text)
    if match is None:
        raise UsageError(
            f"--target '{text}' is not METRIC=VALUE, METRIC<=VALUE or METRIC>=VALUE",
            "e.g. --target params=5M or --target macs<=600M",
        )
    metric, op, value = match.groups()
    check_metric(metric, "--target")
    return Target(metric, op, parse_number(value, f"--target {metric}"))  # type: ignore[arg-type]


def check_metric(metric: str, option: str) -> str:
    if metric not in METRICS:
        hint = suggest(metric, METRICS) or f"use one of {', '.join(METRICS)}"
        raise UsageError(f"{option}: unknown metric '{metric}'", hint)
    return metric


def parse_vary(text: str) -> tuple[str, str]:
    """``width=16..128`` → ``("width", "16..128")`` (values are read against the spec)."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise UsageError(
            f"--vary '{text}' is not NAME=LOW..HIGH or NAME=A,B,C",
            "e.g. --vary width=16..128 or --vary depth=1,2,4",
        )
    return name.strip(), values.strip()


def _values(name: str, text: str) -> list[int]:
    match = _RANGE.match(text)
    if match is not None:
        low, high, step = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
        if low > high or step < 1:
            raise UsageError(
                f"--vary {name}={text}: an empty range",
                "write LOW..HIGH with LOW ≤ HIGH (and a step ≥ 1 after ':')",
            )
        if (high - low) // step + 1 > MAX_CANDIDATES:
            raise UsageError(f"--vary {name}={text}: too many values", "narrow the range")
        return list(range(low, high + 1, step))
    values = []
    for part in text.split(","):
        try:
            values.append(int(part.strip()))
        except ValueError:
            raise UsageError(
                f"--vary {name}={text}: '{part.strip()}' is not a whole number",
                "give integers: LOW..HIGH, LOW..HIGH:STEP or A,B,C",
            ) from None
    return sorted(set(values))


def grid(doc: Document, raw: Sequence[tuple[str, str]]) -> tuple[list[Vary], dict[str, int]]:
    """The values to try per variable, kept to each variable's declaration; and how many
    values each declaration ruled out."""
    declared = doc.data.get("vars") if isinstance(doc.data, dict) else None
    rules = constraints(declared)
    if not rules:
        raise UsageError(
            f"{doc.source.file} has no `vars:` to vary",
            "define the sizes as variables (vars: {width: 32}) and use them in the layers",
        )
    out, skipped, seen = [], {}, set()
    for name, text in raw:
        if name in seen:
            raise UsageError(f"--vary {name} is given twice", "give each variable once")
        seen.add(name)
        if name not in rules:
            where = doc.source.locate(("vars",))
            hint = suggest(name, rules) or f"the spec's variables: {', '.join(rules)}"
            raise UsageError(f"--vary {name}: {where}: the spec has no variable '{name}'", hint)
        values = _values(name, text)
        allowed = [v for v in values if rules[name].allows(v)]
        skipped[name] = len(values) - len(allowed)
        if not allowed:
            raise UsageError(
                f"--vary {name}={text}: no value allowed by the declaration at "
                f"{doc.source.locate(('vars', name))} ({_rules_text(rules[name])})",
                "widen the range",
            )
        out.append(Vary(name, tuple(allowed)))
    size = math.prod(len(v.values) for v in out)
    if size > MAX_CANDIDATES:
        raise UsageError(
            f"--vary: {size:,} combinations is more than {MAX_CANDIDATES:,}",
            "narrow the ranges or give a step (width=16..512:16)",
        )
    return out, skipped


def _rules_text(rule: Constraint) -> str:
    parts = [f"multiple_of {rule.multiple_of}"] if rule.multiple_of else []
    parts += [f"min {rule.min:g}"] if rule.min is not None else []
    parts += [f"max {rule.max:g}"] if rule.max is not None else []
    return ", ".join(parts)


# ---------------------------------------------------------------- evaluating and scoring


def evaluate(
    doc: Document, path: Path | None, values: Mapping[str, int]
) -> tuple[Plan, TrainConfig | None]:
    """The Plan (and training settings) of the spec with ``values`` merged over its
    ``vars:``; raises SpecError."""
    child = override(doc, {"vars": dict(values)}, SourceMap(doc.source.file))
    validated, problems = validate_document(child, path, DEFAULT_MAX_LAYERS)
    if problems:
        raise SpecError(problems)
    v = validated
    return infer_validated(v), v.train


def totals(plan: Plan, train: TrainConfig | None, metrics: Sequence[str]) -> dict[str, int]:
    out = {}
    for metric in metrics:
        if metric == "params":
            out[metric] = plan.total_params
        elif metric == "macs":
            out[metric] = plan.total_macs
        elif metric == "flops":
            out[metric] = counting.total(plan, "flops")
        else:
            out[metric] = memory.training_estimate(plan, train).total
    return out


def score(
    measured: Mapping[str, int], targets: Sequence[Target], objective: tuple[str, int] | None
) -> float | None:
    """Smaller is better; ``None`` when a bound is broken."""
    distance = 0.0
    for t in targets:
        value = measured[t.metric]
        bound = t.op if not (t.op == "=" and objective) else "<="
        if (bound == "<=" and value > t.value) or (bound == ">=" and value < t.value):
            return None
        if bound == "=":
            distance += abs(value - t.value) / max(t.value, 1.0)
    if objective is not None:
        metric, sign = objective
        return -sign * measured[metric]
    return distance


def search(
    doc: Document,
    path: Path | None,
    varies: Sequence[Vary],
    targets: Sequence[Target],
    objective: tuple[str, int] | None = None,
    top: int = 5,
) -> Result:
    """Try every combination; keep the ``top`` best that meet the bounds."""
    metrics = sorted({t.metric for t in targets} | ({objective[0]} if objective else set()))
    metrics = [m for m in METRICS if m in metrics or m in ("params", "macs")]
    result = Result(best=[])
    found: list[Candidate] = []
    start = time.perf_counter()
    for values in _combinations(varies):
        result.evaluated += 1
        try:
            plan, train = evaluate(doc, path, values)
        except ArchspecError:
            result.invalid += 1
            continue
        measured = totals(plan, train, metrics)
        s = score(measured, targets, objective)
        if s is None:
            result.out_of_bounds += 1
            continue
        found.append(Candidate(values, measured, s))
    result.seconds = time.perf_counter() - start
    found.sort(key=lambda c: (c.score, tuple(c.values.values())))
    result.best = found[:top]
    return result


def _combinations(varies: Sequence[Vary]) -> Iterator[dict[str, int]]:
    names = [v.name for v in varies]
    for combo in itertools.product(*(v.values for v in varies)):
        yield dict(zip(names, combo, strict=True))


# ---------------------------------------------------------------- output


def child_spec(spec_path: Path, out_path: Path, candidate: Candidate) -> str:
    """The chosen spec as a spec that extends the original with the new variable values."""
    parent = Path(_relative(spec_path.resolve(), out_path.resolve().parent)).as_posix()
    values = ", ".join(f"{k}: {v}" for k, v in candidate.values.items())
    summary = ", ".join(f"{k} {v:,}" for k, v in candidate.totals.items())
    return (
        f"# written by `archspec fit`: {spec_path.name} with {candidate.label()} ({summary})\n"
        f"extends: {_yaml_string(parent)}\n"
        f"vars: {{{values}}}\n"
    )


def _relative(target: Path, start: Path) -> str:
    import os

    try:
        return os.path.relpath(target, start)
    except ValueError:  # another drive (Windows): an absolute path works too
        return str(target)


def _yaml_string(text: str) -> str:
    """A path as a YAML scalar, quoted (JSON escapes are valid YAML double quotes)."""
    import json

    return json.dumps(text)
