"""The architecture grammar: inheritance, overrides, ties, defaults, hashing, and its errors."""
from __future__ import annotations

import pytest

from bench.arch.assemble import build_model
from bench.arch.config import config_hash, resolve_architecture
from bench.core.errors import ConfigError


def test_resolved_config_fills_block_defaults_and_expands_ties():
    arch = resolve_architecture("tinyunet")
    block = {"type": "cmrf", "N": 8, "shortcut": True, "act": "gelu"}
    assert arch.config["encoder"]["block"] == block
    assert arch.config["decoder"]["block"] == block
    assert arch.config["decoder"]["fuse"] == "concat"
    assert arch.name == "tinyunet"


def test_child_replaces_a_dotted_slot_whole(write_yaml):
    path = write_yaml("variant.yaml", """
        base: tinyunet
        encoder.block: {type: double_conv}
    """)
    arch = resolve_architecture(path)
    assert arch.name == "variant"
    assert arch.config["encoder"]["block"]["type"] == "double_conv"
    assert "N" not in arch.config["encoder"]["block"]  # replaced, not merged
    assert arch.config["decoder"]["block"]["type"] == "double_conv"  # the tie follows
    assert arch.config["encoder"]["widths"] == [64, 128, 256, 512]  # untouched slots inherited


def test_child_replacing_a_section_gets_no_merge(write_yaml):
    path = write_yaml("partial.yaml", """
        base: tinyunet
        encoder:
          block: {type: double_conv}
    """)
    with pytest.raises(ConfigError) as info:
        resolve_architecture(path)
    assert info.value.path == "encoder.widths"
    assert "partial.yaml:2" in str(info.value)


def test_inheritance_chain_and_relative_base(write_yaml):
    write_yaml("a.yaml", "base: ulite\nclasses: 3\n")
    path = write_yaml("b.yaml", "base: a.yaml\nbottleneck: {type: identity}\n")
    config = resolve_architecture(path).config
    assert config["classes"] == 3 and config["bottleneck"] == {"type": "identity"}


def test_inheritance_cycle_is_refused(write_yaml):
    write_yaml("x.yaml", "base: y.yaml\n")
    path = write_yaml("y.yaml", "base: x.yaml\n")
    with pytest.raises(ConfigError, match="inheritance cycle"):
        resolve_architecture(path)


def test_set_type_replaces_block_and_keeps_slot_width():
    arch = resolve_architecture("unet", ["bottleneck.type=conv"])
    assert arch.config["bottleneck"] == {"type": "conv", "kernel_size": 3, "out_channels": 1024}
    arch = resolve_architecture("tinyunet", ["encoder.block.type=double_conv"])
    assert arch.config["encoder"]["block"]["type"] == "double_conv"


def test_set_unties_a_tied_block_by_type_then_sets_its_parameter():
    arch = resolve_architecture("tinyunet", ["decoder.block.type=cmrf", "decoder.block.N=4"])
    assert arch.config["encoder"]["block"]["N"] == 8
    assert arch.config["decoder"]["block"]["N"] == 4


def test_set_parses_yaml_values_and_list_indices():
    arch = resolve_architecture("tinyunet", ["encoder.widths=[32, 64, 128, 256]",
                                             "encoder.widths.0=16", "encoder.block.shortcut=false"])
    assert arch.config["encoder"]["widths"] == [16, 64, 128, 256]
    assert arch.config["encoder"]["block"]["shortcut"] is False


def test_hash_identifies_the_resolved_network(write_yaml):
    explicit = write_yaml("explicit.yaml", """
        base: tinyunet
        encoder.block: {type: cmrf, N: 8, shortcut: true, act: gelu}
        name: tinyunet
    """)
    assert resolve_architecture(explicit).hash == resolve_architecture("tinyunet").hash
    assert resolve_architecture("tinyunet", ["encoder.block.N=4"]).hash != resolve_architecture("tinyunet").hash
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})


# ----------------------------------------------------------------------------- errors


def error_of(ref, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_model(resolve_architecture(ref, overrides))
    return info.value


def test_unknown_block_suggests_close_matches(write_yaml):
    path = write_yaml("typo.yaml", "base: tinyunet\nencoder.block: {type: cmfr, N: 8}\n")
    error = error_of(path)
    assert error.path == "encoder.block.type"
    assert "typo.yaml:2" in str(error) and "Did you mean 'cmrf'?" in str(error)


def test_unknown_parameter_lists_the_block_signature():
    error = error_of("tinyunet", ["encoder.block.type=double_conv", "encoder.block.N=4"])
    assert "block 'double_conv' has no key 'N'" in str(error)
    assert "mid_channels" in str(error)


def test_unknown_parameter_in_a_file(write_yaml):
    path = write_yaml("p.yaml", "base: tinyunet\nencoder.block: {type: cmrf, n: 4}\n")
    error = error_of(path)
    assert error.path == "encoder.block.n" and "Did you mean 'N'?" in str(error)


def test_wrong_type_names_path_and_expected_type():
    error = error_of("tinyunet", ["encoder.block.N=eight"])
    assert error.path == "encoder.block.N"
    assert "expected int, got 'eight'" in str(error)
    assert error_of("tinyunet", ["encoder.block.shortcut=3"]).path == "encoder.block.shortcut"
    assert "expected one of concat, concat_skip_first, add" in str(error_of("tinyunet", ["decoder.fuse=sum"]))


def test_missing_required_slot(write_yaml):
    path = write_yaml("nodecoder.yaml", """
        encoder:
          widths: [8, 16]
          block: {type: double_conv}
          down: {type: maxpool}
        bottleneck: {type: identity}
        head: {type: conv1x1}
    """)
    error = error_of(path)
    assert error.path == "decoder"
    assert "missing required section 'decoder'" in str(error) and "nodecoder.yaml" in str(error)


def test_yaml_syntax_error_names_file_and_line(write_yaml):
    path = write_yaml("broken.yaml", """
        base: tinyunet
        encoder.block: {type: cmrf, N: 8
        classes: 2
    """)
    error = error_of(path)
    assert "YAML syntax error" in str(error) and f"{path}:3" in str(error)


def test_set_path_that_does_not_exist():
    error = error_of("tinyunet", ["encoder.blok.N=4"])
    assert str(error).startswith("--set encoder.blok.N=4: encoder.blok: does not exist")
    assert "Did you mean 'block'?" in str(error)
    assert "has no key 'foo'" in str(error_of("tinyunet", ["foo=1"]))
    assert "not an index" in str(error_of("tinyunet", ["encoder.widths.7=1"]))


def test_setting_a_parameter_of_a_tied_block_explains_the_tie():
    error = error_of("tinyunet", ["decoder.block.N=4"])
    assert "tied to encoder.block" in str(error) and "Set encoder.block.N instead" in str(error)


def test_indivisible_N_names_the_path_and_width():
    error = error_of("tinyunet", ["encoder.block.N=3"])
    assert error.path == "encoder.block.N"
    assert "3 does not divide out_channels 64" in str(error)
    assert "--set encoder.block.N=3" in str(error)


def test_channel_contract_of_same_channel_blocks(write_yaml):
    path = write_yaml("pool.yaml", "base: ulite\nencoder.down: {type: maxpool}\n")
    error = error_of(path)
    assert error.path == "encoder.down" and "keeps the channel count" in str(error)
    assert "16 -> 32" in str(error) and "pool.yaml:2" in str(error)


def test_stage_lists_must_match_the_number_of_stages():
    assert "has 2 entries but the encoder has 4 stages" in str(
        error_of("tinyunet", ["encoder.depths=[1, 2]"])
    )


def test_unknown_architecture_suggests_builtins():
    with pytest.raises(ConfigError, match="Did you mean 'tinyunet'"):
        resolve_architecture("tinyunt")


def test_add_fusion_needs_matching_channels():
    error = error_of("tinyunet", ["decoder.fuse=add"])
    assert error.path == "decoder.fuse"
    assert "the upsampled map (512 channels) and the skip (256) to match at decoder stage 2" in str(error)
