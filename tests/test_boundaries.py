"""The rules of the house that code can check: the core imports no platform and no adapter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "adapters")
COMPOSITION_ROOT = {"cli.py", "__main__.py"}  # the one place that loads adapters by name


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_core_imports_no_platform_sdk_and_no_adapter():
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.parent == ROOT / "bot" and path.name in COMPOSITION_ROOT:
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_composition_root_names_adapters_only_as_strings():
    modules = imported_modules(ROOT / "bot" / "cli.py")
    assert not any(m.split(".")[0] in FORBIDDEN[:3] for m in modules)


def test_the_check_itself_catches_an_offender(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom slack_sdk.web import WebClient\nimport discord.ui\n")
    assert {"slack_sdk.web", "discord.ui"} <= imported_modules(sample)
