"""Head pose from landmarks against MediaPipe's metric canonical face. No rclpy here.

Only landmarks that keep their place on the skull are used, and the face oval: the lips, the lower
face, the eyelids, the brows and the irises move with expression, so they are left out. The oval
(the silhouette, which slides with the view) was left out too until it was measured on real
faces: with the Face Landmarker's landmarks on the 917 faces of the AFLW2000-3D dev half that both
found, keeping it gives a mean absolute error of 3.30 deg against 3.50 without it (all 468
points: 3.41; without the lower oval: 3.40).

Two ways to solve, `method`:
- "procrustes" (the default): the landmarks' own depth is used, not only their pixels. Each
  landmark's pixel is cast back through the camera to the depth the mesh model gives it
  (`landmarks_z`, relative, in the scale of x), and the metric face is aligned to that 3D
  point cloud by a similarity Procrustes fit (Umeyama). The cloud scales with the unknown
  distance as a whole, so one SVD gives the rotation; the position is then the one that best
  reprojects the rotated face onto the pixels (linear least squares).
  On real faces PnP on the pixels alone reads turned heads short (yaw slope 0.8 on
  AFLW2000-3D): the landmark model pulls the far side's points towards a frontal face, and the
  depth it predicts says more about the turn than those pixels (`./vtb eval real`).
  The rotation is then taken halfway towards the one PnP finds on the pixels alone
  (PIXEL_WEIGHT), and a turn past 30 degrees lengthened (TURN_GAIN): both measured on real faces.
- "sqpnp", "epnp", "iterative": PnP on the pixels (cv2.solvePnP). The first solve is global;
  while a face is tracked the previous pose seeds an iterative Levenberg-Marquardt solve.
  Landmarks whose reprojection error stands out (more than `outlier_factor` x the median and
  over `outlier_min_px`) are dropped and the pose solved again. Also the fallback of
  "procrustes" when a face comes without depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face_model import load_metric_face

# MediaPipe mesh regions left out of the pose (their indices): lips, eye rings but the corners,
# brows, the lower face; the face oval stays in (module docstring)
_LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
         270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415]
_EYELIDS = [7, 163, 144, 145, 153, 154, 155, 246, 161, 160, 159, 158, 157, 173,
            249, 390, 373, 374, 380, 381, 382, 466, 388, 387, 386, 385, 384, 398]
_BROWS = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107, 276, 283, 282, 295, 285, 300, 293, 334, 296, 336]
# lower face below the mouth corners moves with the jaw
_JAW = [18, 32, 83, 106, 111, 140, 169, 170, 171, 175, 182, 194, 199, 200, 201, 204, 208, 211, 262, 313,
        335, 340, 369, 394, 395, 396, 406, 418, 421, 424, 428, 431, 43, 57, 186, 202, 204, 212, 214, 273,
        287, 410, 422, 432, 434, 135, 138, 364, 367, 192, 416, 210, 430, 215, 435, 177, 401, 147, 376]
STABLE_LANDMARKS = np.array(sorted(set(range(468)) - set(_LIPS + _EYELIDS + _BROWS + _JAW)))

PNP_METHODS = {"sqpnp": cv2.SOLVEPNP_SQPNP, "iterative": cv2.SOLVEPNP_ITERATIVE, "epnp": cv2.SOLVEPNP_EPNP}
METHODS = ("procrustes", *PNP_METHODS)
# The landmark model's depth is "roughly the scale of x" (MediaPipe's words); read as exactly
# that, turned heads come out short. Measured with the Face Landmarker's landmarks on the AFLW2000-3D
# dev half (917 faces, mean absolute error of pitch/yaw/roll; slopes pitch/yaw/roll): 1.1: 3.30
# (0.87/0.92/0.92), 1.2: 3.30 (0.90/0.94/0.93), 1.3: 3.36 (0.93/0.95/0.94), 1.4: about 3.6. 1.2
# keeps the lowest error with less shrinkage of large angles. ./vtb eval real prints the sweep.
DEPTH_SCALE = 1.2
# Two corrections measured on the AFLW2000-3D dev half with the Face Landmarker's landmarks (914
# faces found; mean absolute error of pitch/yaw/roll, then their slopes against the labels):
# - PIXEL_WEIGHT: the rotation from the landmarks' depth (Procrustes) and the one from their
#   pixels alone (SQPnP) err in different ways; taken halfway (slerp), the error is lower than
#   either's and the pose steadier on the talking-head clip (filtered yaw jitter 0.32 -> 0.26).
#   Weight 0 (depth only), 0.3, 0.5, 0.7, 1 (pixels only), with TURN_GAIN 0.15: 3.13, 3.02, 2.99,
#   3.02, 3.13.
# - TURN_GAIN: the landmark model reads a turned head short past about 30 degrees, more the
#   further it turns (yaw error by |yaw| band, depth only: +0.1 at 0-15, +0.2 at 15-30, -1.3 at
#   30-45, -3.3 at 45-60, -6.1 at 60-75, -13.9 at 75-90 deg), so the turn beyond TURN_FROM_DEG is
#   lengthened by TURN_GAIN (60 degrees read become 66). Gain 0.1, 0.15, 0.2 with weight 0.5:
#   2.985 (0.91/0.96/0.96), 2.992 (0.93/0.97/0.98), 3.037 (0.96/0.99/1.00); without either
#   correction 3.134 (0.91/0.94/0.93). 0.2 keeps every slope within 5 % of 1 for 0.05 degrees.
# `./vtb eval real` prints the sweep of each.
PIXEL_WEIGHT = 0.5
TURN_FROM_DEG = 30.0
TURN_GAIN = 0.2


@dataclass
class PoseEstimate:
    rotation: np.ndarray       # face frame in the camera's optical frame (3x3)
    translation: np.ndarray    # metres (3,)
    reprojection_error_px: float
    landmark_count: int


def default_intrinsics(width: int, height: int) -> np.ndarray:
    """Focal length = image width, principal point = image centre (OpenCV's pixel-centre
    convention, as sensor_msgs/CameraInfo's K)."""
    return np.array([[width, 0, (width - 1) / 2], [0, width, (height - 1) / 2], [0, 0, 1]], np.float64)


def camera_from_info(k, d=()):
    """(K 3x3, distortion or None) from CameraInfo's k and d, or None when they are not a usable
    camera: focal lengths not finite and positive, a principal point or distortion not finite.
    One bad CameraInfo must not poison every later pose or gaze: callers keep the last good one."""
    k = np.array(k, np.float64).reshape(3, 3) if len(k) == 9 else np.full((3, 3), np.nan)
    dist = np.array(d, np.float64) if len(d) else None
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0 and (dist is None or np.isfinite(dist).all())):
        return None
    return k, dist


class HeadPoseEstimator:
    def __init__(self, ipd_m: float = 0.063, method: str = "procrustes", indices=STABLE_LANDMARKS,
                 outlier_factor: float = 3.0, outlier_min_px: float = 2.0, model=None,
                 depth_scale: float = DEPTH_SCALE, models_dir=None, turn_gain: float = TURN_GAIN,
                 pixel_weight: float = PIXEL_WEIGHT):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.model = load_metric_face(ipd_m, models_dir) if model is None else np.asarray(model, np.float64)
        self.method = method
        self.indices = np.asarray(indices)
        self.outlier_factor, self.outlier_min_px = outlier_factor, outlier_min_px
        self.depth_scale = depth_scale
        self.turn_gain = turn_gain
        self.pixel_weight = pixel_weight

    def estimate(self, landmarks_px, camera_matrix, dist_coeffs=None, guess: PoseEstimate | None = None):
        """Pose from landmarks in vtb's pixels (edge at 0: pixel centres at +0.5, converted here
        to OpenCV's convention): (N, 2), or (N, 3) with the mesh's relative depth as the third
        column. Returns None when the solve fails or the input is not finite."""
        points = np.asarray(landmarks_px, np.float64)
        if points.ndim != 2 or len(points) <= self.indices.max() or points.shape[1] < 2:
            return None
        points = points[self.indices]
        if not np.isfinite(points).all():
            return None
        image = points[:, :2] - 0.5
        model = self.model[self.indices]
        dist = np.zeros(5) if dist_coeffs is None else np.asarray(dist_coeffs, np.float64)
        if self.method == "procrustes" and points.shape[1] >= 3:
            pose = self._procrustes(model, image, points[:, 2] * self.depth_scale, camera_matrix, dist)
            if pose is not None and self.pixel_weight > 0:
                pixels = self._pnp(model, image, camera_matrix, dist, guess)
                if pixels is not None:
                    pose.rotation = _slerp(pose.rotation, pixels.rotation, self.pixel_weight)
        else:
            pose = self._pnp(model, image, camera_matrix, dist, guess)
        if pose is not None and self.turn_gain:
            pose.rotation = lengthen_turn(pose.rotation, pose.translation, self.turn_gain)
        return pose

    def _pnp(self, model, image, camera_matrix, dist, guess):
        rvec, tvec = self._solve(model, image, camera_matrix, dist, guess)
        if rvec is None:
            return None
        err = self._errors(model, image, camera_matrix, dist, rvec, tvec)
        keep = err <= max(self.outlier_factor * np.median(err), self.outlier_min_px)
        if keep.sum() < len(keep) and keep.sum() >= 6:
            ok, rvec, tvec = cv2.solvePnP(model[keep], image[keep], camera_matrix, dist, rvec, tvec,
                                          useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
            err = self._errors(model[keep], image[keep], camera_matrix, dist, rvec, tvec)
        rotation, _ = cv2.Rodrigues(rvec)
        return PoseEstimate(rotation, tvec.reshape(3), float(np.sqrt(np.mean(err ** 2))), int(len(err)))

    def _procrustes(self, model, image, depth_px, k, dist):
        """Similarity fit of the model to the landmarks cast back to their own depth."""
        if dist.any():
            image = cv2.undistortPoints(image.reshape(-1, 1, 2), k, dist, P=k).reshape(-1, 2)
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        # At a distance d of the face (depth_px = 0) a landmark lies at depth d * (1 + z / fx),
        # z being in pixels at that distance; its ray gives x and y. Built for d = 1: the cloud
        # of any other d is this one times d.
        depth = 1.0 + depth_px / fx
        cloud = np.column_stack([(image[:, 0] - cx) / fx * depth, (image[:, 1] - cy) / fy * depth, depth])
        rotation, scale, _ = _umeyama(model, cloud)
        if not (np.isfinite(rotation).all() and scale > 0):
            return None
        # The position that best reprojects the rotated model onto the pixels (linear least
        # squares for t): the face's overlay in the image stays where PnP would put it.
        rotated = model @ rotation.T
        u, v = (image[:, 0] - cx) / fx, (image[:, 1] - cy) / fy
        n = len(rotated)
        a = np.zeros((2 * n, 3))
        a[:n, 0], a[:n, 2] = 1.0, -u
        a[n:, 1], a[n:, 2] = 1.0, -v
        b = np.concatenate([u * rotated[:, 2] - rotated[:, 0], v * rotated[:, 2] - rotated[:, 1]])
        translation = np.linalg.lstsq(a, b, rcond=None)[0]
        if not np.isfinite(translation).all() or translation[2] <= 0:
            return None
        rvec, _ = cv2.Rodrigues(rotation)
        err = self._errors(model, image, k, np.zeros(5), rvec, translation.reshape(3, 1))
        return PoseEstimate(rotation, translation, float(np.sqrt(np.mean(err ** 2))), int(len(err)))

    def _solve(self, model, image, k, dist, guess):
        if guess is not None:
            rvec, _ = cv2.Rodrigues(guess.rotation)
            tvec = guess.translation.reshape(3, 1).astype(np.float64)
            ok, rvec, tvec = cv2.solvePnP(model, image, k, dist, rvec, tvec, useExtrinsicGuess=True,
                                          flags=cv2.SOLVEPNP_ITERATIVE)
        else:
            method = "sqpnp" if self.method == "procrustes" else self.method
            ok, rvec, tvec = cv2.solvePnP(model, image, k, dist, flags=PNP_METHODS[method])
            if ok and method != "iterative":  # polish the closed-form solution
                rvec, tvec = cv2.solvePnPRefineLM(model, image, k, dist, rvec, tvec)
        if not ok or tvec[2, 0] <= 0:
            return None, None
        return rvec, tvec

    @staticmethod
    def _errors(model, image, k, dist, rvec, tvec):
        projected, _ = cv2.projectPoints(model, rvec, tvec, k, dist)
        return np.linalg.norm(projected.reshape(-1, 2) - image, axis=1)


def lengthen_turn(rotation, translation, gain: float, from_deg: float = TURN_FROM_DEG) -> np.ndarray:
    """The head turned further about its own vertical axis (the face frame's z) by `gain` times
    its turn beyond `from_deg`; the turn is measured from the line of sight to the head (the
    face's forward axis against the direction to the camera, both seen along the head's
    vertical), so a face off the image centre is treated as one in the middle (TURN_GAIN)."""
    up, forward = rotation[:, 2], rotation[:, 0]
    to_camera = -np.asarray(translation, np.float64) / np.linalg.norm(translation)
    ahead = to_camera - (to_camera @ up) * up
    if np.linalg.norm(ahead) < 1e-9:   # looking straight down on the head: no turn to speak of
        return rotation
    ahead /= np.linalg.norm(ahead)
    turn = np.degrees(np.arctan2(np.cross(ahead, forward) @ up, ahead @ forward))
    extra = gain * max(0.0, abs(turn) - from_deg) * np.sign(turn)
    if extra == 0.0:
        return rotation
    spin, _ = cv2.Rodrigues(up * np.radians(extra))
    return spin @ rotation


def _slerp(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """The rotation a fraction w of the way from a to b (on the shortest arc)."""
    step, _ = cv2.Rodrigues(a.T @ b)
    part, _ = cv2.Rodrigues(step * w)
    return a @ part


def _umeyama(src: np.ndarray, dst: np.ndarray):
    """Rotation R, scale s, offset t with dst ~ s R src + t in the least-squares sense (Umeyama
    1991, the similarity form of Kabsch). scikit-image's SimilarityTransform does the same, but
    the nodes do not depend on scikit-image; OpenCV's estimateAffine3D fits a full affine and
    scipy's Rotation.align_vectors no scale."""
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    a, b = src - mean_src, dst - mean_dst
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sv) @ d) / (a ** 2).sum() * len(src))
    return rotation, scale, mean_dst - scale * rotation @ mean_src
