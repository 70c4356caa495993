"""ONNX Runtime sessions, configured on purpose rather than by default.

`provider` picks the execution provider: "cpu", "cuda" or "tensorrt" (falls back to the CPU
with a warning when the requested one is not in this onnxruntime build). One log line says which
provider runs. No rclpy here.
"""
from __future__ import annotations

import logging

import onnxruntime as ort

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def create_session(path, provider: str = "cpu", threads: int = 1, logger=None) -> ort.InferenceSession:
    logger = logger or logging.getLogger("vtb.inference")
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, got {provider!r}")
    available = ort.get_available_providers()
    wanted = [p for p in PROVIDERS[provider] if p in available]
    if wanted[0] != PROVIDERS[provider][0]:
        logger.warning(f"{PROVIDERS[provider][0]} is not available in this onnxruntime "
                       f"(available: {', '.join(available)}); using {wanted[0]}")
    opts = ort.SessionOptions()
    # small models, one frame at a time: a thread pool costs more in wake-ups than it gains,
    # and the graph runs beside other nodes on a 2-core machine
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
    logger.info(f"onnxruntime {ort.__version__}: {getattr(path, 'name', path)} runs on "
                f"{session.get_providers()[0]} ({threads} thread{'s' if threads != 1 else ''})")
    return session
