"""Running the face models: ONNX Runtime or LiteRT behind one interface.

`ModelRunner(name, backend, provider, threads)` loads a fetched model and is called with a
batch of NHWC float32 images; it returns the model's outputs in the original model's order.

Why two backends: on CPU, LiteRT's XNNPACK kernels run the landmark and iris models 3-4x faster
than ONNX Runtime's CPU provider does (measured, see the package README); ONNX Runtime is the
way to CUDA and TensorRT. backend="auto" picks LiteRT for the CPU and ONNX Runtime otherwise.
Every model runs on both, the Face Landmarker's float16 model too (its ONNX file is converted
and checked against LiteRT at fetch time: models.convert_bundle_model).
One log line per model says what runs it. No rclpy here.
"""
from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort

from .models import BUNDLE_MODELS, MODELS, model_path

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
BACKENDS = ("auto", "litert", "onnxruntime")


def create_session(path, provider: str = "cpu", threads: int = 1, logger=None) -> ort.InferenceSession:
    """An ONNX Runtime session on a model file (or serialised model bytes)."""
    logger = logger or logging.getLogger("vtb.inference")
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {sorted(PROVIDERS)}, got {provider!r}")
    available = ort.get_available_providers()
    wanted = [p for p in PROVIDERS[provider] if p in available]
    if wanted[0] != PROVIDERS[provider][0]:
        logger.warning(f"{PROVIDERS[provider][0]} is not available in this onnxruntime "
                       f"(available: {', '.join(available)}); using {wanted[0]}")
    opts = ort.SessionOptions()
    # small models, one frame at a time: few threads, no inter-op parallelism, and every graph
    # optimisation (constant folding, conv+activation fusion, NCHWc layout on x86)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # a path, or a serialised model (bytes: e.g. a network with pyramid levels cut out)
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, sess_options=opts, providers=wanted)


def litert_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
        return True
    except ImportError:
        return False


class ModelRunner:
    """One model on one backend. Call with an (N, H, W, 3) float32 batch; get a list of arrays,
    one per output, each with N rows."""

    def __init__(self, name: str, backend: str = "auto", provider: str = "cpu", threads: int = 1,
                 models_dir=None, logger=None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.name, self.threads = name, threads
        self.spec = MODELS[name] if name in MODELS else BUNDLE_MODELS[name]
        self.logger = logger or logging.getLogger("vtb.inference")
        if backend == "auto":
            backend = "litert" if provider == "cpu" and litert_available() else "onnxruntime"
        self.backend = backend
        if backend == "litert":
            if provider != "cpu":
                raise ValueError("the LiteRT backend runs on the CPU only; use backend='onnxruntime' for CUDA/TensorRT")
            self._path = model_path(name, "tflite", models_dir)
            self._interpreters = {}  # batch size -> interpreter (resizing one costs a re-plan)
            self._interpreter(1)
            where = f"LiteRT XNNPACK on the CPU, {threads} thread{'s' * (threads != 1)}"
        else:
            self._session = create_session(model_path(name, "onnx", models_dir), provider, threads, self.logger)
            self._input = self._session.get_inputs()[0].name
            self._outputs = list(self.spec.outputs)
            self._fixed_batch = self._session.get_inputs()[0].shape[0] == 1
            where = f"onnxruntime {ort.__version__} {self._session.get_providers()[0]}, {threads} thread{'s' * (threads != 1)}"
        self.where = where
        self.logger.info(f"{name}: {where}")

    def _interpreter(self, batch: int):
        it = self._interpreters.get(batch)
        if it is None:
            from ai_edge_litert.interpreter import Interpreter
            it = Interpreter(model_path=str(self._path), num_threads=self.threads)
            if batch != 1:
                size = self.spec.input_size
                it.resize_tensor_input(it.get_input_details()[0]["index"], [batch, size, size, 3])
            it.allocate_tensors()
            it._vtb_in = it.get_input_details()[0]["index"]
            by_name = {d["name"]: d["index"] for d in it.get_output_details()}
            it._vtb_out = [by_name[o] for o in self.spec.outputs]
            self._interpreters[batch] = it
        return it

    def __call__(self, nhwc: np.ndarray) -> list[np.ndarray]:
        n = nhwc.shape[0]
        if self.backend == "litert":
            it = self._interpreter(n)
            it.set_tensor(it._vtb_in, nhwc)
            it.invoke()
            return [it.get_tensor(i).reshape(n, -1) for i in it._vtb_out]
        nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        if n > 1 and self._fixed_batch:
            # tflite2onnx keeps the original's batch of 1 (its Reshapes name it): one run each
            runs = [self._session.run(self._outputs, {self._input: nchw[i:i + 1]}) for i in range(n)]
            return [np.concatenate([r[k].reshape(1, -1) for r in runs]) for k in range(len(self._outputs))]
        outs = self._session.run(self._outputs, {self._input: nchw})
        return [o.reshape(n, -1) for o in outs]
