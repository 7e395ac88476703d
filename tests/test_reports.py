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


# words that mark a measured figure (a rule's own constants, such as "10 s cap", are not)
MEASURED = re.compile(r"images/s|Kendall|simulated hours|\d\.\d+x\b|\d+ min \d+ s|\bin under \d+ minutes\b|"
                      r"\bcalled better in\b")
CITED = re.compile(r"\b(reports/[\w./-]*\w)")
FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?: ?(%))?(?![\w.])")


def readme_units(text: str) -> list[str]:
    """The README cut into units that make one claim: a paragraph or a list item, with the indented
    lines, code and tables that continue it (code blocks left out: their numbers are options)."""
    text = re.sub(r"```.*?```", "\n\n", text, flags=re.S)
    units: list[list[str]] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith(("  ", "|")) and units:
            units[-1].append(lines.pop(0))  # an indented or table block continues the claim above
        elif lines:
            units.append([lines.pop(0)])
        for line in lines:
            if re.match(r"[-*] ", line) or line.startswith("#") or units[-1][-1].startswith("#"):
                units.append([line])
            else:
                units[-1].append(line)
    return ["\n".join(unit) for unit in units]


def figures_of(paths: list[str]) -> list[float]:
    found = []
    for path in paths:
        target = ROOT / path
        files = [target] if target.is_file() else sorted(target.rglob("*")) if target.is_dir() else []
        for f in files:
            if f.suffix in (".md", ".csv", ".json"):
                found += [float(n) for n, _ in FIGURE.findall(f.read_text())]
    return found


def quoted_as(figure: str, percent: bool, found: list[float]) -> bool:
    """Whether a report holds ``figure`` as the README rounds it (a share may be a percentage)."""
    digits = len(figure.split(".")[1]) if "." in figure else 0
    tolerance = 0.5 * 10 ** -digits + 1e-9
    scales = (1.0, 100.0) if percent else (1.0,)
    return any(abs(f * s - float(figure)) <= tolerance for f in found for s in scales)


def test_every_figure_the_readme_quotes_from_a_measurement_is_in_the_committed_report_it_cites():
    problems = []
    for unit in readme_units((ROOT / "README.md").read_text()):
        cited = CITED.findall(unit)
        if MEASURED.search(unit) and not cited:
            problems.append(f"measured figures without a report: {unit[:160]!r}")
            continue
        if not cited:
            continue
        found = figures_of(cited)
        # commands and links hold options, "95 % interval" names a method and "torch 2.13" a version
        prose = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)|95 % (?:[\w-]+ )?interval|(?:torch|Python)\s+\d+\.\d+", "", unit)
        for figure, percent in FIGURE.findall(prose):
            if ("." in figure or percent) and not quoted_as(figure, bool(percent), found):
                problems.append(f"{figure}{' %' if percent else ''} is in none of {cited}: {unit[:120]!r}")
    assert not problems, "\n".join(problems)
