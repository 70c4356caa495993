"""The 3D face: the REP-155 face frame of a set of landmarks, and the metric face model PnP uses.

Face frame (REP-155, REP-103 axes): origin between the eyes (the midpoint of the two eye-ring
centres), x forward out of the face, y to the subject's left, z up. `face_frame()` builds it
the same way for any 478-point set, so a model and a rendered head share one definition.

The model: no package here ships MediaPipe's canonical face geometry, so the model is the mean
of the face mesh's own 3D output (x, y in pixels, z relative depth in the same scale) over the
real faces available offline (the astronaut and the six faces of the group photo), each taken
into its own face frame and scaled so the pupils are `ipd` apart; `tools/build_face_model.py`
makes `data/face_model_478.npy` and says how. No rclpy here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# MediaPipe mesh indices
RIGHT_EYE_RING = np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173])
LEFT_EYE_RING = np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398])
RIGHT_IRIS, LEFT_IRIS = 468, 473
CHIN, FOREHEAD = 152, 10
DEFAULT_IPD_M = 0.063

MODEL_PATH = Path(__file__).resolve().parent / "data" / "face_model_478.npy"


def face_frame(points: np.ndarray):
    """(origin (3,), rotation (3, 3)) of the face frame in the points' coordinates: the
    columns of the rotation are the face's x (forward), y (left), z (up) axes.

    The points are in a camera-like frame: x right, y down, z away from the camera (the mesh
    model's pixels and relative depth, or metres in a camera's optical frame)."""
    p = np.asarray(points, np.float64)[:, :3]
    right, left = p[RIGHT_EYE_RING].mean(0), p[LEFT_EYE_RING].mean(0)
    origin = (right + left) / 2
    y = left - right
    y /= np.linalg.norm(y)
    up = p[FOREHEAD] - p[CHIN]
    z = up - (up @ y) * y
    z /= np.linalg.norm(z)
    x = np.cross(y, z)
    return origin, np.column_stack([x, y, z])


def to_face_frame(points: np.ndarray, ipd: float | None = DEFAULT_IPD_M) -> np.ndarray:
    """The points in their own face frame; scaled so the iris centres are `ipd` apart (metres)
    when ipd is given."""
    origin, rot = face_frame(points)
    local = (np.asarray(points, np.float64)[:, :3] - origin) @ rot
    if ipd is not None:
        local *= ipd / np.linalg.norm(local[LEFT_IRIS] - local[RIGHT_IRIS])
    return local


def load_face_model(ipd: float = DEFAULT_IPD_M) -> np.ndarray:
    """The mean face (478, 3) in metres in its face frame, pupils `ipd` apart."""
    if not MODEL_PATH.is_file():
        raise FileNotFoundError(f"face model {MODEL_PATH} is missing: it ships with vtb_pose; "
                                f"rebuild it with `python tools/build_face_model.py`")
    model = np.load(MODEL_PATH).astype(np.float64)
    return model * (ipd / np.linalg.norm(model[LEFT_IRIS] - model[RIGHT_IRIS]))


def build_mean_face(landmark_sets, ipd: float = DEFAULT_IPD_M) -> np.ndarray:
    """Mean of several faces' landmarks, each in its own face frame at the same pupil distance."""
    return np.mean([to_face_frame(lm, ipd) for lm in landmark_sets], axis=0)
