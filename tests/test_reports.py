"""The committed reports under reports/: each names the command that made it (one that exists and
parses today) and a commit in this repository's history; reports/README.md indexes every one;
every reports/ path the README links to is committed."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted(p for p in (ROOT / "reports").rglob("*.md") if p.name != "README.md" or p.parent.name != "reports")
COMMAND = re.compile(r"`((?:python -m benchmarks\.|bench )[^`]+)` at commit ([0-9a-f]{7,40})")


def parses(command: str) -> None:
    """Fails unless ``command`` names a benchmark or bench command whose options exist today."""
    words = shlex.split(command)
    if words[:2] == ["python", "-m"]:
        module = ROOT / (words[2].replace(".", "/") + ".py")
        assert module.is_file(), command
        source = module.read_text() + (ROOT / "benchmarks" / "common.py").read_text()
        for flag in (w.split("=")[0] for w in words[3:] if w.startswith("--")):
            assert f'"{flag}"' in source, f"{command}: {flag} is no longer an option"
        return
    from bench.cli import cli

    group, args = cli, words[1:]
    while hasattr(group, "commands") and args and args[0] in group.commands:
        group, args = group.commands[args[0]], args[1:]
    assert not hasattr(group, "commands"), command
    group.make_context(words[1], args, resilient_parsing=False)


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_committed_report_names_a_command_that_parses_and_a_known_commit(report):
    found = COMMAND.search(report.read_text())
    assert found, f"{report} does not name the command and commit that made it"
    command, commit = found.groups()
    parses(command)
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    assert known.returncode == 0, f"{report}: commit {commit} is not in this repository's history"


def test_the_reports_index_lists_every_report_and_the_readme_links_only_committed_ones():
    index = (ROOT / "reports" / "README.md").read_text()
    for report in REPORTS:
        shown = str(report.relative_to(ROOT / "reports"))
        assert shown in index or str(report.parent.relative_to(ROOT / "reports")) + "/" in index, shown
    for link in re.findall(r"\]\((reports/[^)#]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / link).exists(), f"README links to {link}, which is not committed"
