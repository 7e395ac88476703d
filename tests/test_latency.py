"""The latency protocol: statistics, stopping rules and interleaving on a fake clock (no timing
assertions), the protocol record, backends' output agreement, isolation, peak memory."""
from __future__ import annotations

import copy
import importlib.util
import json
from typing import Callable

import pytest
import torch
from torch import nn

import bench.arch.latency as latency
from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.core.errors import BenchError
from bench.arch.latency import Candidate, Protocol, is_stable, measure, summarize, time_interleaved
from bench.results.mlflow_store import latency_tags
from bench.arch.memory import forward_peak_memory, train_step_peak_memory
from bench.arch.runtimes import Runner, prepare
from needs import need


class FakeClock:
    """Time moves only when a fake forward pass says it took some milliseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def run(self, label: str, durations_ms: list[float]) -> Callable[[], None]:
        """A forward pass taking durations_ms[i] on its i-th call (cycling)."""
        count = {"i": 0}

        def forward() -> None:
            self.calls.append(label)
            self.now += durations_ms[count["i"] % len(durations_ms)] / 1e3
            count["i"] += 1

        return forward


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_summarize_order_statistics():
    s = summarize([float(v) for v in range(10, 0, -1)])  # order must not matter
    assert (s.median, s.iqr, s.p90, s.n) == (5.5, 4.5, pytest.approx(9.1), 10)
    assert (s.ci_low, s.ci_high) == (1.0, 10.0)  # n = 10: ranks 1 and 10
    s = summarize([float(v) for v in range(1, 101)])
    assert (s.median, s.ci_low, s.ci_high) == (50.5, 40.0, 61.0)  # the textbook ranks 40 and 61
    assert s.iqr == pytest.approx(49.5) and s.p90 == pytest.approx(90.1)
    one = summarize([3.0])
    assert (one.median, one.iqr, one.p90, one.n) == (3.0, 0.0, 3.0, 1)
    with pytest.raises(ValueError):
        summarize([])


def test_stability_is_the_relative_width_of_the_median_interval():
    assert is_stable(summarize([10.0] * 12), 0.01)
    assert not is_stable(summarize([10.0, 10.5] * 6), 0.01)  # interval 10..10.5: 2.5 % half-width
    assert is_stable(summarize([10.0, 10.5] * 6), 0.03)


def test_interleaved_rounds_stop_when_every_median_is_stable():
    clock = FakeClock()
    runs = {"a": clock.run("a", [2.0]), "b": clock.run("b", [4.0])}
    samples, stopped = time_interleaved(runs, Protocol(warmup=2, min_repeats=5), clock)
    assert stopped == "stable"
    assert clock.calls == ["a", "a", "b", "b"] + ["a", "b"] * 5  # warm-up, then A B A B ...
    assert samples["a"] == pytest.approx([2.0] * 5) and samples["b"] == pytest.approx([4.0] * 5)


def test_time_cap_and_max_repeats():
    clock = FakeClock()
    noisy = {"a": clock.run("a", [1.0, 3.0])}  # never stable: the median's interval spans 1..3
    samples, stopped = time_interleaved(noisy, Protocol(warmup=0, max_seconds=0.05), clock)
    assert stopped == "time cap" and len(samples["a"]) == 26  # 25 runs of 1, 3, 1 ... ms: 49 ms < 50
    clock = FakeClock()
    samples, stopped = time_interleaved({"a": clock.run("a", [1.0, 3.0])},
                                        Protocol(warmup=0, max_repeats=7), clock)
    assert stopped == "max repeats" and len(samples["a"]) == 7
    clock = FakeClock()  # a slow network still gets three timed runs under a tiny cap
    samples, stopped = time_interleaved({"a": clock.run("a", [500.0, 900.0])},
                                        Protocol(warmup=0, max_seconds=0.1), clock)
    assert stopped == "time cap" and len(samples["a"]) == 3


def test_measure_records_the_whole_protocol_and_ratios(monkeypatch):
    clock = FakeClock()
    per_backend = {"eager": [4.0, 4.0, 5.0], "channels_last": [2.0, 3.0, 2.0]}

    def fake_prepare(model, x, backend, threads):
        assert not model.training and x.shape == (2, 3, 16, 16)
        return Runner(backend, clock.run(backend, per_backend[backend]), {"extra": "1.0"})

    monkeypatch.setattr(latency, "prepare", fake_prepare)
    protocol = Protocol(threads=1, batch=2, warmup=1, min_repeats=3, max_repeats=9)
    model = tiny_net()
    results = measure([Candidate("deploy/eager", model), Candidate("deploy/cl", model, backend="channels_last")],
                      3, 16, protocol, clock=clock)
    eager, channels_last = results
    assert (eager.median_ms, eager.n, eager.stopped) == (pytest.approx(4.0), 9, "max repeats")
    assert eager.iqr_ms == pytest.approx(1.0) and eager.p90_ms == pytest.approx(5.0)
    assert channels_last.median_ms == pytest.approx(2.0)
    assert (eager.ratio, channels_last.ratio) == (pytest.approx(1.0), pytest.approx(0.5))
    assert channels_last.reference == "deploy/eager"
    expected = {"backend", "form", "threads", "batch", "input_size", "in_channels", "warmup",
                "min_repeats", "max_repeats", "max_seconds", "target", "isolate", "interleaved_with",
                "torch", "onnxruntime", "python", "cpu", "cpu_count", "extra", "timer", "figure",
                "cudnn_benchmark_policy", "device", "device_type"}
    assert set(eager.protocol) == expected
    assert eager.protocol["backend"] == "eager" and channels_last.protocol["backend"] == "channels_last"
    assert (eager.protocol["batch"], eager.protocol["input_size"], eager.protocol["threads"]) == (2, 16, 1)
    assert eager.protocol["interleaved_with"] == "deploy/cl" and eager.protocol["torch"] == torch.__version__
    assert (eager.protocol["device"], eager.protocol["timer"], eager.protocol["figure"]) == (
        "cpu", "wall clock", "measured")
    assert eager.protocol["cpu"]
    tags = latency_tags(eager.to_dict())
    assert tags["latency.backend"] == "eager" and tags["latency.stopped"] == "max repeats"
    assert tags["latency.n"] == "9"
    assert ("latency.onnxruntime" in tags) == (eager.protocol["onnxruntime"] is not None)  # None: not logged
    json.dumps(eager.to_dict())  # plain values only
    assert model.training  # the caller's model is untouched


def test_measure_refuses_bad_candidates():
    model = tiny_net()
    with pytest.raises(BenchError, match="distinct labels"):
        measure([Candidate("x", model), Candidate("x", model)], 3, 16)
    with pytest.raises(BenchError, match="unknown form 'fused'"):
        Candidate("x", model, form="fused")
    with pytest.raises(BenchError, match="unknown latency backend 'tensorrt'"):
        Candidate("x", model, backend="tensorrt")
    with pytest.raises(BenchError, match="reference 'z'"):
        measure([Candidate("x", model)], 3, 16, reference="z")
    with pytest.raises(BenchError, match="threads must be at least 1"):
        Protocol(threads=0)


@pytest.mark.parametrize("backend", ["eager", "channels_last", "onnxruntime"])
def test_backends_run_the_same_network(backend):
    if backend == "onnxruntime":
        need("ONNXRUNTIME", importlib.util.find_spec("onnxruntime") is not None, "onnxruntime")
    torch.manual_seed(0)
    model, x = tiny_net().eval(), torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    runner = prepare(copy.deepcopy(model), x, backend, 1)
    out = torch.as_tensor(runner.run())
    assert out.shape == expected.shape
    assert float((out - expected).abs().max()) <= 1e-4
    if backend == "onnxruntime":
        assert runner.max_abs_diff is not None and runner.max_abs_diff <= 1e-4
        assert "onnxruntime" in runner.versions


def test_isolated_measurement_runs_in_a_fresh_process_from_config_and_weights():
    arch = resolve_architecture("tinyunet", ["width_multiplier=0.25"])
    model = build_model(arch, seed=0)
    (result,) = measure([Candidate("deploy/eager", model, config=arch.config)], 3, 16,
                        Protocol(warmup=1, min_repeats=3, max_seconds=0.2), isolate=True)
    assert result.protocol["isolate"] is True and result.n >= 3 and result.median_ms > 0
    assert result.ci95_ms[0] <= result.median_ms <= result.ci95_ms[1]


def test_a_fresh_process_is_not_handed_a_pickled_module(tmp_path):
    """The spec travels as a config and weights, read weights-only: a module without a config is
    refused, the network comes back equal, and a spec holding a pickled module is not loaded."""
    import pickle

    from bench.arch.latency import read_spec, write_spec

    with pytest.raises(BenchError, match="needs its architecture config"):
        measure([Candidate("deploy/eager", tiny_net())], 3, 16, Protocol(warmup=1, min_repeats=3), isolate=True)
    arch = resolve_architecture("tinyunet", ["width_multiplier=0.25"])
    model = build_model(arch, seed=0)
    write_spec(tmp_path / "spec.pt", Candidate("deploy/eager", model, config=arch.config), 3, 32, Protocol())
    candidate, channels, size, _ = read_spec(tmp_path / "spec.pt")
    assert (channels, size) == (3, 32)
    assert all(torch.equal(a, b) for a, b in zip(candidate.model.state_dict().values(), model.state_dict().values()))
    torch.save({"config": "{}", "module": torch.nn.Linear(1, 1)}, tmp_path / "hostile.pt")
    with pytest.raises(pickle.UnpicklingError):
        read_spec(tmp_path / "hostile.pt")


def test_peak_memory_counts_live_operator_outputs():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.ReLU(),
                        nn.Conv2d(1, 1, 3, padding=1, bias=False))
    forward = forward_peak_memory(net, 1, 4, form="train")
    # conv1's output is still held while ReLU writes a second 4x4 float map; then it is freed
    assert forward.peak_activation_bytes == 2 * 16 * 4
    assert (forward.parameter_bytes, forward.input_bytes) == (2 * 9 * 4, 16 * 4)
    in_place = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(inplace=True), nn.Linear(8, 4))
    # Flatten is a view of the input, an in-place ReLU allocates nothing: 8 + 4 floats at most
    assert forward_peak_memory(in_place, 1, 4, form="train").peak_activation_bytes == (8 + 4) * 4
    step = train_step_peak_memory(net, 1, 4, batch=1)
    assert step.peak_activation_bytes > forward.peak_activation_bytes + 2 * 9 * 4  # + the gradients
    assert all(p.grad is None for p in net.parameters())  # measured on a copy


def test_profile_cli_times_forms_and_backends_interleaved(run_cli):
    result = run_cli("profile", "tinyunet", "--size", "32", "--set", "width_multiplier=0.25",
                     "--latency", "--form", "train", "--form", "deploy", "--max-seconds", "0.1",
                     "--memory", "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    labels = [r["label"] for r in record["latency"]]
    assert labels == ["train/eager", "deploy/eager"]
    assert record["latency"][0]["ratio"] == 1.0 and record["latency"][1]["reference"] == "train/eager"
    assert record["memory"]["forward"]["peak_activation_bytes"] > 0
    text = run_cli("profile", "tinyunet", "--size", "32", "--set", "width_multiplier=0.25",
                   "--latency", "--max-seconds", "0.1")
    assert "protocol: 1 thread(s), batch 1, 32 px" in text.output and "deploy/eager" in text.output


def test_cuda_events_are_recorded_on_the_stream_of_the_device_timed(monkeypatch):
    """With --device cuda:1 the events must sit on cuda:1's stream: on the current device's
    (cuda:0) they would time an idle stream."""
    from bench.arch.latency import cuda_event_timer

    calls = []

    class FakeEvent:
        def __init__(self, enable_timing: bool) -> None:
            assert enable_timing

        def record(self, stream=None) -> None:
            calls.append(("record", stream))

        def synchronize(self) -> None:
            calls.append(("wait",))

        def elapsed_time(self, other) -> float:
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("drain", device)))
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    device = torch.device("cuda", 1)
    assert cuda_event_timer(device)(lambda: calls.append(("run",))) == 1.5
    assert calls == [("drain", device), ("record", "stream of cuda:1"), ("run",), ("record", "stream of cuda:1"),
                     ("wait",)]
