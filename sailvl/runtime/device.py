"""Device selection: cuda, npu (Ascend) or cpu, and what each one implies.

The accelerator named in the spec (`nvidia`, `ascend`, `cpu`) fixes three things:

- the torch device type (`cuda`, `npu`, `cpu`) and DeepSpeed's accelerator name
  (DS_ACCELERATOR), which DeepSpeed otherwise guesses, wrongly on a CPU-only machine
  that has the CUDA wheels installed;
- the collective backend: nccl, hccl or gloo;
- whether bf16 is used when the precision is `auto`.

torch_npu is imported ONLY for `ascend`. Installed without the CANN toolkit it breaks
`import torch` through torch's device-backend autoload, so `prepare_environment` sets
`TORCH_DEVICE_BACKEND_AUTOLOAD=0` for every other accelerator before torch is
imported; call it first thing in a worker. On Ascend, a missing torch_npu is a
configuration error (`DeviceError`), found before any worker starts (`check_available`
uses importlib.util.find_spec and imports nothing).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

# accelerator -> (torch device type, collective backend, DS_ACCELERATOR value)
ACCELERATORS: dict[str, tuple[str, str, str]] = {
    "nvidia": ("cuda", "nccl", "cuda"),
    "ascend": ("npu", "hccl", "npu"),
    "cpu": ("cpu", "gloo", "cpu"),
}

# Dense bf16 peak FLOP/s per device, for the MFU estimate (vendor datasheets).
# Override with SAILVL_PEAK_FLOPS (FLOP/s, e.g. 989e12) for other parts.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H100": 989e12,
    "H200": 989e12,
    "H800": 989e12,
    "A100": 312e12,
    "A800": 312e12,
    "L40S": 362e12,
    "910B": 313e12,  # Ascend 910B (fp16/bf16 ~ 313 TFLOPS; 910B3)
}


class DeviceError(RuntimeError):
    """The requested accelerator cannot be used here (a configuration error)."""


@dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    """The device a worker trains on."""

    accelerator: str  # spec value: nvidia, ascend or cpu
    device_type: str  # torch device type: cuda, npu or cpu
    backend: str  # torch.distributed backend: nccl, hccl or gloo
    ds_accelerator: str  # DS_ACCELERATOR value

    def __post_init__(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator: {self.accelerator!r} not in {sorted(ACCELERATORS)}")


def device_spec(accelerator: str) -> DeviceSpec:
    """The pure mapping from the spec's accelerator to device, backend and DS name."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator: {accelerator!r} not in {sorted(ACCELERATORS)}")
    dev, backend, ds = ACCELERATORS[accelerator]
    return DeviceSpec(accelerator=accelerator, device_type=dev, backend=backend, ds_accelerator=ds)


def check_available(accelerator: str) -> None:
    """Raise DeviceError if the accelerator's runtime is not installed (imports nothing)."""
    if accelerator == "ascend" and importlib.util.find_spec("torch_npu") is None:
        raise DeviceError(
            "accelerator: ascend needs torch_npu (and the CANN toolkit), which is not "
            "installed in this image; use the Ascend trainer image"
        )


def prepare_environment(
    accelerator: str, env: MutableMapping[str, str] | None = None
) -> MutableMapping[str, str]:
    """Set the variables torch and DeepSpeed read at import time (before importing them)."""
    env = os.environ if env is None else env
    spec = device_spec(accelerator)
    env["DS_ACCELERATOR"] = spec.ds_accelerator
    if accelerator != "ascend":
        env["TORCH_DEVICE_BACKEND_AUTOLOAD"] = "0"
    if accelerator == "cpu":
        env.setdefault("DS_BUILD_OPS", "0")
        env.setdefault(
            "TORCH_EXTENSIONS_DIR", os.path.expanduser("~/.cache/sailvl/torch_extensions")
        )
    return env


def torch_device(spec: DeviceSpec, local_rank: int) -> Any:
    """The torch.device for this worker; binds the process to its device."""
    import torch

    if spec.device_type == "npu":
        import torch_npu  # noqa: F401  (registers the npu device)

        torch.npu.set_device(local_rank)
        return torch.device("npu", local_rank)
    if spec.device_type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("accelerator: nvidia requested but no CUDA device is visible")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def bf16_supported(spec: DeviceSpec) -> bool:
    """bf16 used for precision `auto`: on CUDA parts that have it and on Ascend; not on
    CPU, where DeepSpeed's bf16 path is slow and fp32 is the reference."""
    import torch

    if spec.device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return spec.device_type == "npu"


def resolve_precision(precision: str, spec: DeviceSpec) -> str:
    """`auto` -> bf16 where supported, else fp32; explicit values pass through."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_supported(spec) else "fp32"


def peak_flops(spec: DeviceSpec, env: MutableMapping[str, str] | None = None) -> float | None:
    """Peak dense bf16 FLOP/s of one device, or None when unknown (MFU not reported)."""
    env = os.environ if env is None else env
    if env.get("SAILVL_PEAK_FLOPS"):
        return float(env["SAILVL_PEAK_FLOPS"])
    name = ""
    if spec.device_type == "cuda":
        import torch

        name = torch.cuda.get_device_name()
    elif spec.device_type == "npu":
        name = "910B"
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return flops
    return None
