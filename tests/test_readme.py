"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fenced_commands(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_test_command():
    readme = fenced_commands((ROOT / "README.md").read_text())
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(c for c in readme if "pytest" in c)
    assert test_command in ci


def test_readme_starts_with_the_demo_then_the_tests():
    readme = fenced_commands((ROOT / "README.md").read_text())
    assert "itsm-bot demo" in readme[0]
    assert "pytest" in readme[1]


def test_procfile_runs_the_bot_as_a_worker():
    assert (ROOT / "Procfile").read_text().strip() == "worker: itsm-bot run"
