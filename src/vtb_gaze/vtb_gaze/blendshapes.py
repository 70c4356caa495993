"""The 52 ARKit blendshapes ("perfect sync") from the 478 face landmarks, with MediaPipe's model.

The model is `face_blendshapes.tflite` of MediaPipe's Face Landmarker bundle (fetched by
`./vtb models fetch`), an MLP-Mixer taking 146 of the 478 landmarks as (x, y) in pixels and
giving 52 coefficients in 0..1. What it is fed is what MediaPipe's FaceBlendshapesGraph
(mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc) feeds it: the landmark
subset below in that order, x and y scaled to the image size (the graph's
LandmarksToTensorCalculator with IMAGE_SIZE); the model centres and scales them itself.

Names: ARKit's (ARFaceAnchor.BlendShapeLocation), "Left"/"Right" being the subject's own side
as in ARKit and in FaceState; the model's names already are (a render with the subject's left
eye shut raises eyeBlinkLeft: test_blendshapes.py). MediaPipe's first output (`_neutral`) is
not an ARKit shape and is dropped; ARKit's `tongueOut` is not estimated by the model and is
always 0. No rclpy here.
"""
from __future__ import annotations

import numpy as np

# MediaPipe FaceBlendshapesGraph's kLandmarksSubsetIdxs: the points the model reads, in order.
LANDMARK_SUBSET = np.array((
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66,
    67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145,
    146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176,
    178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285,
    288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334,
    336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387,
    388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474,
    475, 476, 477))

# the model's 52 outputs, in its order (kBlendshapeNames of the same graph)
MODEL_OUTPUTS = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")

# the 52 ARKit blendshapes vtb publishes, in this order: the model's 51 shapes, then tongueOut
NAMES = MODEL_OUTPUTS[1:] + ("tongueOut",)
NOT_ESTIMATED = ("tongueOut",)

# The shapes FaceState measures itself, calibrated to the user (vtb_gaze.face_state): their ARKit
# values are taken from it, so that every output (Live2D parameters, VRM presets, ARKit values,
# the NodeServer's result_data) says the same. On 942 real labelled faces (`./vtb eval
# expressions`) the geometry ranks mouth opening at 0.75 against jawOpen's 0.24 and eye closure
# as well as eyeBlink (0.41 / 0.40); and the model's eyeBlink on closed eyes stays at 0.59-0.70
# where FaceState's calibrated closure reaches 0.96-1.0.
FROM_STATE = {"eyeBlinkLeft": lambda st: 1.0 - st.eye_left_open,
              "eyeBlinkRight": lambda st: 1.0 - st.eye_right_open,
              "jawOpen": lambda st: st.mouth_open}


def agree_with_state(values: np.ndarray, state) -> np.ndarray:
    """The 52 values (NAMES order) with the FROM_STATE shapes set from a FaceStateResult."""
    out = np.array(values, np.float32)
    for name, of in FROM_STATE.items():
        out[NAMES.index(name)] = np.clip(of(state), 0.0, 1.0)
    return out




class BlendshapeEstimator:
    """`estimator(landmarks)` -> 52 values in 0..1 in the order of NAMES, or None when the
    landmarks are not 478 finite points. Landmarks: (478, 2+) pixels, MediaPipe's 478 order."""

    def __init__(self, threads: int = 1, models_dir=None):
        # LiteRT only: the blendshape model has no ONNX version (see vtb_detector.models); the
        # interpreter is used directly (no vtb_detector.inference: that loads onnxruntime too)
        from ai_edge_litert.interpreter import Interpreter
        from vtb_detector.models import bundle_path
        self._it = Interpreter(model_path=str(bundle_path("face_blendshapes.tflite", models_dir)), num_threads=threads)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]

    def __call__(self, landmarks) -> np.ndarray | None:
        lm = np.asarray(landmarks, np.float32)
        if lm.ndim != 2 or lm.shape[0] < 478 or lm.shape[1] < 2:
            return None
        points = lm[LANDMARK_SUBSET, :2]
        if not np.isfinite(points).all():
            return None
        self._it.set_tensor(self._in, np.ascontiguousarray(points[None]))
        self._it.invoke()
        raw = self._it.get_tensor(self._out).reshape(-1)
        if not np.isfinite(raw).all():
            return None
        out = np.zeros(len(NAMES), np.float32)
        out[:-1] = np.clip(raw[1:], 0.0, 1.0)   # _neutral dropped, tongueOut stays 0
        return out

    def named(self, landmarks) -> dict | None:
        values = self(landmarks)
        return None if values is None else {n: float(v) for n, v in zip(NAMES, values)}
