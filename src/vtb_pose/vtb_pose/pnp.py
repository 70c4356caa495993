"""Head pose from 2D landmarks: PnP against the metric face model. No rclpy here.

Only landmarks that keep their place on the skull are used: the lips, jaw line, eyelids, brows
and irises move with expression or are silhouette points that slide with the view, so they are
left out. The first solve uses SQPnP (global, no initial guess needed); while a face is
tracked the previous pose seeds an iterative Levenberg-Marquardt solve. Landmarks whose
reprojection error stands out (more than `outlier_factor` x the median and over
`outlier_min_px`) are dropped and the pose solved again.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .face_model import load_face_model

# MediaPipe mesh regions left out of PnP (their indices): lips, face oval, eye rings but the
# corners, brows
_LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
         270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415]
_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
         176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
_EYELIDS = [7, 163, 144, 145, 153, 154, 155, 246, 161, 160, 159, 158, 157, 173,
            249, 390, 373, 374, 380, 381, 382, 466, 388, 387, 386, 385, 384, 398]
_BROWS = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107, 276, 283, 282, 295, 285, 300, 293, 334, 296, 336]
# lower face below the mouth corners moves with the jaw
_JAW = [18, 32, 83, 106, 111, 140, 169, 170, 171, 175, 182, 194, 199, 200, 201, 204, 208, 211, 262, 313,
        335, 340, 369, 394, 395, 396, 406, 418, 421, 424, 428, 431, 43, 57, 186, 202, 204, 212, 214, 273,
        287, 410, 422, 432, 434, 135, 138, 364, 367, 192, 416, 210, 430, 215, 435, 177, 401, 147, 376]
STABLE_LANDMARKS = np.array(sorted(set(range(468)) - set(_LIPS + _OVAL + _EYELIDS + _BROWS + _JAW)))

METHODS = {"sqpnp": cv2.SOLVEPNP_SQPNP, "iterative": cv2.SOLVEPNP_ITERATIVE, "epnp": cv2.SOLVEPNP_EPNP}


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


class HeadPoseEstimator:
    def __init__(self, ipd_m: float = 0.063, method: str = "sqpnp", indices=STABLE_LANDMARKS,
                 outlier_factor: float = 3.0, outlier_min_px: float = 2.0, model=None):
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        self.model = load_face_model(ipd_m) if model is None else np.asarray(model, np.float64)
        self.method = method
        self.indices = np.asarray(indices)
        self.outlier_factor, self.outlier_min_px = outlier_factor, outlier_min_px

    def estimate(self, landmarks_px, camera_matrix, dist_coeffs=None, guess: PoseEstimate | None = None):
        """Pose from landmarks in vtb's pixels (edge at 0: pixel centres at +0.5, converted here
        to OpenCV's convention). Returns None when PnP fails."""
        image = np.asarray(landmarks_px, np.float64)[self.indices, :2] - 0.5
        model = self.model[self.indices]
        dist = np.zeros(5) if dist_coeffs is None else np.asarray(dist_coeffs, np.float64)
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

    def _solve(self, model, image, k, dist, guess):
        if guess is not None:
            rvec, _ = cv2.Rodrigues(guess.rotation)
            tvec = guess.translation.reshape(3, 1).astype(np.float64)
            ok, rvec, tvec = cv2.solvePnP(model, image, k, dist, rvec, tvec, useExtrinsicGuess=True,
                                          flags=cv2.SOLVEPNP_ITERATIVE)
        else:
            ok, rvec, tvec = cv2.solvePnP(model, image, k, dist, flags=METHODS[self.method])
            if ok and self.method != "iterative":  # polish the closed-form solution
                rvec, tvec = cv2.solvePnPRefineLM(model, image, k, dist, rvec, tvec)
        if not ok or tvec[2, 0] <= 0:
            return None, None
        return rvec, tvec

    @staticmethod
    def _errors(model, image, k, dist, rvec, tvec):
        projected, _ = cv2.projectPoints(model, rvec, tvec, k, dist)
        return np.linalg.norm(projected.reshape(-1, 2) - image, axis=1)
