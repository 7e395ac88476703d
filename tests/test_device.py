"""Device selection, the training speed options (precision, channels_last, compile), and the
device in recorded protocols. Tests that need a CUDA GPU are marked ``cuda`` and skipped
without one."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.data.dataset import load_synthetic
from bench.data.split import make_split
from bench.core.device import DeviceError, describe_device, resolve_device, set_deterministic, worker_device
from bench.core.errors import ConfigError
from bench.arch.latency import Protocol, measure_latency
from bench.training.recipe import RecipeError, get_recipe
from bench.search.space import load_space, override_recipe
from bench.run.sweep import Sweep
from bench.training.loop import evaluate, train_model
from needs import required

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available() and not required("CUDA"),
                                reason="needs a CUDA GPU (BENCH_REQUIRE_CUDA=1 fails instead of skipping)")


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine that reports two CUDA GPUs (only their count and presence are used)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_the_cpu_without_a_gpu_and_the_first_gpu_with_one(no_gpu, monkeypatch):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_a_missing_gpu_is_a_clear_error(no_gpu):
    with pytest.raises(DeviceError, match=r"--device cuda: this machine has no CUDA GPU.*Devices here: cpu"):
        resolve_device("cuda")


def test_a_gpu_index_past_the_last_names_the_ones_there(two_gpus):
    with pytest.raises(DeviceError, match=r"--device cuda:2: this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_a_name_that_is_no_device_says_what_is(no_gpu):
    with pytest.raises(DeviceError, match="--device gpu0: not a device; use auto, cpu, cuda, cuda:N or mps"):
        resolve_device("gpu0")


def test_sweep_workers_take_the_gpus_in_turn(two_gpus):
    assert [worker_device("auto", i) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert worker_device("cuda", 3) == "cuda:1"
    assert worker_device("cuda:1", 0) == "cuda:1"  # asked for by name: every worker there
    assert worker_device("cpu", 1) == "cpu"


def test_workers_stay_on_the_cpu_without_a_gpu(no_gpu):
    assert worker_device("auto", 3) == "auto"
    assert resolve_device(worker_device("auto", 3)) == torch.device("cpu")


def test_speed_options_are_checked_and_recorded_in_the_recipe():
    recipe = get_recipe("default", precision="bf16", channels_last=True, compile=True)
    assert {k: recipe.to_dict()[k] for k in ("precision", "channels_last", "compile")} == {
        "precision": "bf16", "channels_last": True, "compile": True}
    assert get_recipe("default").precision == "fp32"
    with pytest.raises(RecipeError, match="recipe precision: 'fp8' is out of range: fp32, bf16 or fp16"):
        get_recipe("default", precision="fp8")


def _split(count: int = 30, size: int = 32):
    data = load_synthetic(count, size, seed=0)
    split = make_split(data.stems, data.source, data.content_hash, seed=0)
    return [data.subset(list(part)) for part in (split.train, split.val, split.test)]


def _small_convnet() -> nn.Module:
    """Conv-BN-ReLU and a 1x1 head: torch.compile takes ~20 s on it here, against minutes on TinyU-Net."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1))


def _tinyunet() -> nn.Module:
    return build_model(resolve_architecture("tinyunet", ["width_multiplier=0.5"]), seed=0)


def _losses(device: str = "cpu", network=_tinyunet, **options) -> list[float]:
    """Per-batch training losses of one epoch (no augmentation, no PreciseBN)."""
    train, val, _ = _split()
    model = network()
    losses: list[float] = []

    def progress(event, done, total, values):
        if event == "batch":
            losses.append(values["loss"])

    recipe = get_recipe("default", epochs=1, batch=4, augment=False, precise_bn=False, **options)
    train_model(model, train, val, recipe, 2, progress, device=torch.device(device))
    return losses


def test_bf16_training_runs_and_learns():
    train, val, test = _split()
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.5"]), seed=0)
    result = train_model(model, train, val, get_recipe("default", epochs=10, lr=3e-3, precision="bf16"), 2)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(model, test, 2).summary()["dice_c1"] > 0.5  # all background scores 0
    assert next(model.parameters()).dtype == torch.float32  # autocast: the weights stay fp32


def test_channels_last_training_follows_the_eager_loss_trajectory():
    eager, nhwc = _losses(), _losses(channels_last=True)
    assert len(eager) == len(nhwc) >= 4
    assert nhwc == pytest.approx(eager, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_compiled_training_follows_the_eager_loss_trajectory():
    eager, compiled = _losses(network=_small_convnet), _losses(network=_small_convnet, compile=True)
    assert len(eager) == len(compiled) >= 4
    assert compiled == pytest.approx(eager, rel=1e-3, abs=1e-4)


def test_bf16_losses_follow_the_fp32_trajectory_step_by_step():
    """Every step, not only the first: the updates under bf16 autocast (its forward, the
    upsampling backward summed in float32) keep the loss within 3 % of fp32's (measured: at most
    1.1 %); a backward summing in bf16, or gradients in the wrong dtype, would drift away."""
    eager, bf16 = _losses(), _losses(precision="bf16")
    assert len(eager) == len(bf16) >= 4
    assert bf16 == pytest.approx(eager, rel=0.03)
    assert bf16 != eager  # autocast did act


def test_the_latency_record_carries_the_device():
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.25"]), seed=0)
    record = measure_latency(model, 3, 32, protocol=Protocol(max_seconds=0.2, min_repeats=3)).protocol
    assert record["device"] == "cpu" and record["device_type"] == "cpu"
    assert record["figure"] == "measured"
    assert describe_device(torch.device("cpu")) == {"device": "cpu", "device_type": "cpu"}


@pytest.mark.cuda
@needs_cuda
def test_cuda_training_follows_the_cpu_loss_trajectory():
    cpu, cuda = _losses(), _losses("cuda")
    assert cuda == pytest.approx(cpu, rel=1e-3, abs=1e-4)


@pytest.mark.cuda
@needs_cuda
def test_cuda_mixed_precision_trains():
    assert all(torch.isfinite(torch.tensor(_losses("cuda", precision=p))).all() for p in ("bf16", "fp16"))


@pytest.mark.cuda
@needs_cuda
def test_cuda_latency_is_timed_with_events_and_records_the_gpu():
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.25"]), seed=0)
    result = measure_latency(model, 3, 64, protocol=Protocol(max_seconds=0.5, min_repeats=3, device="cuda"))
    record = result.protocol
    assert record["device"] == "cuda:0" and record["gpu"] and record["cuda"]
    assert record["timer"] == "cuda events" and record["gpu_peak_memory_mb"] > 0
    assert result.median_ms > 0


@pytest.fixture
def deterministic_reset():
    yield
    set_deterministic(False)  # a global switch: never leak it into the next test


def test_train_records_its_speed_options_and_device(run_cli, tmp_path, deterministic_reset):
    out = tmp_path / "run"
    result = run_cli("train", "tinyunet", "--set", "width_multiplier=0.25", "--size", "32", "--epochs", "1",
                     "--precision", "bf16", "--channels-last", "--deterministic", "--device", "cpu",
                     "--no-tracking", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "on cpu" in " ".join(result.output.split())  # rich wraps lines
    record = json.loads((out / "metrics.json").read_text())
    assert {k: record["recipe"][k] for k in ("precision", "channels_last", "compile")} == {
        "precision": "bf16", "channels_last": True, "compile": False}
    assert record["device"] == {"device": "cpu", "device_type": "cpu", "deterministic": True}
    assert record["latency"]["protocol"]["device"] == "cpu"
    again = run_cli("evaluate", str(out / "model.pt"), "--split", str(out / "split.json"), "--device", "cpu",
                    "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["device"] == "cpu"


@pytest.mark.parametrize("command", [
    ["train", "tinyunet", "--size", "32", "--epochs", "1", "--no-tracking"],
    ["compare", "tinyunet", "ulite", "--size", "32", "--epochs", "1", "--no-tracking"],
    ["evaluate", "model.pt"],
    ["profile", "tinyunet", "--size", "32", "--latency"],
    ["run", "--space", "cmrf_swap"],
])
def test_every_command_refuses_a_device_that_is_not_there(run_cli, no_gpu, tmp_path, command):
    (tmp_path / "model.pt").write_bytes(b"")
    result = run_cli(*command, "--device", "cuda:1")
    assert result.exit_code == 2, result.output
    assert "--device cuda:1: this machine has no CUDA GPU" in result.output
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_run_refuses_a_bad_speed_option_by_name(run_cli):
    result = run_cli("run", "--space", "cmrf_swap", "--precision", "fp8")
    assert result.exit_code == 2 and "'fp8' is not one of 'fp32', 'bf16', 'fp16'" in result.output


def test_space_recipe_takes_the_speed_options():
    space = override_recipe(load_space("cmrf_swap"), precision="bf16", channels_last=True, compile=None)
    assert (space.recipe.precision, space.recipe.channels_last, space.recipe.compile) == ("bf16", True, False)
    assert override_recipe(space, precision=None) is space
    with pytest.raises(ConfigError, match="--precision: 'int4' is out of range"):
        override_recipe(space, precision="int4")


def test_sweep_workers_train_on_the_gpus_in_turn(two_gpus):
    devices = [Sweep("cmrf_swap", tracking_uri=None, workers=3, worker_index=i).device for i in range(3)]
    assert devices == [torch.device("cuda", 0), torch.device("cuda", 1), torch.device("cuda", 0)]
    assert Sweep("cmrf_swap", tracking_uri=None, device="cpu", worker_index=1).device == torch.device("cpu")


def test_nvml_figures_when_it_can_be_read_and_why_not_otherwise(monkeypatch):
    import sys
    import types

    from bench.core import device

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert "not installed (pip install nvidia-ml-py)" in device._nvml(0)["nvml"]
    fake = types.SimpleNamespace(
        NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1, NVML_TEMPERATURE_GPU=0, nvmlClocksThrottleReasonGpuIdle=1,
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetCurrentClocksThrottleReasons=lambda h: 0x4 | 0x1,  # power cap, and idle
        nvmlSystemGetDriverVersion=lambda: b"580.65", nvmlDeviceGetClockInfo=lambda h, kind: (1755, 2619)[kind],
        nvmlDeviceGetMaxClockInfo=lambda h, kind: 1980, nvmlDeviceGetTemperature=lambda h, kind: 61)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert device._nvml(0) == {"driver": "580.65", "sm_clock_mhz": 1755, "sm_clock_max_mhz": 1980,
                               "memory_clock_mhz": 2619, "temperature_c": 61, "throttled": True,
                               "throttle_reasons": "0x5"}
    fake.nvmlInit = lambda: (_ for _ in ()).throw(RuntimeError("NVML Shared Library Not Found"))
    assert device._nvml(0) == {"nvml": "unreadable: NVML Shared Library Not Found"}
