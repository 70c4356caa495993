"""The 3D face: the REP-155 face frame of a set of landmarks, and the metric face model PnP uses.

Face frame (REP-155, REP-103 axes): origin between the eyes (the midpoint of the two eye-ring
centres), x forward out of the face, y to the subject's left, z up. `face_frame()` builds it
the same way for any 478-point set, so a model and a rendered head share one definition.

Two models:
- `load_metric_face()`, what head pose uses: MediaPipe's metric canonical face (468 vertices in
  centimetres, from the face geometry metadata of the Face Landmarker bundle that `./vtb models
  fetch` unpacks), in its own face frame. On real labelled faces (AFLW2000-3D) it gives better
  head pose than the mean face below, which is flatter than a real head (`./vtb eval real`).
- `load_face_model()`: the mean of the face mesh's own 3D output (x, y in pixels, z relative
  depth in the same scale) over the real faces available offline (the astronaut and the six
  faces of the group photo), each taken into its own face frame and scaled so the pupils are
  `ipd` apart; it has the 10 iris points the eye models need. `tools/build_face_model.py` makes
  `data/face_model_478.npy` and says how.
No rclpy here.
"""
from __future__ import annotations

import struct
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


def _protobuf_fields(data: bytes):
    """(field number, value) pairs of one protobuf message: varints as int, 32-bit as float,
    length-delimited as bytes. The metadata is three small messages of MediaPipe's
    (FaceGeometryPipelineMetadata > Mesh3d, WeightedLandmarkRef); no Python module for them ships
    outside mediapipe, and the protobuf runtime cannot read them without one, so they are read
    here (test_pose_core checks the result against mediapipe's own reader when it is there)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = struct.unpack_from("<f", data, i)[0], i + 4
        elif wire == 1:
            value, i = struct.unpack_from("<d", data, i)[0], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _varint(data: bytes, i: int):
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def read_geometry_metadata(data: bytes):
    """MediaPipe's FaceGeometryPipelineMetadata: (canonical mesh vertices (468, 3) in its own
    axes (x to the subject's left, y up, z out of the face, centimetres), Procrustes landmark
    weights {landmark index: weight})."""
    vertices, weights = [], {}
    for field, value in _protobuf_fields(data):
        if field == 1:  # canonical_mesh: Mesh3d; vertex_buffer (3) holds x, y, z, u, v per vertex
            mesh = list(_protobuf_fields(value))
            vertex_type = dict((f, v) for f, v in mesh if f == 1).get(1, 0)
            if vertex_type != 0:  # VERTEX_PT
                raise ValueError(f"unexpected canonical mesh vertex type {vertex_type}")
            vertices = [v for f, v in mesh if f == 3]
        elif field == 2:  # procrustes_landmark_basis: WeightedLandmarkRef {landmark_id, weight}
            ref = dict(_protobuf_fields(value))
            weights[int(ref.get(1, 0))] = float(ref.get(2, 0.0))
    vertices = np.array(vertices, np.float64).reshape(-1, 5)[:, :3]
    if len(vertices) != 468:
        raise ValueError(f"canonical mesh has {len(vertices)} vertices, expected 468")
    return vertices, weights


def load_metric_face(ipd: float = DEFAULT_IPD_M, models_dir=None) -> np.ndarray:
    """MediaPipe's metric canonical face (478, 3) in metres in its face frame (REP-155 axes),
    scaled so the eye-ring centres are `ipd` apart. It has no iris points: 468..477 are the
    eye-ring centres (each iris's five points at its eye's centre)."""
    from vtb_detector.models import bundle_path
    path = bundle_path("geometry_pipeline_metadata_landmarks.binarypb", models_dir)
    vertices, _ = read_geometry_metadata(path.read_bytes())
    cam = vertices * np.array([1.0, -1.0, -1.0])  # to camera-like axes: x right, y down, z away
    irises = [np.repeat(cam[ring].mean(0)[None], 5, 0) for ring in (RIGHT_EYE_RING, LEFT_EYE_RING)]
    points = np.vstack([cam, *irises])
    origin, rot = face_frame(points)
    local = (points - origin) @ rot
    return local * (ipd / np.linalg.norm(local[LEFT_EYE_RING].mean(0) - local[RIGHT_EYE_RING].mean(0)))


def build_mean_face(landmark_sets, ipd: float = DEFAULT_IPD_M) -> np.ndarray:
    """Mean of several faces' landmarks, each in its own face frame at the same pupil distance."""
    return np.mean([to_face_frame(lm, ipd) for lm in landmark_sets], axis=0)
