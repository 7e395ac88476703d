"""The command line as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.blocks import BLOCKS
from needs import need


def test_list_blocks_shows_every_block_with_its_parameters(run_cli):
    result = run_cli("list", "blocks")
    assert result.exit_code == 0
    for name in BLOCKS.names():
        assert name in result.output
    assert "N: int = 8" in result.output


def test_list_architectures(run_cli):
    result = run_cli("list", "architectures")
    assert result.exit_code == 0
    assert all(name in result.output for name in ("unet", "tinyunet", "ulite"))


def test_validate_a_file_shows_the_wiring(run_cli):
    result = run_cli("validate", str(Path(__file__).resolve().parents[1] / "architectures" / "tinyunet.yaml"),
                     "--print-config")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "481,170 parameters" in result.output
    assert "1024 -> 512" in result.output  # first decoder stage: concat of 512 + 512
    assert "same_as" not in result.output  # the printed config has its ties resolved


def profile_json(run_cli, *args):
    result = run_cli("profile", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_profile_tinyunet_json_record(run_cli):
    record = profile_json(run_cli, "tinyunet", "--classes", "2", "--size", "256")
    assert record["params"] == 481_170
    assert abs(record["flops"] - 3.33e9) / 3.33e9 <= 0.03
    assert record["flops"] == 2 * record["macs"]
    assert record["input_shape"] == [1, 3, 256, 256] and record["output_shape"] == [1, 2, 256, 256]
    assert record["uncounted_ops"] == {}
    assert record["counter"].startswith("fvcore ")
    assert profile_json(run_cli, "tinyunet", "--classes", "4", "--size", "64")["params"] == 481_300


def test_profile_with_set_and_table_output(run_cli):
    assert profile_json(run_cli, "tinyunet", "--set", "encoder.block.N=4", "--size", "64")["params"] == 599_650
    result = run_cli("profile", "ulite", "--classes", "1", "--size", "64")
    assert result.exit_code == 0 and "878,417" in result.output and "paper FLOPs" in result.output


def test_profile_a_users_variant_file(run_cli, write_yaml):
    path = write_yaml("my_variant.yaml", "base: tinyunet\nencoder.block: {type: axial_block}\n")
    record = profile_json(run_cli, str(path), "--size", "64")
    assert record["architecture"] == "my_variant" and record["output_shape"] == [1, 2, 64, 64]


@pytest.mark.parametrize(
    "args,message",
    [
        (["profile", "tinyunet", "--set", "encoder.block.type=cmfr"], "Did you mean 'cmrf'?"),
        (["profile", "tinyunet", "--set", "encoder.block.q=1"], "block 'cmrf' has no key 'q'"),
        (["profile", "tinyunet", "--set", "encoder.block.N=x"], "expected int, got 'x'"),
        (["profile", "tinyunet", "--set", "encoder.blok.N=4"], "encoder.blok: does not exist"),
        (["profile", "tinyunet", "--set", "encoder.block.N=3"], "3 does not divide out_channels 64"),
        (["profile", "tinyunet", "--size", "100"], "input size 100 is not a multiple of 16"),
        (["validate", "nonexistent.yaml"], "architecture file 'nonexistent.yaml' not found"),
    ],
)
def test_bad_input_is_one_paragraph_and_exit_code_2(run_cli, args, message):
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output


def test_file_errors_through_the_real_console_script(write_yaml):
    path = write_yaml("broken.yaml", "base: tinyunet\nencoder.block: [cmrf\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{path}:3: YAML syntax error while parsing a flow sequence that starts on line 2" in done.stderr


def test_installed_console_script_finds_the_builtin_architectures(tmp_path):
    script = Path(sys.executable).with_name("bench")
    need("CONSOLE_SCRIPT", script.exists(), "the installed bench command")
    done = subprocess.run([str(script), "list", "architectures"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in ("unet", "tinyunet", "ulite"))


def test_profile_reports_train_and_deploy_forms(run_cli):
    record = profile_json(run_cli, "alnet", "--classes", "2", "--size", "256")
    assert record["params"] == 3_753_346 and record["deploy"]["params"] == 3_421_634
    assert record["deploy"]["macs"] < record["macs"]
    assert record["deploy"]["uncounted_ops"] == {} and record["uncounted_ops"] == {}
    result = run_cli("profile", "lmnet", "--size", "64")
    assert result.exit_code == 0 and "3,966,566" in result.output and "3,934,886" in result.output


@pytest.mark.parametrize(
    "sets",
    [
        ["encoder.block.type=repvgg", "decoder.block.type=repvgg"],
        ["bottleneck.type=lraspp"],
    ],
)
def test_issue_examples_of_swaps_profile(run_cli, sets):
    args = [a for s in sets for a in ("--set", s)]
    record = profile_json(run_cli, "tinyunet", *args, "--size", "64")
    assert record["uncounted_ops"] == {} and record["output_shape"] == [1, 2, 64, 64]


@pytest.mark.parametrize("name,params,stride", [("lmnet", "3,966,566", 16), ("alnet", "3,753,346", 32)])
def test_validate_totals_and_stride_come_from_the_built_network(run_cli, name, params, stride):
    result = run_cli("validate", name)
    assert result.exit_code == 0
    assert f"valid: {params} parameters, total stride {stride}" in result.output
