"""Where networks train and run: choosing a device, and recording what it is.

``auto`` is a CUDA GPU when one is present, else the CPU. A device that is not there is a
:class:`DeviceError` (exit 2) naming the devices that are. :func:`describe_device` is what goes
into every recorded protocol: the device, and on CUDA the GPU's name, driver and CUDA versions,
the cuDNN autotuning policy, and (through NVML, the optional ``nvidia-ml-py``) clocks and throttle
state at the time.
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional

import torch

from .errors import BenchError

DEVICES = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(BenchError):
    """A device asked for that this machine does not have, or a spelling that is none."""


def resolve_device(spec: str) -> torch.device:
    """The device ``spec`` names (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Raises:
        DeviceError: ``spec`` is not a device name, or names one this machine does not have.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError(f"--device mps: this machine has no Apple GPU (MPS). {_available()}")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise DeviceError(f"--device {spec}: not a device; use {DEVICES}.")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError(f"--device {spec}: this machine has no CUDA GPU (or this torch, "
                          f"{torch.__version__}, was built without CUDA). {_available()}")
    if index >= count:
        raise DeviceError(f"--device {spec}: this machine has {count} CUDA GPU(s), cuda:0 to "
                          f"cuda:{count - 1}. {_available()}")
    return torch.device("cuda", index)


def worker_device(spec: str, worker: int) -> str:
    """The device of sweep worker ``worker``: on a machine with G GPUs, ``auto`` and ``cuda``
    put worker i on ``cuda:(i mod G)``; an explicit ``cuda:N``, ``cpu`` or ``mps`` is kept."""
    text = str(spec).strip().lower()
    if text in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return f"cuda:{worker % torch.cuda.device_count()}"
    return text


def _available() -> str:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        names.append("mps")
    return f"Devices here: {', '.join(names)}; --device auto picks the GPU when there is one."


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def describe_device(device: torch.device) -> dict[str, Any]:
    """What a figure measured on ``device`` depends on, for the protocol record."""
    record: dict[str, Any] = {"device": str(device), "device_type": device.type}
    if device.type != "cuda":
        return record
    index = device.index or 0
    props = torch.cuda.get_device_properties(index)
    record.update({
        "gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
        "gpu_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()), "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    })
    record.update(_nvml(index))
    return record


def _nvml(index: int) -> dict[str, Any]:
    """Driver, clocks and throttle state from NVML; says so when NVML cannot be read."""
    try:
        import pynvml  # the nvidia-ml-py package: optional (pip install bench[gpu])
    except ImportError:
        return {"nvml": "not installed (pip install nvidia-ml-py): no driver, clocks or throttle state"}
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            reasons = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
            idle = getattr(pynvml, "nvmlClocksThrottleReasonGpuIdle", 1)
            return {
                "driver": _text(pynvml.nvmlSystemGetDriverVersion()),
                "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                "sm_clock_max_mhz": pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
                "memory_clock_mhz": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
                "temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                "throttled": bool(reasons & ~idle), "throttle_reasons": hex(reasons),
            }
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVML missing from the driver, or no permission: the figure stands
        return {"nvml": f"unreadable: {exc}"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def set_deterministic(on: bool) -> None:
    """PyTorch's deterministic algorithms, with what CUDA needs for them: cuBLAS's fixed workspace,
    and cuDNN without autotuning. An operation with no deterministic CUDA kernel (the backward of
    bilinear and bicubic upsampling, which most of these networks use) warns instead of failing:
    such a run trains, but is not bit-identical from run to run on a GPU."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=on)
    torch.backends.cudnn.deterministic = on
    if on:
        torch.backends.cudnn.benchmark = False


def pinned(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``: copied from pinned memory without blocking on CUDA."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast type of a recipe's precision (None for fp32: no autocast)."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
