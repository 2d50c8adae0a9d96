"""The YAML loader: YAML 1.2 scalars, located errors, and guards for untrusted specs."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

import archspec
from archspec.errors import Location, SpecError
from archspec.loader.source import Limits, parse, read, resolve_scalar


def error_lines(text: str, limits: Limits | None = None) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(text, "s.yaml", limits or Limits())
    return info.value.render().splitlines()


# ---------------------------------------------------------------- YAML 1.2 scalars


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-4", 0.0001),  # YAML 1.1 (PyYAML) reads this as the string '1e-4'
        ("1.0e-4", 0.0001),
        ("1E3", 1000.0),
        (".5", 0.5),
        ("-2.5", -2.5),
        ("0x10", 16),
        ("0o17", 15),
        ("010", 10),  # decimal in YAML 1.2, octal 8 in YAML 1.1
        ("-7", -7),
        ("+3", 3),
        ("1_000", 1000),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        (".inf", float("inf")),
        ("no", "no"),  # YAML 1.1 booleans stay strings
        ("on", "on"),
        ("yes", "yes"),
        ("off", "off"),
        ("same", "same"),
        ("2001-01-01", "2001-01-01"),  # no timestamps
        ("-0x10", "-0x10"),  # the core schema has no signed hex
    ],
)
def test_plain_scalars_follow_yaml_1_2(text: str, value: object) -> None:
    assert parse(f"a: {text}\n").data == {"a": value}
    assert resolve_scalar(text) == value


def test_quoted_scalars_are_always_strings() -> None:
    assert parse("a: '1e-4'\nb: \"true\"\nc: '010'\n").data == {
        "a": "1e-4",
        "b": "true",
        "c": "010",
    }


def test_nan_is_a_float() -> None:
    value = parse("a: .nan\n").data["a"]
    assert isinstance(value, float) and value != value


def test_keys_become_strings() -> None:
    assert parse("1: a\ntrue: b\n").data == {"1": "a", "true": "b"}


def test_empty_document_is_none() -> None:
    doc = parse("# only a comment\n", "s.yaml")
    assert doc.data is None
    assert doc.source.locate(()) == Location("s.yaml", 1, 1)


# ---------------------------------------------------------------- duplicate keys


def test_duplicate_key_is_located_at_the_second_key() -> None:
    lines = error_lines("input: [1, 8]\nlayers: [relu]\ninput: [1, 9]\n")
    assert lines == [
        "s.yaml:3:1: input: duplicate key 'input' (first defined at line 1) — "
        "remove one of them: YAML keeps only the last"
    ]


def test_nested_duplicate_keys_are_all_reported() -> None:
    lines = error_lines("a:\n  b: 1\n  c: 2\n  b: 3\nd: {e: 1, e: 2}\n")
    assert [line.split(" — ")[0] for line in lines] == [
        "s.yaml:4:3: a.b: duplicate key 'b' (first defined at line 2)",
        "s.yaml:5:11: d.e: duplicate key 'e' (first defined at line 5)",
    ]


# ---------------------------------------------------------------- tags


def test_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        "input: [1, 8]\n"
        f"layers: !!python/object/apply:os.system ['touch {marker}']\n"
        f'name: !!python/object/apply:builtins.exec [\'open("{marker}", "w")\']\n'
    )
    with pytest.raises(SpecError) as info:
        archspec.load(spec)
    lines = info.value.render().splitlines()
    assert len(lines) == 2
    assert re.match(
        rf"^{re.escape(str(spec))}:2:9: the tag '!!python/object/apply:os\.system' is not allowed"
        r" — specs are plain data",
        lines[0],
    )
    assert lines[1].startswith(f"{spec}:3:7: the tag '!!python/object/apply:builtins.exec'")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !custom 3\n", "!custom"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!set {x}\n", "!!set"),
        ("a: !!str 3\n", "!!str"),  # would silently turn the number into text
        ("a: !!int '3'\n", "!!int"),
        ("a: !!map {b: 1}\n", "!!map"),
        ("a: ! 3\n", "!"),
    ],
)
def test_every_explicit_tag_is_refused(text: str, tag: str) -> None:
    with pytest.raises(
        SpecError, match=rf"^s\.yaml:1:4: the tag '{re.escape(tag)}' is not allowed"
    ):
        parse(text, "s.yaml")


# ---------------------------------------------------------------- syntax errors


def test_tab_indentation_is_located_with_a_hint() -> None:
    (line,) = error_lines("layers:\n\t- relu\n")
    # PyYAML names the character ('\t'); libyaml does not, so archspec adds "(a tab)"
    assert re.match(
        r"^s\.yaml:2:1: invalid YAML: .*('\\t'|a tab).* — indent with spaces, not tabs$", line
    )


def test_unclosed_bracket_is_located() -> None:
    (line,) = error_lines("input: [1, 28, 28\nlayers: [relu]\n")
    assert re.match(
        r"^s\.yaml:\d+:\d+: invalid YAML: while parsing a flow sequence (did not find )?expected "
        r"',' or ']'.*"
        r" — check the indentation and brackets around here$",
        line,
    )


def test_bare_kind_followed_by_name_explains_the_colon() -> None:
    (line,) = error_lines("layers:\n  - relu\n    name: act\n")
    assert re.match(
        r"s\.yaml:3:9: invalid YAML: mapping values are not allowed (here|in this "
        r"context) — ",
        line,
    )
    assert "write its kind with a colon (`- relu:`)" in line


def test_undefined_alias_is_located() -> None:
    (line,) = error_lines("a: 1\nb: *nothing\n")
    assert re.match(
        r"^s\.yaml:2:4: the alias \*nothing has no anchor &nothing before it — define", line
    )


def test_kind_with_colon_and_name_is_fine() -> None:
    assert parse("layers:\n  - relu:\n    name: act\n").data == {
        "layers": [{"relu": None, "name": "act"}]
    }


# ---------------------------------------------------------------- resource guards


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_by_the_node_count() -> None:
    start = time.perf_counter()
    lines = error_lines(billion_laughs())
    elapsed = time.perf_counter() - start
    assert len(lines) == 1
    assert re.match(
        r"^s\.yaml:\d+:\d+: the document expands to more than 200,000 values \(through aliases\)"
        r" — remove the recursive anchors/aliases$",
        lines[0],
    )
    assert elapsed < 10.0  # a sanity bound only: the guard is the count, not the clock


def test_alias_expansion_limit_is_configurable() -> None:
    small = billion_laughs(levels=2)  # 1,000 strings after expansion
    assert parse(small).data["a2"][0][0][0] == "lol"
    with pytest.raises(SpecError, match=r"^s\.yaml:\d+:\d+: the document expands to more than 500"):
        parse(small, "s.yaml", Limits(max_nodes=500))


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_nesting_is_refused_without_recursion_error(depth: int) -> None:
    text = "a: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(SpecError, match=r"^s\.yaml:1:67: nesting is deeper than 64 levels — "):
        parse(text, "s.yaml")


def test_nesting_at_the_limit_is_accepted() -> None:
    text = "[" * 64 + "]" * 64  # the top-level list counts as one level
    data = parse(text).data
    for _ in range(63):
        (data,) = data
    assert data == []


def test_aliases_that_nest_deeper_than_the_limit_are_refused() -> None:
    # Each anchor is 40 levels deep as written and contains the previous one: written
    # nesting stays under the limit, expanded nesting reaches 40 × 30.
    lines = [f"a0: &a0 {'[' * 40}1{']' * 40}"]
    lines += [f"a{i}: &a{i} {'[' * 40}*a{i - 1}{']' * 40}" for i in range(1, 30)]
    with pytest.raises(SpecError, match=r"^s\.yaml:\d+:\d+: nesting is deeper than 64 levels once"):
        parse("\n".join(lines), "s.yaml")


@pytest.mark.parametrize(
    ("text", "col"), [("a: &a [*a]\n", 8), ("a: &a {b: *a}\n", 11), ("a: &a {<<: *a}\n", 12)]
)
def test_an_alias_inside_its_own_anchor_is_refused(text: str, col: int) -> None:
    with pytest.raises(
        SpecError, match=rf"^s\.yaml:1:{col}: an alias is used inside its own anchor"
    ):
        parse(text, "s.yaml")


def test_text_over_the_size_limit_is_refused() -> None:
    with pytest.raises(
        SpecError, match=r"^s\.yaml:1:1: the file is 2,001 bytes, more than the limit"
    ):
        parse("#" * 2001, "s.yaml", Limits(max_bytes=2000))


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 200_000)  # 2,000,000 bytes
    with pytest.raises(
        SpecError, match=rf"^{re.escape(str(big))}:1:1: the file is 2,000,000 bytes"
    ):
        read(big)


# ---------------------------------------------------------------- files


def test_non_utf8_file_is_located_at_the_bad_byte(tmp_path: Path) -> None:
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(b"input: [1, 8]\nname: caf\xe9\n")
    with pytest.raises(
        SpecError,
        match=rf"^{re.escape(str(spec))}:2:10: the file is not UTF-8 text "
        r"\(byte 0xe9 at offset 23\) — save the spec as UTF-8$",
    ):
        read(spec)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=rf"^{re.escape(str(missing))}:1:1: no such file — check"):
        archspec.load(missing)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r":1:1: is a directory, not a spec file — name a \.yaml"):
        archspec.load(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    spec = tmp_path / "locked.yaml"
    spec.write_text("input: [4]\nlayers: [relu]\n")
    spec.chmod(0)
    try:
        if _readable(spec):
            pytest.skip("running as root: permissions do not apply")
        with pytest.raises(SpecError, match=r":1:1: cannot read the file: .* — check permissions$"):
            read(spec)
    finally:
        spec.chmod(0o644)


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    spec = tmp_path / "bom.yaml"
    spec.write_bytes(b"\xef\xbb\xbfinput: [4]\nlayers: [relu]\n")
    assert read(spec).data == {"input": [4], "layers": ["relu"]}


# ---------------------------------------------------------------- merge keys


def test_merge_key_copies_an_anchor_and_own_keys_win() -> None:
    doc = parse(
        "defaults: &conv {depth: 32, kernel: 3, padding: same}\nlayer:\n  <<: *conv\n  depth: 64\n"
    )
    assert doc.data["layer"] == {"depth": 64, "kernel": 3, "padding": "same"}


def test_merge_key_list_earlier_mappings_win() -> None:
    doc = parse("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n")
    assert doc.data["c"] == {"x": 1, "y": 1, "z": 2}


def test_merge_key_with_a_scalar_is_located() -> None:
    (line,) = error_lines("c:\n  <<: 3\n")
    assert line == (
        "s.yaml:2:7: a merge key '<<' needs a mapping or a list of mappings — "
        "write '<<: *anchor' where the anchor names a mapping"
    )


# ---------------------------------------------------------------- the source map


def test_source_map_points_at_nested_values_and_keys() -> None:
    text = (
        "name: x\n"  # 1
        "layers:\n"  # 2
        "  - conv: {depth: 32, kernel: [3, 5]}\n"  # 3
        "  - relu\n"  # 4
        "  - dense:\n"  # 5
        "      units: 10\n"  # 6
        "    name: head\n"  # 7
    )
    source = parse(text, "s.yaml").source
    values = {
        ("name",): (1, 7),
        ("layers",): (3, 3),
        ("layers", 0): (3, 5),
        ("layers", 0, "conv"): (3, 11),
        ("layers", 0, "conv", "depth"): (3, 19),
        ("layers", 0, "conv", "kernel"): (3, 31),
        ("layers", 0, "conv", "kernel", 1): (3, 35),
        ("layers", 1): (4, 5),
        ("layers", 2, "dense", "units"): (6, 14),
        ("layers", 2, "name"): (7, 11),
    }
    for path, (line, col) in values.items():
        assert source.locate(path) == Location("s.yaml", line, col), path
    assert source.locate(("layers", 0, "conv", "kernel"), key=True) == Location("s.yaml", 3, 23)
    assert source.locate(("layers", 2, "name"), key=True) == Location("s.yaml", 7, 5)


def test_locate_falls_back_to_the_closest_ancestor() -> None:
    source = parse("a:\n  b: {c: 1}\n", "s.yaml").source
    assert source.locate(("a", "b", "missing", 3)) == Location("s.yaml", 2, 6)
    assert source.locate(("nothing",)) == Location("s.yaml", 1, 1)
