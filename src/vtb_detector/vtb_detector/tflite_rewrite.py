"""Rewrite a float16-weight tflite model into the plain float32 model tflite2onnx can convert.

MediaPipe's Face Landmarker model (face_landmarks_detector.tflite) stores its 251 constant
tensors (convolution weights, biases, PReLU slopes) as float16, each followed by a DEQUANTIZE
op that makes the float32 tensor the next op reads. tflite2onnx 0.4.1 stops on it with
"IndexError: list index out of range": it gives a PReLU's slope a leading batch dimension
([1, 1, 64] -> [1, 1, 1, 64]) so the NHWC -> NCHW permutation applies, but when the slope is
the output of a DEQUANTIZE the layout also spreads back through that op to the float16
constant, which still has three dimensions, and permuting it with four indices fails.

The rewrite does what LiteRT itself does when it loads the model: each DEQUANTIZE of a
float16 constant becomes a float32 constant holding the same values (float16 -> float32 is
exact), the op and the float16 tensor are dropped. LiteRT gives bit-identical outputs on the
rewritten model (checked by models.convert_bundle_model). Works on the flatbuffer with the
schema's object API that ai-edge-litert ships (already a dependency: no TensorFlow).
"""
from __future__ import annotations

import numpy as np


def fold_float16_dequantize(data: bytes) -> tuple[bytes, int]:
    """The model `data` with every float16 constant + DEQUANTIZE pair folded into a float32
    constant. Returns the new model and how many pairs were folded."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(data))
    dequantize = {i for i, code in enumerate(model.operatorCodes)
                  if fu.get_builtin_code_from_operator_code(code) == fb.BuiltinOperator.DEQUANTIZE}
    folded = 0
    for g, graph in enumerate(model.subgraphs):
        kept_ops, dropped = [], set()
        for op in graph.operators:
            if op.opcodeIndex in dequantize:
                src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
                raw = model.buffers[src.buffer].data
                if src.type == fb.TensorType.FLOAT16 and dst.type == fb.TensorType.FLOAT32 and raw is not None:
                    values = np.frombuffer(np.asarray(raw, np.uint8).tobytes(), np.float16).astype(np.float32)
                    if values.size != int(np.prod(dst.shape)):
                        raise ValueError(f"DEQUANTIZE {dst.name!r}: {values.size} values for shape {list(dst.shape)}")
                    buffer = fb.BufferT()
                    buffer.data = np.frombuffer(values.tobytes(), np.uint8)
                    model.buffers.append(buffer)
                    dst.buffer = len(model.buffers) - 1
                    model.buffers[src.buffer].data = None
                    dropped.add(op.inputs[0])
                    folded += 1
                    continue
            kept_ops.append(op)
        graph.operators = kept_ops
        # the float16 tensors are read by nothing now: drop them and renumber the others
        still_used = set(range(len(graph.tensors))) - dropped
        for i in [*graph.inputs, *graph.outputs]:
            if i in dropped:
                raise ValueError("a graph input or output is a float16 constant")
        renumber = {old: new for new, old in enumerate(sorted(still_used))}
        graph.tensors = [graph.tensors[old] for old in sorted(still_used)]
        for op in graph.operators:
            op.inputs = [renumber[i] if i >= 0 else i for i in op.inputs]   # -1: optional input left out
            op.outputs = [renumber[i] for i in op.outputs]
            if op.intermediates is not None:
                op.intermediates = [renumber[i] for i in op.intermediates]
        graph.inputs = [renumber[i] for i in graph.inputs]
        graph.outputs = [renumber[i] for i in graph.outputs]
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == g:
                for tensor_map in [*(signature.inputs or []), *(signature.outputs or [])]:
                    tensor_map.tensorIndex = renumber[tensor_map.tensorIndex]
    # the emptied float16 buffers stay in the list, empty (a tflite file may hold empty buffers)
    return bytes(fu.convert_object_to_bytearray(model)), folded
