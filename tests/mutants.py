"""Mutation check: do the shape tests have teeth?

Each *mutant* is one deliberate, small bug in the shape rules (``archspec/shapes/arith.py``,
``archspec/shapes/kinds/*.py``): an off-by-one, a missing check, a wrong parameter count. This
script applies the mutants one at a time to a throwaway copy of the repository, runs the
tests there, and reports which tests fail. A mutant that no test notices SURVIVES: a real
bug of that shape could ship. The repository's own files are never modified.

Usage (from the repository root)::

    python tests/mutants.py                      # every mutant, the fast shape tests
    python tests/mutants.py --only 3 7           # mutants 3 and 7 (numbers from --list)
    python tests/mutants.py --only 27 27 27      # mutant 27 three times (fresh examples each)
    python tests/mutants.py --list               # the mutants, with their numbers
    python tests/mutants.py --tests tests        # the full suite for each mutant (slow)
    python tests/mutants.py --profile ci -v      # another Hypothesis profile; list failures
    python tests/mutants.py --seed 1 --json r.json   # fixed Hypothesis seed; results as JSON

The default tests are ``tests/test_differential.py``, ``tests/test_reference_nets.py`` and
``tests/test_shapes.py``; the default profile is ``teeth``: the ``ci`` profile's example
count, without shrinking and without the example database, so that a failing mutant is
reported quickly and no stored example carries over from one mutant to the next. If
``tests/conftest.py`` does not register ``teeth``, this script supplies it (a ``-p`` plugin in
the copy); a ``teeth`` profile that conftest does register takes precedence.

How: ``archspec/``, ``tests/``, ``specs/``, ``pyproject.toml`` (and ``README.md``) are copied
into a temporary directory, which is put first on ``PYTHONPATH`` and used as pytest's working
directory (checked once: ``archspec`` must import from the copy, not from an editable install).
The unmutated copy must pass first (else exit 2). Before each mutant ``archspec/`` is restored
from a pristine copy and ``.hypothesis/`` removed; bytecode is never written, so no stale
``.pyc`` can hide a mutant. Then exactly one occurrence of the mutant's ``old`` text is
replaced by its ``new`` text (a mutant whose ``old`` text no longer occurs exactly once is an
error, exit 2: update it to the current code).

Exit status: 0 if every mutant was caught, 1 if any survived, 2 if the check could not run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = ("archspec", "tests", "specs", "pyproject.toml", "README.md")
DEFAULT_TESTS = (
    "tests/test_differential.py",
    "tests/test_reference_nets.py",
    "tests/test_shapes.py",
)
PYTEST_FLAGS = ("-p", "no:cacheprovider", "-q", "--tb=no", "-rfE", "-W", "ignore")
PROFILE_PLUGIN = "_mutants_profile"
PROFILE_PLUGIN_SOURCE = '''"""Written by tests/mutants.py: the `teeth` profile."""

from hypothesis import Phase, settings

settings.register_profile(
    "teeth",
    max_examples=60,  # as the `ci` profile
    deadline=None,
    print_blob=False,
    database=None,  # nothing carries over from one mutant to the next
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
)
'''
REPORTED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Mutant:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``archspec/<file>``."""

    name: str
    file: str
    old: str
    new: str


MUTANTS: tuple[Mutant, ...] = (
    # --- shapes/arith.py: the formulas
    Mutant(
        "conv_out +1",
        "shapes/arith.py",
        "return (size + pad - effective_kernel(kernel, dilation)) // stride + 1",
        "return (size + pad - effective_kernel(kernel, dilation)) // stride + 2",
    ),
    Mutant(
        "pool_out: no ceil_mode correction",
        "shapes/arith.py",
        "    if ceil_mode and (out - 1) * stride >= size + pad:\n        out -= 1\n",
        "",
    ),
    Mutant(
        "pool_out: ceil_mode ignored",
        "shapes/arith.py",
        "out = (-(-span // stride) if ceil_mode else span // stride) + 1",
        "out = span // stride + 1",
    ),
    Mutant(
        "transpose_out off by one",
        "shapes/arith.py",
        "+ dilation * (kernel - 1) + output_pad + 1",
        "+ dilation * (kernel - 1) + output_pad",
    ),
    Mutant(
        "transpose_out ignores output_padding",
        "shapes/arith.py",
        "+ dilation * (kernel - 1) + output_pad + 1",
        "+ dilation * (kernel - 1) + 1",
    ),
    Mutant(
        "same_pads: odd pixel left",
        "shapes/arith.py",
        "return total // 2, total - total // 2",
        "return total - total // 2, total // 2",
    ),
    Mutant(
        "adaptive_window off by one",
        "shapes/arith.py",
        "return -(-numerator // (o * out))",
        "return -(-numerator // (o * out)) + 1",
    ),
    Mutant(
        "adaptive_window: gcd ignored",
        "shapes/arith.py",
        "o = out // math.gcd(size, out)",
        "o = out",
    ),
    Mutant(
        "effective_kernel ignores dilation",
        "shapes/arith.py",
        "return dilation * (kernel - 1) + 1",
        "return kernel",
    ),
    # --- shapes/kinds/elementwise.py, dense.py, merge.py
    Mutant(
        "batchnorm params C, not 2C",
        "shapes/kinds/elementwise.py",
        "params=2 * x.shape[0] if p.affine else 0",
        "params=x.shape[0] if p.affine else 0",
    ),
    Mutant(
        "batchnorm params ignore affine",
        "shapes/kinds/elementwise.py",
        "params=2 * x.shape[0] if p.affine else 0",
        "params=2 * x.shape[0]",
    ),
    Mutant(
        "dense: bias always counted",
        "shapes/kinds/dense.py",
        "params=weights + (p.units if p.bias else 0)",
        "params=weights + p.units",
    ),
    Mutant(
        "dense: accepts an unflattened input",
        "shapes/kinds/dense.py",
        '    if x.layout == "grid":  # a per-position dense on a grid: `- to_tokens` first',
        "    if False:",
    ),
    Mutant(
        "flatten drops the first merged axis",
        "shapes/kinds/dense.py",
        "numel(x.shape[start : end + 1])",
        "numel(x.shape[start + 1 : end + 1])",
    ),
    Mutant(
        "concat: joined axis = first × n",
        "shapes/kinds/merge.py",
        "joined = sum(x.shape[axis] for x in ins)",
        "joined = ins[0].shape[axis] * len(ins)",
    ),
    Mutant(
        "concat: axis ignored (always 0)",
        "shapes/kinds/merge.py",
        "    axis = p.axis % rank\n",
        "    axis = 0\n",
    ),
    # --- shapes/kinds/tensor.py
    Mutant(
        "to_tokens: [C, H·W] instead of [H·W, C]",
        "shapes/kinds/tensor.py",
        "shape=(numel(x.spatial), x.shape[0])",
        "shape=(x.shape[0], numel(x.spatial))",
    ),
    Mutant(
        "from_tokens: token count not checked",
        "shapes/kinds/tensor.py",
        "    if numel(p.size) != x.shape[0]:",
        "    if False:",
    ),
    Mutant(
        "dense on tokens: MACs per example, not per token",
        "shapes/kinds/dense.py",
        "macs=weights * numel(x.shape[:-1])",
        "macs=weights",
    ),
    Mutant(
        "permute: duplicates accepted",
        "shapes/kinds/tensor.py",
        "    if sorted(order) != list(range(len(x.shape))):",
        "    if len(order) != len(x.shape):",
    ),
    Mutant(
        "select: index range off by one",
        "shapes/kinds/tensor.py",
        "    if not -size <= p.index < size:",
        "    if not -size <= p.index <= size:",
    ),
    Mutant(
        "slice: step ignored",
        "shapes/kinds/tensor.py",
        "kept = len(range(start, stop, step))",
        "kept = len(range(start, stop))",
    ),
    Mutant(
        "split: sizes need not add up to the axis",
        "shapes/kinds/tensor.py",
        "    if sum(p.sizes) != x.shape[axis]:",
        "    if sum(p.sizes) > x.shape[axis]:",
    ),
    Mutant(
        "chunk: equal floor-sized parts (torch.chunk's are ceil-sized)",
        "shapes/kinds/tensor.py",
        "    step = -(-size // parts)",
        "    step = max(size // parts, 1)",
    ),
    Mutant(
        "mean: keepdims ignored",
        "shapes/kinds/tensor.py",
        "    if p.keepdims:\n",
        "    if False:\n",
    ),
    Mutant(
        "reshape: -1 resolved wrongly",
        "shapes/kinds/tensor.py",
        "shape = tuple(total // known if n == -1 else n for n in p.shape)",
        "shape = tuple(known if n == -1 else n for n in p.shape)",
    ),
    Mutant(
        "axis: negative axes off by one",
        "shapes/kinds/tensor.py",
        "    return axis % rank\n",
        "    return axis % rank if axis >= 0 else axis % rank - 1\n",
    ),
    Mutant(
        "add/multiply: shapes not checked",
        "shapes/kinds/merge.py",
        "        _mismatch(kind, ins, skip_channels=False)\n",
        "",
    ),
    Mutant(
        "upsample: axis 0's scale on every axis",
        "shapes/kinds/merge.py",
        "shape = (x.shape[0], *(n * s for n, s in zip(x.spatial, scale, strict=True)))",
        "shape = (x.shape[0], *(n * scale[0] for n in x.spatial))",
    ),
    # --- shapes/kinds/conv.py
    Mutant(
        "conv params ignore groups",
        "shapes/kinds/conv.py",
        "weights = p.depth * (channels // p.groups) * math.prod(k)",
        "weights = p.depth * channels * math.prod(k)",
    ),
    Mutant(
        "conv: groups not checked",
        "shapes/kinds/conv.py",
        "    _check_groups(channels, p.depth, p.groups)\n",
        "",
    ),
    Mutant(
        "conv: 'valid' pads 1",
        "shapes/kinds/conv.py",
        "        return ((0, 0),) * len(sizes)",
        "        return ((1, 1),) * len(sizes)",
    ),
    Mutant(
        "conv: per-axis padding reversed",
        "shapes/kinds/conv.py",
        'return tuple((q, q) for q in expand(p.padding, len(sizes), "padding"))',
        'return tuple((q, q) for q in reversed(expand(p.padding, len(sizes), "padding")))',
    ),
    Mutant(
        "conv: reflect padding limit < → <=",
        "shapes/kinds/conv.py",
        'max(pad) < n if p.padding_mode == "reflect"',
        'max(pad) <= n if p.padding_mode == "reflect"',
    ),
    Mutant(
        "conv: an empty output accepted",
        "shapes/kinds/conv.py",
        "    if min(out) < 1:\n        axis = out.index(min(out))\n        span",
        "    if min(out) < 0:\n        axis = out.index(min(out))\n        span",
    ),
    Mutant(
        "conv_transpose params ignore groups",
        "shapes/kinds/conv.py",
        "weights = x.shape[0] * (p.depth // p.groups) * math.prod(k)",
        "weights = x.shape[0] * p.depth * math.prod(k)",
    ),
    Mutant(
        "conv_transpose: output_padding limit >= → >",
        "shapes/kinds/conv.py",
        "if oo >= max(ss, dd):",
        "if oo > max(ss, dd):",
    ),
    # --- shapes/kinds/pool.py, base.py
    Mutant(
        "pool: default stride 1, not the window",
        "shapes/kinds/pool.py",
        's = expand(p.stride or p.size, rank, "stride")',
        's = expand(p.stride or (1,), rank, "stride")',
    ),
    Mutant(
        "pool: padding limit on the dilated window",
        "shapes/kinds/pool.py",
        "if 2 * pp > kk:",
        "if 2 * pp > effective_kernel(kk, d[0]):",
    ),
    Mutant(
        "pool: no 3-D avg window check",
        "shapes/kinds/pool.py",
        "    _check_avg3d(p, x.spatial, k)\n",
        "",
    ),
    Mutant(
        "pool: options not checked",
        "shapes/kinds/pool.py",
        "    _check_options(p)\n",
        "",
    ),
    Mutant(
        "pool: an empty output accepted",
        "shapes/kinds/pool.py",
        "if min(out) < 1:",
        "if min(out) < 0:",
    ),
    Mutant(
        "global_pool keeps an axis",
        "shapes/kinds/pool.py",
        "return Out(shape=(x.shape[0],), field=None)",
        "return Out(shape=(x.shape[0], 1), field=None)",
    ),
    Mutant(
        "spatial kinds accept flat vectors",
        "shapes/kinds/base.py",
        "    if rank < minimum:\n        raise",
        "    if False:\n        raise",
    ),
    # --- the modern kinds (issue 14): norms, shuffles, pad/crop, causal conv, broadcasting
    Mutant(
        "prelu: slopes per channel and shared swapped",
        "shapes/kinds/elementwise.py",
        "params=x.shape[0] if p.per_channel else 1",
        "params=1 if p.per_channel else x.shape[0]",
    ),
    Mutant(
        "layer_scale: gamma not counted",
        "shapes/kinds/elementwise.py",
        "params=x.shape[0], macs=0",
        "params=0, macs=0",
    ),
    Mutant(
        "groupnorm: groups need not divide the channels",
        "shapes/kinds/norm.py",
        "    if channels % p.groups:\n",
        "    if False:\n",
    ),
    Mutant(
        "groupnorm: one scale per channel, no shift",
        "shapes/kinds/norm.py",
        "return Out(shape=x.shape, field=x.field, params=2 * channels if p.affine else 0)",
        "return Out(shape=x.shape, field=x.field, params=channels if p.affine else 0)",
    ),
    Mutant(
        "instancenorm: a single position accepted",
        "shapes/kinds/norm.py",
        "if all(n == 1 for n in x.spatial):",
        "if False:",
    ),
    Mutant(
        "layernorm: over last counts the channels",
        "shapes/kinds/norm.py",
        'size = x.shape[0] if p.over == "channels" else x.shape[-1]',
        "size = x.shape[0]",
    ),
    Mutant(
        "channel_shuffle: groups need not divide the channels",
        "shapes/kinds/shuffle.py",
        "    if x.shape[0] % p.groups:\n",
        "    if False:\n",
    ),
    Mutant(
        "pixel_shuffle: channels divided by r, not r²",
        "shapes/kinds/shuffle.py",
        "shape = (x.shape[0] // r2, *(n * p.factor for n in x.spatial))",
        "shape = (x.shape[0] // p.factor, *(n * p.factor for n in x.spatial))",
    ),
    Mutant(
        "pixel_unshuffle: channels times r, not r²",
        "shapes/kinds/shuffle.py",
        "shape = (x.shape[0] * r * r, *(n // r for n in x.spatial))",
        "shape = (x.shape[0] * r, *(n // r for n in x.spatial))",
    ),
    Mutant(
        "pixel_unshuffle: sizes need not divide",
        "shapes/kinds/shuffle.py",
        "    if bad:\n",
        "    if False:\n",
    ),
    Mutant(
        "pad: the before amount counted twice",
        "shapes/kinds/padding.py",
        "shape = (x.shape[0], *(n + a + b for n, (a, b) in zip(x.spatial, pads, strict=True)))",
        "shape = (x.shape[0], *(n + a + a for n, (a, b) in zip(x.spatial, pads, strict=True)))",
    ),
    Mutant(
        "pad: reflect allowed up to the size",
        "shapes/kinds/padding.py",
        'if max(a, b) >= n + (p.mode == "circular"):',
        "if max(a, b) > n:",
    ),
    Mutant(
        "crop: an empty output accepted",
        "shapes/kinds/padding.py",
        "if min(out) < 1:",
        "if min(out) < 0:",
    ),
    Mutant(
        "conv causal: dilation ignored",
        "shapes/kinds/conv.py",
        "return ((d[0] * (k[0] - 1), 0),)",
        "return ((k[0] - 1, 0),)",
    ),
    Mutant(
        "add/multiply: any mismatch broadcasts",
        "shapes/kinds/merge.py",
        "and not (broadcast and 1 in (a, b))",
        "and not broadcast",
    ),
    Mutant(
        "add/multiply: the first input's shape, not the broadcast one",
        "shapes/kinds/merge.py",
        "return tuple(max(axis) for axis in zip(*shapes, strict=True))",
        "return tuple(shapes[0])",
    ),
    # --- shapes/kinds/attention.py, recurrent.py, learned.py: the sequence kinds
    Mutant(
        "attention: no bias counted on the output projection",
        "shapes/kinds/attention.py",
        "params = weights + (4 * d if p.bias else 0)",
        "params = weights + (3 * d if p.bias else 0)",
    ),
    Mutant(
        "attention: key/value projections sized by the query's features",
        "shapes/kinds/attention.py",
        "weights = d * d + 2 * k * d + d * d",
        "weights = d * d + 2 * d * d + d * d",
    ),
    Mutant(
        "attention: heads need not divide the features",
        "shapes/kinds/attention.py",
        "    if d % p.heads:\n",
        "    if False:\n",
    ),
    Mutant(
        "attention: accepts any rank",
        "shapes/kinds/attention.py",
        "    if len(x.shape) != 2:\n",
        "    if len(x.shape) < 1:\n",
    ),
    Mutant(
        "recurrent: upper layers read the input size",
        "shapes/kinds/recurrent.py",
        "features = d if layer == 0 else h * dirs",
        "features = d if layer == 0 else h",
    ),
    Mutant(
        "recurrent: one bias vector per gate set, not two",
        "shapes/kinds/recurrent.py",
        "p.layers * dirs * 2 * gates * h if p.bias else 0",
        "p.layers * dirs * gates * h if p.bias else 0",
    ),
    Mutant(
        "recurrent: `return: last` forgets the backward direction",
        "shapes/kinds/recurrent.py",
        'shape = (h * dirs,) if p.returns == "last" else (t, h * dirs)',
        'shape = (h,) if p.returns == "last" else (t, h * dirs)',
    ),
    Mutant(
        "learned: positional embedding counts one row",
        "shapes/kinds/learned.py",
        "shape=x.shape, field=x.field, params=numel(x.shape)",
        "shape=x.shape, field=x.field, params=x.shape[-1]",
    ),
    # --- more tensor-kind rules (issue 14: each tensor kind with a second planted bug)
    Mutant(
        "reshape: the element count is not checked",
        "shapes/kinds/tensor.py",
        "    if total % known or numel(shape) != total:\n",
        "    if False:\n",
    ),
    Mutant(
        "permute: the shape is not reordered",
        "shapes/kinds/tensor.py",
        "    shape = tuple(x.shape[i] for i in order)\n",
        "    shape = tuple(x.shape)\n",
    ),
    Mutant(
        "select: the axis is kept (size 1), not removed",
        "shapes/kinds/tensor.py",
        "    shape = x.shape[:axis] + x.shape[axis + 1 :]\n",
        "    shape = (*x.shape[:axis], 1, *x.shape[axis + 1 :])\n",
    ),
    Mutant(
        "slice: floor of (stop - start) / step, not the count Python keeps",
        "shapes/kinds/tensor.py",
        "    kept = len(range(start, stop, step))\n",
        "    kept = max((stop - start) // step, 0)\n",
    ),
    Mutant(
        "mean: only the first axis is removed",
        "shapes/kinds/tensor.py",
        "        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)\n",
        "        shape = tuple(n for i, n in enumerate(x.shape) if i != axes[0])\n",
    ),
    Mutant(
        "to_tokens: tokens = first × last spatial size (right for 2-D only)",
        "shapes/kinds/tensor.py",
        "shape=(numel(x.spatial), x.shape[0])",
        "shape=(x.spatial[0] * x.spatial[-1], x.shape[0])",
    ),
    # --- embedding and several inputs/outputs
    Mutant(
        "embedding: one row too few counted",
        "shapes/kinds/learned.py",
        "params=p.vocab * p.dim, layout=layout",
        "params=(p.vocab - 1) * p.dim, layout=layout",
    ),
    Mutant(
        "embedding: a table smaller than the input's ids accepted",
        "shapes/kinds/learned.py",
        "    if x.vocab > p.vocab:\n",
        "    if False:\n",
    ),
    Mutant(
        "embedding: padding_idx outside the table accepted",
        "shapes/kinds/learned.py",
        "    if p.padding_idx is not None and p.padding_idx >= p.vocab:\n",
        "    if p.padding_idx is not None and p.padding_idx > p.vocab:\n",
    ),
    Mutant(
        "several inputs: layers' slots counted from 1 (as with one input)",
        "compile/network.py",
        "        for i, node in enumerate(plan.nodes, start=n):\n",
        "        for i, node in enumerate(plan.nodes, start=1):\n",
    ),
    Mutant(
        "several outputs: returned in reverse order",
        "compile/network.py",
        "for name, port in plan.all_outputs\n",
        "for name, port in reversed(plan.all_outputs)\n",
    ),
    Mutant(
        "several inputs: a merge of two inputs keeps one input's receptive field",
        "shapes/infer.py",
        "        rf = out.field if len(origins[layer.name]) <= 1 else None\n",
        "        rf = out.field\n",
    ),
    Mutant(
        "to_tokens: a grid becomes [C, H·W] instead of [H·W, C]",
        "shapes/kinds/tensor.py",
        '    return Out(shape=(numel(x.spatial), x.shape[0]), field=None, layout="sequence")\n',
        '    return Out(shape=(x.shape[0], numel(x.spatial)), field=None, layout="sequence")\n',
    ),
    Mutant(
        "from_tokens: the grid's channels are the token count",
        "shapes/kinds/tensor.py",
        '    return Out(shape=(x.shape[1], *p.size), field=None, layout="grid")\n',
        '    return Out(shape=(x.shape[0], *p.size), field=None, layout="grid")\n',
    ),
    Mutant(
        "permute: the inverse permutation",
        "shapes/kinds/tensor.py",
        "    shape = tuple(x.shape[i] for i in order)\n",
        "    shape = tuple(x.shape[order.index(i)] for i in range(len(order)))\n",
    ),
    Mutant(
        "transpose: one axis copied over the other instead of swapped",
        "shapes/kinds/tensor.py",
        "    order[a], order[b] = order[b], order[a]\n",
        "    order[a] = order[b]\n",
    ),
    Mutant(
        "select: an index one past the end is accepted",
        "shapes/kinds/tensor.py",
        "    if not -size <= p.index < size:\n",
        "    if not -size <= p.index <= size:\n",
    ),
    Mutant(
        "mean keepdims: only the first averaged axis becomes 1",
        "shapes/kinds/tensor.py",
        "        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape))\n",
        "        shape = tuple(1 if i in axes[:1] else n for i, n in enumerate(x.shape))\n",
    ),
)


@dataclass
class Outcome:
    """What one pytest run said."""

    returncode: int
    failed: list[str]
    last_line: str
    seconds: float
    timed_out: bool = False

    @property
    def caught(self) -> bool:
        return not self.timed_out and self.returncode != 0


class Sandbox:
    """A copy of the repository whose ``archspec/`` can be mutated and restored."""

    def __init__(
        self, root: Path, tests: Sequence[str], profile: str, seed: int | None, timeout: float
    ) -> None:
        self.root = root / "repo"
        self.pristine = root / "pristine" / "archspec"
        self.timeout = timeout
        ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.egg-info", "*.pyc")
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, self.root / name, ignore=ignore)
            elif source.exists():
                shutil.copy2(source, self.root / name)
        shutil.copytree(self.root / "archspec", self.pristine)
        (self.root / f"{PROFILE_PLUGIN}.py").write_text(PROFILE_PLUGIN_SOURCE)
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(self.root), os.environ.get("PYTHONPATH")])
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("HYPOTHESIS_PROFILE", None)
        xdist = ["-n", "2"] if importlib.util.find_spec("xdist") is not None else []
        self.command = [
            sys.executable,
            "-m",
            "pytest",
            *tests,
            *PYTEST_FLAGS,
            *xdist,
            "-p",
            PROFILE_PLUGIN,
            f"--hypothesis-profile={profile}",
            *([] if seed is None else [f"--hypothesis-seed={seed}"]),
        ]

    def imported_archspec(self) -> str:
        """Where ``import archspec`` resolves in the copy's environment."""
        probe = "import archspec; print(archspec.__file__)"
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() or result.stderr.strip()

    def restore(self) -> None:
        """Pristine ``archspec/``, no Hypothesis database."""
        shutil.rmtree(self.root / "archspec")
        shutil.copytree(self.pristine, self.root / "archspec")
        for folder in (self.root / ".hypothesis", self.root / "tests" / ".hypothesis"):
            shutil.rmtree(folder, ignore_errors=True)

    def occurrences(self, mutant: Mutant) -> int:
        return (self.pristine / mutant.file).read_text().count(mutant.old)

    def apply(self, mutant: Mutant) -> None:
        path = self.root / "archspec" / mutant.file
        text = path.read_text()
        if text.count(mutant.old) != 1:
            raise ValueError(f"{mutant.name}: old text occurs {text.count(mutant.old)} times")
        path.write_text(text.replace(mutant.old, mutant.new, 1))

    def run_tests(self) -> Outcome:
        """Run pytest in the copy; on timeout, end its whole process group (xdist workers)."""
        start = time.monotonic()
        with subprocess.Popen(
            self.command,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                return Outcome(-1, [], f"timed out after {self.timeout:.0f} s", self.timeout, True)
        lines = stdout.strip().splitlines() or stderr.strip().splitlines() or [""]
        failed = sorted(set(REPORTED.findall(stdout)))
        return Outcome(process.returncode, failed, lines[-1], time.monotonic() - start)


def short(test: str) -> str:
    """``tests/test_x.py::name[param]`` → ``test_x.py::name[param]``."""
    return test.removeprefix("tests/")


def describe(outcome: Outcome) -> str:
    if outcome.timed_out:
        return f"SURVIVED ({outcome.last_line})"
    if not outcome.caught:
        return "SURVIVED"
    if not outcome.failed:
        return f"CAUGHT by the run itself (exit {outcome.returncode}: {outcome.last_line})"
    count = len(outcome.failed)
    tests = "test" if count == 1 else "tests"
    return f"CAUGHT by {count} {tests} (first: {short(outcome.failed[0])})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Apply each mutant to a copy of archspec and check that the tests fail.",
    )
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        metavar="N",
        help="run only these mutants (see --list); a number given twice runs twice",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        default=list(DEFAULT_TESTS),
        metavar="PATH",
        help="test files or folders, relative to the repository root (default: %(default)s)",
    )
    parser.add_argument("--profile", default="teeth", help="Hypothesis profile (default: teeth)")
    parser.add_argument(
        "--seed", type=int, help="pass --hypothesis-seed=SEED to pytest (repeatable runs)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds per pytest run (default: 1200)"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every failing test of each mutant"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for i, mutant in enumerate(MUTANTS, start=1):
            print(f"[{i}] {mutant.name}  (archspec/{mutant.file})")
        return 0
    chosen = args.only or list(range(1, len(MUTANTS) + 1))
    unknown = [n for n in chosen if not 1 <= n <= len(MUTANTS)]
    if unknown:
        print(f"error: no mutant {unknown} (there are {len(MUTANTS)}; see --list)", file=sys.stderr)
        return 2
    missing = [t for t in args.tests if not (REPO / t.split("::")[0]).exists()]
    if missing:
        print(f"error: no such tests: {missing}", file=sys.stderr)
        return 2

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="archspec-mutants-") as tmp:
        box = Sandbox(Path(tmp), args.tests, args.profile, args.seed, args.timeout)
        stale = [(n, box.occurrences(MUTANTS[n - 1])) for n in sorted(set(chosen))]
        stale = [(n, count) for n, count in stale if count != 1]
        for n, count in stale:
            mutant = MUTANTS[n - 1]
            print(
                f"error: mutant [{n}] {mutant.name}: its old text occurs {count} times in "
                f"archspec/{mutant.file} (must be exactly once): update it to the current code",
                file=sys.stderr,
            )
        if stale:
            return 2
        where = Path(box.imported_archspec())
        if not where.is_relative_to(box.root / "archspec"):
            print(
                f"error: in the copy, archspec imports from {where}, not from {box.root}: "
                "a mutant would not be tested",
                file=sys.stderr,
            )
            return 2

        seed = "" if args.seed is None else f", seed {args.seed}"
        print(f"tests: {' '.join(args.tests)}; profile {args.profile}{seed}; copy in {box.root}")
        box.restore()
        baseline = box.run_tests()
        print(f"[0] unmutated: {baseline.last_line} ({baseline.seconds:.0f} s)", flush=True)
        if baseline.caught or baseline.timed_out:
            why = baseline.last_line if baseline.timed_out else "fails its tests"
            print(f"error: the unmutated copy {why}:", file=sys.stderr)
            for test in baseline.failed:
                print(f"    {test}", file=sys.stderr)
            return 2

        results: list[dict[str, object]] = []
        for n in chosen:
            mutant = MUTANTS[n - 1]
            box.restore()
            box.apply(mutant)
            outcome = box.run_tests()
            print(f"[{n}] {mutant.name}: {describe(outcome)} ({outcome.seconds:.0f} s)", flush=True)
            if args.verbose:
                for test in outcome.failed:
                    print(f"      {short(test)}")
            results.append(
                {
                    "number": n,
                    "name": mutant.name,
                    "caught": outcome.caught,
                    "failed": outcome.failed,
                    "seconds": round(outcome.seconds, 1),
                }
            )
        box.restore()

    caught = sum(1 for r in results if r["caught"])
    minutes = (time.monotonic() - started) / 60
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"{caught}/{len(results)} mutants caught ({minutes:.1f} min)")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
