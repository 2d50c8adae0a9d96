"""Fuzzing the whole front end: hostile or broken YAML never crashes archspec.

Every input — random text, random bytes decoded as text, YAML token soup, random
spec-shaped documents, and random mutations of every ``specs/*.yaml`` — must end in
a valid :class:`~archspec.shapes.plan.Plan` or a :class:`~archspec.SpecError` whose
problems are all located (``fuzz.yaml:line:col``, one line each). Any other
exception, a RecursionError or MemoryError, or an input that takes longer than
``HANG_S`` seconds fails the test. A smaller sample goes through the CLI
(``archspec check FILE``: exit 0 or 1, every stderr line ``FILE:line:col: ...``).

The number of inputs scales with the Hypothesis profile (``--hypothesis-profile``:
``ci`` default, ``dev``, ``nightly``): ``FUZZ_SCALE`` × the profile's
``max_examples`` per test. The module prints how many inputs it tried (visible
with ``-s`` or ``-rA``) and asserts the count. See tests/README.md.

The regression tests at the end pin the crashes the fuzzer found.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import signal
import sys
import time
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import archspec
from archspec.cli import main
from archspec.errors import SpecError
from archspec.language.extends import read_spec
from archspec.outputs import report
from archspec.shapes import memory  # torch-free
from archspec.shapes.kinds import names as kind_names

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml"))
FILE = "fuzz.yaml"
HANG_S = 10.0  # one input: a generous bound for a slow CI machine; typical is ~5 ms
FUZZ_SCALE = 24  # inputs per test = FUZZ_SCALE × the profile's max_examples (ci: 1,440)
TEXT_SCALE = 4 * FUZZ_SCALE  # random text is cheap (ci: 5,760)
CLI_SCALE = 6  # the CLI sample (ci: 360)
HOSTILE_SCALE = 6  # hostile specs, built on the meta device when valid (ci: 360)
# In process, a lower layer limit than the default 10,000: the limit's logic is the same, and
# a spec at the default limit takes seconds to expand (tests/test_safety.py times that one).
MAX_LAYERS = 2_000

PROFILE = settings()  # the loaded profile (--hypothesis-profile / HYPOTHESIS_PROFILE)
BASE = PROFILE.max_examples


def fuzz_settings(scale: int) -> settings:
    return settings(
        PROFILE,
        max_examples=BASE * scale,
        deadline=None,  # HANG_S is enforced per input with a timer instead
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# --------------------------------------------------------------------------- counting
TRIED: Counter[str] = Counter()  # inputs per test, this process
OUTCOMES: Counter[str] = Counter()  # "plan" / "error"


@pytest.fixture(scope="module", autouse=True)
def _report_count(request: pytest.FixtureRequest) -> Iterator[None]:
    """Report how many inputs the fuzz tests tried, straight to the terminal (no ``-s``
    needed). Under xdist the workers have no terminal: run the file with ``-n 0`` to see the
    line; the counts are asserted either way (``test_zz_enough_inputs_were_tried``)."""
    yield
    total = sum(TRIED.values())
    per_test = ", ".join(f"{name} {n:,}" for name, n in sorted(TRIED.items()))
    line = (
        f"fuzz: {total:,} inputs tried in this process ({per_test}); "
        f"{OUTCOMES['plan']:,} valid plans, {OUTCOMES['error']:,} located SpecErrors; "
        f"profile max_examples={BASE}"
    )
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # what capsys.disabled() does
            terminal.write("\n")
            terminal.write_line(line)
    else:  # an xdist worker has no terminal (and xdist does not show its output)
        print(f"\n{line}")


def expect_tried(name: str, scale: int) -> None:
    """Hypothesis stops early only when it has exhausted a strategy: ours never are."""
    assert TRIED[name] >= BASE * scale // 2, f"{name}: only {TRIED[name]} inputs tried"


# --------------------------------------------------------------------------- the oracle
class Hang(BaseException):  # BaseException: no `except Exception` in archspec swallows it
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in this (main) thread after ``seconds``."""

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"one input took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


LINE = re.compile(r"^fuzz\.yaml:[1-9]\d*:[1-9]\d*: \S")


def assert_located(exc: SpecError, file: str = FILE) -> None:
    assert exc.problems, "a SpecError without problems"
    for problem in exc.problems:
        loc = problem.location
        assert loc is not None, f"unlocated problem: {problem.render()!r}"
        assert loc.file == file and loc.line >= 1 and loc.col >= 1, problem.render()
        line = problem.render()
        assert "\n" not in line and "\r" not in line, f"a problem spans lines: {line!r}"
        assert not _CONTROL.search(line), f"raw control character in {line!r}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def front_end(text: str, test: str) -> str:
    """Load, infer and render ``text``: ``"plan"`` or ``"error"``.
    Anything else fails the test."""
    TRIED[test] += 1
    with time_limit(HANG_S):
        outcome = _front_end(text)
    OUTCOMES[outcome] += 1
    return outcome


def _front_end(text: str) -> str:
    try:
        spec = archspec.loads(text, FILE, max_layers=MAX_LAYERS)
        plan = spec.plan()
    except SpecError as exc:
        assert_located(exc)
        return "error"
    # everything `archspec check` renders must work on any valid plan
    report.plain_table(plan)
    report.markdown_table(plan)
    json.dumps(plan.to_dict())
    memory.training_estimate(plan, spec.train)
    return "plan"


# --------------------------------------------------------------------------- random text
YAML_TOKENS = (
    "\n",
    "\n",
    "\n  ",
    "  ",
    " ",
    "- ",
    ": ",
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    "'",
    '"',
    "#",
    "&a ",
    "&b ",
    "*a",
    "*b",
    "<<: ",
    "? ",
    "| ",
    "> ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "!!python/object/apply:os.system ",
    "!!str ",
    "!custom ",
    "!!binary ",
    "\t",
    "\\",
    "input: ",
    "layers:",
    "name: ",
    "from: ",
    "repeat: ",
    "when: ",
    "vars: ",
    "blocks:",
    "args: ",
    "output: ",
    "train:",
    "data: ",
    "extends: ",
    "batch_size: ",
    "epochs: ",
    "conv",
    "dense",
    "pool",
    "relu",
    "flatten",
    "add",
    "concat",
    "upsample",
    "softmax",
    "depth: ",
    "kernel: ",
    "stride: ",
    "padding: ",
    "same",
    "size: ",
    "units: ",
    "0",
    "1",
    "3",
    "28",
    "-1",
    "1e400",
    "1e-4",
    ".nan",
    ".inf",
    "0x10",
    "true",
    "null",
    "~",
    "999999999999999999999",
    "n",
    "n * 2",
    "min(n, 3)",
    "n // 0",
    "(",
    ")",
    "+",
    "*",
    "/",
    "é",
    "\u202e",
    "\x00",
    "\x1b[31m",
    "\ufeff",
)


def token_soup() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)


random_text = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    token_soup(),
)


# --------------------------------------------------------------------------- values
KINDS = tuple(kind_names())
NAMES = (
    "input",
    "output",
    "conv1",
    "relu1",
    "dense1",
    "pool1",
    "skip",
    "layer1",
    "stem",
    "bn1",
    "forward",
    "0",
    "a.b",
    "",
    "x" * 300,
    "résumé",
    "\u202e",
    "__class__",
)
EXPRESSIONS = (
    "n",
    "n * 2",
    "n // 2",
    "n / 2",
    "n % 3",
    "-n",
    "min(n, 4)",
    "max(n)",
    "n // 0",
    "n ** 2",
    "(n + 1) * (n - 1)",
    "m",
    "nn",
    "1e308 * 1e308",
    "9" * 30 + " * 2",
    "10 ** 100",
    "__import__('os').system('true')",
    "n.real",
    "n[0]",
    "lambda: 0",
    "n if n else 1",
    "(" * 60 + "n" + ")" * 60,
    "-" * 150 + "n",
    "+".join(["n"] * 60),
    "min()",
    "max(n, k=1)",
    "true",
    "flag",
    "same",
    "0x10",
    "1_000",
    "",
    " ",
    "n\n*2",
)

numbers = st.sampled_from(
    [
        0,
        1,
        -1,
        2,
        3,
        7,
        28,
        2**31,
        2**63,
        10**18,
        10**19,
        10**30,
        -(10**30),
        0.5,
        -0.0,
        1e-300,
        1e308,
        math.inf,
        -math.inf,
        math.nan,
        True,
        False,
    ]
)


# Mostly small: 10,000 layers (the default limit) take a second to expand and infer.
REPEATS = st.one_of(
    st.integers(-2, 12),
    st.sampled_from([0, 1000, 10_000, 10_001, 100_000, 10**9, 2**63]),
    numbers,
    st.sampled_from(EXPRESSIONS),
)


# Built once: a strategy built inside every draw costs Hypothesis milliseconds per example.
LEAF = st.one_of(
    numbers,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(KINDS),
    st.sampled_from(NAMES),
    st.sampled_from(["same", "valid", "max", "avg", "lp", "nearest", "mnist", "adam"]),
    st.integers(1, 5000).map(lambda n: "x" * n),
)


def _collections_of(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(KINDS), st.text(max_size=6))
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=3))


WILD = st.recursive(LEAF, _collections_of, max_leaves=8)


def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


# --------------------------------------------------------------------------- spec-shaped documents
LAYER_KIND = st.sampled_from(KINDS) | st.text(max_size=8)
LAYER_VALUE = st.one_of(st.none(), LEAF, WILD)
META_VALUE = st.one_of(LEAF, st.lists(st.sampled_from(NAMES), max_size=3), REPEATS)


@st.composite
def layer_entries(draw: st.DrawFn) -> Any:
    kind = draw(LAYER_KIND)
    value = draw(LAYER_VALUE)
    if draw(st.booleans()):
        return kind if value is None else {kind: value}
    entry: dict[str, Any] = {kind: value}
    for key in ("name", "from", "repeat", "when"):
        if draw(st.integers(0, 3)) == 0:
            entry[key] = draw(META_VALUE)
    return entry


LAYERS = st.lists(layer_entries(), max_size=8) | LEAF
INPUTS = (
    st.lists(st.one_of(st.integers(-2, 64), numbers, st.sampled_from(EXPRESSIONS)), max_size=5)
    | LEAF
)
VARS = st.dictionaries(
    st.sampled_from(["n", "m", "flag", "k", "1x", "input"]),
    st.one_of(numbers, st.sampled_from(EXPRESSIONS)),
    max_size=4,
)
BLOCKS = st.dictionaries(
    st.sampled_from(["blk", "stage", "conv", "b2"]),
    st.one_of(
        st.lists(layer_entries(), min_size=1, max_size=3),
        st.fixed_dictionaries(
            {"layers": st.lists(layer_entries(), max_size=3)},
            optional={
                "args": st.dictionaries(st.sampled_from(["n", "depth"]), LEAF, max_size=2),
                "output": st.sampled_from(NAMES),
            },
        ),
    ),
    max_size=2,
)
TRAIN = st.fixed_dictionaries(
    {},
    optional={
        "data": WILD,
        "batch_size": LEAF,
        "epochs": LEAF,
        "optimizer": WILD,
        "schedule": WILD,
        "seed": LEAF,
        "device": LEAF,
        "loss": WILD,
    },
)


@st.composite
def random_specs(draw: st.DrawFn) -> Any:
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        spec["input"] = draw(INPUTS)
    if draw(st.integers(0, 2)) == 0:
        spec["vars"] = draw(VARS)
    if draw(st.integers(0, 3)) == 0:
        spec["blocks"] = draw(BLOCKS)
    spec["layers"] = draw(LAYERS)
    if draw(st.integers(0, 4)) == 0:
        spec["output"] = draw(LEAF)
    if draw(st.integers(0, 4)) == 0:
        spec["train"] = draw(TRAIN)
    return spec


# --------------------------------------------------------------------------- mutating real specs
def _base(path: Path) -> Any:
    """A shipped spec as plain data (its ``extends:`` merged: text alone cannot extend)."""
    return read_spec(path).data


BASES = {path.name: _base(path) for path in SPEC_FILES}


def _containers(data: Any, out: list[Any]) -> list[Any]:
    """Every dict and list in ``data``, parents first, each once (mutations make cycles)."""
    if isinstance(data, dict | list) and not any(seen is data for seen in out):
        out.append(data)
        for child in data.values() if isinstance(data, dict) else data:
            _containers(child, out)
    return out


MUTATIONS = (
    "delete",
    "duplicate",
    "replace",
    "rename",
    "kind",
    "from",
    "repeat",
    "when",
    "vars",
    "deep",
    "alias",
    "recursive",
    "wrap",
    "tweak",
    "tweak",
)
SMALL = st.one_of(st.integers(-2, 70), st.lists(st.integers(-1, 40), min_size=1, max_size=4))


NEW_KEYS = st.sampled_from(KINDS) | st.text(max_size=10) | st.sampled_from(NAMES)
META = {
    "from": st.one_of(st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), max_size=4), LEAF),
    "repeat": REPEATS,
    "when": st.one_of(st.booleans(), st.sampled_from(EXPRESSIONS), LEAF),
}
VAR_NAMES = st.sampled_from(["n", "m", "flag", "depth", "stride"])
VAR_VALUES = st.one_of(numbers, st.sampled_from(EXPRESSIONS), st.integers())


def _mutate(draw: st.DrawFn, data: Any) -> None:
    """Apply one random mutation to ``data`` in place (its root is a dict)."""
    containers = _containers(data, [])
    box = draw(st.sampled_from(containers))
    keys = list(box) if isinstance(box, dict) else list(range(len(box)))
    if not keys:
        if isinstance(box, list):
            box.append(draw(WILD))
        else:
            box[draw(st.text(max_size=5))] = draw(WILD)
        return
    key = draw(st.sampled_from(keys))
    what = draw(st.sampled_from(MUTATIONS))
    if what == "delete":
        del box[key]
    elif what == "duplicate":
        if isinstance(box, list):
            box.insert(key, copy.deepcopy(box[key]))
        else:
            box[f"{key}_"] = copy.deepcopy(box[key])
    elif what == "replace":
        box[key] = draw(WILD)
    elif what == "rename" and isinstance(box, dict):
        box[draw(NEW_KEYS)] = box.pop(key)
    elif what == "kind":  # a layer entry becomes a random kind, keeping or dropping its value
        layer = draw(st.sampled_from(KINDS))
        box[key] = {layer: draw(st.one_of(st.none(), WILD, st.just(box[key])))}
    elif what in ("from", "repeat", "when") and isinstance(box[key], dict):
        box[key][what] = draw(META[what])
    elif what == "vars":
        env = data.setdefault("vars", {})
        if isinstance(env, dict):
            env[draw(VAR_NAMES)] = draw(VAR_VALUES)
    elif what == "deep":
        box[key] = nested(box[key], draw(st.integers(1, 80)))
    elif what == "alias":  # the same object twice: yaml.safe_dump writes an anchor and alias
        box[key] = draw(st.sampled_from(containers))
    elif what == "recursive" and isinstance(box[key], dict | list):
        inner = box[key]
        if isinstance(inner, list):
            inner.append(inner)
        else:
            inner["self"] = inner
    elif what == "wrap":
        box[key] = {draw(st.sampled_from(KINDS)): box[key]}
    elif what == "tweak":  # a plausible size: more inputs get as far as shape inference
        box[key] = draw(SMALL)


def _text_mutation(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    i = draw(st.integers(0, len(lines) - 1))
    what = draw(st.sampled_from(("dup_line", "del_line", "swap", "insert", "truncate", "indent")))
    if what == "dup_line":  # duplicate keys, at the text level
        lines.insert(i, lines[i])
    elif what == "del_line":
        del lines[i]
    elif what == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif what == "insert":
        pos = draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:pos] + draw(st.sampled_from(YAML_TOKENS)) + lines[i][pos:]
    elif what == "truncate":
        return "".join(lines)[: draw(st.integers(0, len(text)))]
    else:
        lines[i] = draw(st.sampled_from(["\t", " ", "   "])) + lines[i]
    return "".join(lines)


def dump(draw: st.DrawFn, data: Any) -> str:
    style = draw(st.sampled_from([None, False, True]))
    try:
        return yaml.safe_dump(
            data,
            sort_keys=False,
            default_flow_style=style,
            allow_unicode=draw(st.booleans()),
            width=draw(st.sampled_from([80, 10**6])),
        )
    except (yaml.YAMLError, RecursionError, ValueError):
        assume(False)  # PyYAML itself cannot write this value: not an input
        raise AssertionError("unreachable") from None


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(sorted(BASES)))
    data = copy.deepcopy(BASES[name])
    for _ in range(draw(st.integers(1, 4))):
        _mutate(draw, data)
    text = dump(draw, data)
    if draw(st.integers(0, 3)) == 0:
        text = _text_mutation(draw, text)
    return text


@st.composite
def generated_specs(draw: st.DrawFn) -> str:
    return dump(draw, draw(random_specs()))


# --------------------------------------------------------------------------- hostile specs (#13)
# Names that are attributes of the compiled module, control characters, bidi marks and path
# traversal; non-finite floats in every float parameter; two `<<` merge keys; Unicode
# lookalikes of variable names; deep block chains; graphs near the layer limit.
HOSTILE_NAMES = (
    "plan",
    "trace",
    "num_params",
    "logits_only",
    "output_activation",
    "training",
    "forward",
    "bfloat16",
    "T_destination",
    "__class__",
    "__call__",
    "__dict__",
    "_modules",
    "_parameters",
    "_steps",
    "_x",
    "a\x00b",
    "a\x1b[31mred",
    "\x1b]0;title\x07",
    "\u202eevil",
    "a\u200fb",
    "../../escaped",
    "/etc/passwd",
    "C:\\x",
    "x" * 300,
    "ａ",
    "\ufeffname",
    "",
    "0",
    "input",
    "output",
)
NON_FINITE = (math.nan, math.inf, -math.inf)
FLOAT_FIELDS = (
    ("leaky_relu", "slope"),
    ("elu", "alpha"),
    ("batchnorm", "eps"),
    ("batchnorm", "momentum"),
    ("dropout", "p"),
)
LOOKALIKES = ("ａ", "ª", "ᵃ", "𝐚", "ｎ", "ⁿ", "ｋ", "Ａ")


@st.composite
def hostile_names(draw: st.DrawFn) -> Any:
    """Layers and blocks named with hostile names, `from:` them, as the network's name."""
    names = draw(st.lists(st.sampled_from(HOSTILE_NAMES), min_size=1, max_size=4))
    layers: list[Any] = [{"relu": None, "name": name} for name in names]
    if draw(st.booleans()):
        layers.append({"add": None, "from": names[:2]} if len(names) > 1 else "relu")
    spec: dict[str, Any] = {"input": [2, 4, 4], "layers": layers}
    if draw(st.booleans()):
        spec["name"] = draw(st.sampled_from(HOSTILE_NAMES))
    if draw(st.booleans()):
        block = draw(st.sampled_from(HOSTILE_NAMES))
        spec["blocks"] = {block: {"layers": ["relu"]}}
        spec["layers"].append({block: None, "name": draw(st.sampled_from(HOSTILE_NAMES))})
    return spec


@st.composite
def non_finite_floats(draw: st.DrawFn) -> Any:
    layers: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        kind, field = draw(st.sampled_from(FLOAT_FIELDS))
        value = draw(st.sampled_from(NON_FINITE) | numbers)
        layers.append({kind: {field: value}} if draw(st.booleans()) else {kind: value})
    return {"input": [2, 4, 4], "layers": layers}


def merge_keys(draw: st.DrawFn) -> str:
    """Text: one mapping with two or more `<<` keys (PyYAML cannot dump these)."""
    keys = draw(st.lists(st.sampled_from(["*a", "*b", "{depth: 4}", "[*a, *b]"]), min_size=1))
    where = draw(st.sampled_from(["layer", "top", "vars"]))
    merges = "".join(f"    <<: {k}\n" for k in keys)
    head = "a: &a {depth: 4}\nb: &b {kernel: 3}\n" if draw(st.booleans()) else ""
    if where == "layer":
        return f"{head}input: [2, 8, 8]\nlayers:\n  - conv:\n{merges}"
    if where == "vars":
        return f"{head}vars:\n{merges}input: [2, 8, 8]\nlayers: [relu]\n"
    return f"{head}<<: *a\n" * len(keys) + "input: [2, 8, 8]\nlayers: [relu]\n"


@st.composite
def lookalike_identifiers(draw: st.DrawFn) -> Any:
    var = draw(st.sampled_from(["a", "n", "k", "A"]))
    fake = draw(st.sampled_from(LOOKALIKES))
    op = draw(st.sampled_from(["+ 1", "* 2", "// 1", ""]))
    expr = draw(st.sampled_from([f"{fake} {op}", f"{var} {op} + {fake}", f"max({fake}, 1)"]))
    return {"vars": {var: 3}, "input": [4], "layers": [{"dense": expr.strip()}]}


@st.composite
def deep_block_chains(draw: st.DrawFn) -> Any:
    depth = draw(st.integers(1, 150))
    fan = draw(st.integers(1, 3))
    blocks: dict[str, Any] = {"b0": {"layers": [draw(st.sampled_from(["relu", "tanh"]))]}}
    for i in range(1, depth + 1):
        blocks[f"b{i}"] = {"layers": [f"b{i - 1}"] * (fan if i < 12 else 1)}
    return {"input": [4], "blocks": blocks, "layers": [f"b{depth}"]}


@st.composite
def near_limit_graphs(draw: st.DrawFn) -> Any:
    """Chains, repeats and fan-in around MAX_LAYERS (the in-process layer limit)."""
    shape = draw(st.sampled_from(["repeat", "chain", "fan_in"]))
    n = MAX_LAYERS + draw(st.integers(-3, 3))
    if shape == "repeat":
        return {"input": [4], "layers": [{"relu": None, "repeat": n}]}
    if shape == "chain":
        return {"input": [4], "layers": ["relu"] * n}
    width = draw(st.integers(2, 400))
    layers: list[Any] = [{"relu": None, "name": f"b{i}", "from": "input"} for i in range(width)]
    layers.append(
        {draw(st.sampled_from(["concat", "add"])): None, "from": [f"b{i}" for i in range(width)]}
    )
    return {"input": [1, 4], "layers": layers}


@st.composite
def hostile_specs(draw: st.DrawFn) -> str:
    source = draw(st.integers(0, 5))
    if source == 2:
        return merge_keys(draw)
    strategy = (
        hostile_names(),
        non_finite_floats(),
        None,
        lookalike_identifiers(),
        deep_block_chains(),
        near_limit_graphs(),
    )[source]
    assert strategy is not None
    return dump(draw, draw(strategy))


def front_end_and_build(text: str, test: str) -> None:
    """:func:`front_end`, then for a valid Plan the build on the meta device and its trace
    (``check --verify``): names that are module attributes used to pass check and die here."""
    if front_end(text, test) != "plan":
        return
    from archspec.compile.verify import verify

    plan = archspec.loads(text, FILE, max_layers=MAX_LAYERS).plan()
    if len(plan) > VERIFY_MAX:
        return  # near-limit graphs: the front end is what they test; verify is per layer
    if not _WARM:  # the first meta-device op imports torch._dynamo: seconds, once
        verify(archspec.loads("input: [2, 4]\nlayers: [relu]\n").plan())
        _WARM.append(True)
    with time_limit(HANG_S):
        verify(plan)


VERIFY_MAX = 200
_WARM: list[bool] = []


# --------------------------------------------------------------------------- the fuzz tests
@fuzz_settings(TEXT_SCALE)
@given(random_text)
@example("\x00")
@example("a: " + "[" * 10_000)
@example("\ufeffinput: [1, 8]\nlayers: [relu]\n")
def test_random_text_never_crashes(text: str) -> None:
    front_end(text, "random_text")


@fuzz_settings(FUZZ_SCALE)
@given(generated_specs())
def test_random_spec_documents_never_crash(text: str) -> None:
    front_end(text, "random_specs")


@fuzz_settings(FUZZ_SCALE * 2)  # the richest source: twice the inputs
@given(mutated_specs())
def test_mutated_shipped_specs_never_crash(text: str) -> None:
    front_end(text, "mutated_specs")


@fuzz_settings(HOSTILE_SCALE)
@given(hostile_specs())
@example("input: [2, 4, 4]\nlayers: [{relu: null, name: plan}]\n")
@example("input: [2, 4, 4]\nlayers: [{elu: {alpha: .inf}}]\n")
@example("vars: {a: 3}\ninput: [4]\nlayers: [{dense: 'ａ + 1'}]\n")
@example("input: [3, 8, 8]\nlayers: [{conv: {depth: 8, kernel: 999999999, padding: same}}]\n")
def test_hostile_specs_never_crash_check_or_build(text: str) -> None:
    front_end_and_build(text, "hostile_specs")


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cli")


@fuzz_settings(CLI_SCALE)
@given(text=st.one_of(mutated_specs(), generated_specs(), random_text))
def test_cli_check_exits_0_or_1_with_located_lines(cli_dir: Path, text: str) -> None:
    TRIED["cli"] += 1
    spec = cli_dir / FILE
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, stderr = cli_check(spec)
    assert code in (0, 1), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if code == 0:
        assert stderr == ""
        return
    lines = stderr.splitlines()
    assert lines
    where = re.compile(rf"^{re.escape(str(spec))}:[1-9]\d*:[1-9]\d*: \S")
    assert all(where.match(line) for line in lines), stderr


def cli_check(spec: Path) -> tuple[int, str]:
    """``archspec check SPEC`` in this process: the exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with time_limit(HANG_S), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(spec)])
    return code, err.getvalue()


def test_zz_enough_inputs_were_tried() -> None:
    """Runs last in file order; under xdist it checks only the tests on this worker."""
    for name, scale in (
        ("random_text", TEXT_SCALE),
        ("random_specs", FUZZ_SCALE),
        ("mutated_specs", FUZZ_SCALE * 2),
        ("cli", CLI_SCALE),
        ("hostile_specs", HOSTILE_SCALE),
    ):
        if TRIED[name]:
            expect_tried(name, scale)


# --------------------------------------------------------------------------- harness self-checks
def test_the_oracle_accepts_every_shipped_spec() -> None:
    for name, data in BASES.items():
        text = yaml.safe_dump(data, sort_keys=False)
        assert front_end(text, "self-check") == "plan", name


def test_the_time_limit_fires() -> None:
    started = time.perf_counter()
    with pytest.raises(Hang), time_limit(0.05):
        while True:
            pass
    assert time.perf_counter() - started < 2


# --------------------------------------------------------------------------- regressions
@pytest.mark.parametrize(
    ("text", "message"),
    [
        # reader errors (a character YAML forbids) were unlocated and spanned two lines
        ("\x00", r"^fuzz\.yaml:1:1: invalid YAML: the character U\+0000 is not allowed"),
        ("a: 1\r\nb: x\x07\n", r"^fuzz\.yaml:2:5: invalid YAML: the character U\+0007 is not"),
        ("a: '\ud800'\n", r"^fuzz\.yaml:1:5: invalid YAML: the character U\+D800 is not"),
        # a 5,000-digit integer: int() hit Python's 4,300-digit limit (ValueError, exit 3)
        (
            "input: [1, 8]\nlayers: [{dense: " + "9" * 5000 + "}]\n",
            r"^fuzz\.yaml:2:18: the integer 9{20}… \(5,000 characters\) is too large: "
            r"integers must be between -9,223,372,036,854,775,807 and 9,223,372,036,854,775,807",
        ),
        (
            "input: [1, 0x" + "f" * 17 + "]\nlayers: [relu]\n",
            r"^fuzz\.yaml:1:12: the integer "
            r"295,147,905,179,352,825,855 is too large",
        ),
    ],
    ids=["nul", "bell-after-crlf", "lone-surrogate", "5000-digits", "hex-beyond-int64"],
)
def test_fuzz_found_inputs_are_located_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        archspec.loads(text, FILE)
    assert_located(info.value)


def test_fuzz_found_messages_stay_on_one_line() -> None:
    """A quoted key or value with a line break or an ANSI escape used to print raw."""
    with pytest.raises(SpecError) as info:
        archspec.loads('input: [4]\nlayers:\n  - relu: {"x\\ny\\e[2J": 1}\n', FILE)
    assert_located(info.value)
    assert "unknown key 'x\\ny\\x1b[2J'" in info.value.render()


def test_sizes_beyond_int64_are_a_located_error() -> None:
    """Found by fuzzing: repeated upsampling grew sizes past 10^4300, where Python cannot even
    print them (ValueError, exit 3). A layer whose output exceeds int64 is now refused."""
    text = (
        "input: [1, 8]\nlayers:\n  - upsample: 1000000000000000000\n    repeat: 300\n  - dense: 3\n"
    )
    with pytest.raises(SpecError, match=r"fuzz\.yaml:3:\d+: .*(more|larger) than 2⁵⁹−1") as info:
        archspec.loads(text, FILE)
    assert_located(info.value)


def test_adaptive_pool_with_a_huge_size_is_checked_fast() -> None:
    """Found by fuzzing: adaptive_window() looped once per output position (hours for 10^9)."""
    with time_limit(2.0):
        plan = archspec.loads("input: [1, 8]\nlayers: [{adaptive_pool: 1000000000}]\n", FILE).plan()
    assert plan.output_shape == (1, 1_000_000_000)


# --------------------------------------------------------------------------- atheris (optional)
def atheris_main() -> None:  # pragma: no cover - run by hand: see tests/README.md
    """Coverage-guided fuzzing of the same oracle with atheris (libFuzzer), for long runs:
    ``pip install atheris``, then ``python tests/test_fuzz.py CORPUS_DIR -max_total_time=600``
    (libFuzzer flags; seed CORPUS_DIR with specs/*.yaml). Not part of the pytest run."""
    import atheris  # type: ignore[import-not-found]

    def one_input(data: bytes) -> None:
        front_end(data.decode("utf-8", errors="replace"), "atheris")

    for name, module in list(sys.modules.items()):  # imported already: instrument in place
        if name.split(".")[0] in ("archspec", "yaml"):
            for function in _functions(module, name):
                atheris.instrument_func(function)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def _functions(module: Any, name: str) -> Iterator[Any]:
    for value in list(vars(module).values()):
        if getattr(value, "__module__", None) != name:
            continue
        if isinstance(value, types.FunctionType):
            yield value
        elif isinstance(value, type):
            yield from (v for v in vars(value).values() if isinstance(v, types.FunctionType))


if __name__ == "__main__":
    atheris_main()
