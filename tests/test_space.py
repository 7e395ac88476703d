"""Search-space files: the shipped ones load; bad ones are refused before any trial runs."""
from __future__ import annotations

import pytest

from bench.core.errors import ConfigError
from bench.search.space import BlockChoice, builtin_spaces, load_space


@pytest.mark.parametrize("name", ["cmrf_swap", "cmrf_n", "context_swap", "quick"])
def test_shipped_spaces_load(name):
    assert name in builtin_spaces()
    space = load_space(name)
    assert space.vary and space.objectives["val_dice"] == "maximize"


def test_block_choices_carry_conditional_parameters():
    choice = load_space("cmrf_swap").vary["encoder.block"]
    assert isinstance(choice, BlockChoice)
    assert choice.options["cmrf"]["N"].choices == (2, 4, 8, 16)
    assert choice.options["double_conv"] == {}


BAD = {
    "unknown slot": ("vary: {encoder.blok: {cmrf: {}}}", "vary.encoder.blok", "Did you mean"),
    "unknown block": ("vary: {encoder.block: {cmfr: {}}}", "vary.encoder.block.cmfr", "Did you mean 'cmrf'?"),
    "wrong parameter": ("vary: {encoder.block: {cmrf: {n: {choices: [2]}}}}", "vary.encoder.block.cmrf.n",
                        "has no parameter 'n'"),
    "parameter of the base block": ("vary: {encoder.block.n: {choices: [2, 4]}}", "vary.encoder.block.n",
                                    "encoder.block is cmrf, which has no parameter 'n'"),
    "objective not a metric": ("vary: {width_multiplier: {choices: [1.0]}}\nobjectives: {val_dise: maximize}",
                               "objectives.val_dise", "Did you mean 'val_dice' or 'val_dice_all'?"),
    "unknown constraint": ("vary: {width_multiplier: {choices: [1.0]}}\nconstraints: {parms: {max: 1}}",
                           "constraints.parms", "Did you mean 'params'?"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_space_files_are_refused_with_path_and_line(case, write_yaml):
    body, path, hint = BAD[case]
    if "objectives" not in body:
        body += "\nobjectives: {val_dice: maximize, params: minimize}"
    file = write_yaml("bad.yaml", "architecture: tinyunet\n" + body + "\n")
    with pytest.raises(ConfigError) as info:
        load_space(str(file))
    assert info.value.path == path and hint in str(info.value)
    assert f"{file}:" in str(info.value)


def test_bad_space_exits_2_before_any_trial(run_cli, write_yaml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    file = write_yaml("bad.yaml", "architecture: tinyunet\nvary: {encoder.block: {cmfr: {}}}\n"
                                  "objectives: {val_dice: maximize}\n")
    result = run_cli("run", "--space", str(file))
    assert result.exit_code == 2 and "unknown block 'cmfr'" in result.output
    assert not (tmp_path / "runs").exists()  # no study was created
