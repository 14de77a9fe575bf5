"""Data-sheet figures of the accelerators the project knows, shared by the MFU of training
runs, the decode roofline and the cost model. Dense FLOP/s of the SXM parts; float32 matmuls
run on TF32 tensor cores under JAX's and torch's default precision."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bandwidth: float  # bytes/s
    peak_flops: dict[str, float]  # compute dtype -> dense FLOP/s


# matched by substring against the device name that jax or torch reports
ACCELERATORS = {
    "A100": Accelerator("NVIDIA A100 40GB", 1.555e12, {"bfloat16": 312e12, "float16": 312e12, "float32": 156e12}),
    "H100": Accelerator("NVIDIA H100 SXM", 3.35e12, {"bfloat16": 989e12, "float16": 989e12, "float32": 494.5e12}),
    "H200": Accelerator("NVIDIA H200", 4.8e12, {"bfloat16": 989e12, "float16": 989e12, "float32": 494.5e12}),
}


def accelerator(device_name: str) -> Accelerator | None:
    """The table's entry whose key appears in `device_name`, or None (CPUs, unknown GPUs)."""
    return next((spec for key, spec in ACCELERATORS.items() if key in device_name), None)
