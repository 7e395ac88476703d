"""Ways of running a network's forward pass for timing: eager PyTorch, channels-last memory
format, ``torch.compile`` and ONNX Runtime (the optional ``onnx`` extra).

Each backend turns a module and an input into a :class:`Runner` whose ``run()`` does one forward
pass on that input and nothing else, so that the timing loop measures only the network.
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from ..core.errors import BenchError

BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")
ONNX_TOLERANCE = 1e-4
INSTALL_ONNX = "pip install -c constraints.txt '.[onnx]'"


@dataclass
class Runner:
    """``run()`` does one forward pass on the prepared input and returns its output (B, K, H, W)."""

    backend: str
    run: Callable[[], Any]
    versions: dict[str, str] = field(default_factory=dict)
    max_abs_diff: Optional[float] = None  # against eager PyTorch, for backends that convert the model


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise BenchError(f"unknown latency backend {backend!r}; choose from {', '.join(BACKENDS)}")


def prepare(model: nn.Module, x: Tensor, backend: str, threads: int) -> Runner:
    """A runner for ``model`` (in eval mode; converted in place where the backend needs it) on
    input ``x`` of shape (B, C, H, W)."""
    check_backend(backend)
    model.eval()
    if backend == "eager":
        return Runner(backend, _inference(model, x))
    if backend == "channels_last":
        model.to(memory_format=torch.channels_last)
        return Runner(backend, _inference(model, x.contiguous(memory_format=torch.channels_last)))
    if backend == "compile":
        return _compiled(model, x)
    return _onnxruntime(model, x, threads)


def _inference(model: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def _compiled(model: nn.Module, x: Tensor) -> Runner:
    compiled = torch.compile(model, dynamic=False)
    run = _inference(compiled, x)
    try:
        reference = _inference(model, x)()
        max_diff = float((run() - reference).abs().max())  # the first call compiles
    except Exception as exc:  # inductor raises many types; each means the same here
        raise BenchError(f"torch.compile does not work for this network on this machine "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                         "use another --backend (eager, channels_last)") from None
    return Runner("compile", run, max_abs_diff=max_diff)


def _onnxruntime(model: nn.Module, x: Tensor, threads: int) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BenchError(f"the onnxruntime backend needs the optional extra: {INSTALL_ONNX}") from None
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        quiet = logging.getLogger("torch.onnx._internal.exporter._registration")
        level, quiet.level = quiet.level, logging.ERROR  # "torchvision is not installed": irrelevant here
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps
                torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["image"],
                                  output_names=["logits"])
        except ImportError as exc:
            raise BenchError(f"ONNX export needs {exc.name or 'onnxscript'}: {INSTALL_ONNX}") from None
        finally:
            quiet.setLevel(level)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # the session reads the weights while it is created, so the folder may go afterwards
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"image": x.numpy()}

    def run() -> Any:
        return session.run(None, feed)[0]

    with torch.inference_mode():
        reference = model(x)
    max_diff = float((torch.from_numpy(run()) - reference).abs().max())
    if not max_diff <= ONNX_TOLERANCE:
        raise BenchError(f"ONNX Runtime's output differs from PyTorch's by {max_diff:.3g} "
                         f"(> {ONNX_TOLERANCE}); an operator was exported wrongly, so its timing "
                         "would not be of the same network")
    return Runner("onnxruntime", run, {"onnxruntime": ort.__version__, "onnx": metadata.version("onnx")},
                  max_diff)
