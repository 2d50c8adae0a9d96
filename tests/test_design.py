"""DESIGN.md stays true: its stage list is the import contract, its file lists exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "importlinter"
]["contracts"]


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DESIGN, re.M | re.S)
    assert match, f"DESIGN.md has no section '## {title}'"
    return match.group(1)


def _contract(kind: str) -> dict[str, object]:
    (contract,) = [c for c in CONTRACTS if c["type"] == kind]
    return contract


def test_stage_list_is_the_layers_contract_in_order() -> None:
    stages = re.findall(r"^- `([^`]+)`", _section("Stages and what each may import"), re.M)
    layers = [re.sub(r"\s*\|\s*", " | ", layer) for layer in _contract("layers")["layers"]]  # type: ignore[union-attr]
    assert stages == layers


def test_torch_free_modules_are_the_forbidden_contract() -> None:
    text = _section("Stages and what each may import")
    forbidden = _contract("forbidden")
    for module in [*forbidden["source_modules"], *forbidden["forbidden_modules"]]:  # type: ignore[misc]
        assert f"`{module}`" in text, f"DESIGN.md does not name {module}"


def test_add_a_kind_and_add_a_command_name_files_that_exist() -> None:
    for title in ("How to add a kind", "How to add a command"):
        paths = re.findall(
            r"`((?:archspec|tests|specs)/[^`<>]+\.(?:py|yaml|json))`", _section(title)
        )
        assert paths, title
        missing = [p for p in paths if not (ROOT / p).is_file()]
        assert missing == [], f"{title}: {missing}"


def test_named_tables_exist() -> None:
    from strategies import PARAMS
    from test_differential import REFERENCE

    from archspec.cli import COMMANDS
    from archspec.compile.builders import BUILDERS, by_rank
    from archspec.shapes.kinds import REGISTRY

    assert PARAMS and REFERENCE and COMMANDS and BUILDERS and REGISTRY and by_rank
