"""3D gaze from the iris landmarks and the head pose. No rclpy here.

Per eye: the eyeball centre comes from the head pose and average eye geometry (radius about
12 mm, centre behind the iris along the head's forward axis, from the metric face model); the
3D iris centre is where the camera ray through the iris landmark meets that eyeball; the gaze
is the unit vector from the eyeball centre through it, in the camera's optical frame. The
combined gaze is the normalised mean of the valid eyes'. Yaw and pitch are relative to the head
(same signs as HeadPose: yaw > 0 towards the subject's left, pitch > 0 down).

"Look at the camera" calibration: for a few frames the true gaze is the line from each eyeball
to the camera; the mean yaw/pitch difference per eye is the user's offset (the angle between
the eye's visual and optical axes differs from person to person), subtracted from then on.

Bad inputs never poison the state: non-finite iris landmarks, pose, translation (or a face not
in front of the camera) or camera matrix give an invalid result holding finite numbers only
(straight ahead of the face), counted in `rejected`; a non-finite openness counts as closed; a
calibration sample that is not finite is not learned from.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RIGHT, LEFT = 0, 1                 # the subject's eyes
IRIS_CENTRE = (468, 473)           # MediaPipe 478-point layout
EYE_CORNERS = ((33, 133), (362, 263))


@dataclass
class EyeGaze:
    direction: np.ndarray          # unit vector, camera optical frame
    eyeball_centre: np.ndarray     # metres, camera optical frame
    yaw_deg: float                 # relative to the head
    pitch_deg: float
    valid: bool
    confidence: float


@dataclass
class GazeResult:
    eyes: list                     # [right EyeGaze, left EyeGaze]
    direction: np.ndarray          # combined, unit
    origin: np.ndarray
    yaw_deg: float
    pitch_deg: float
    valid: bool


def head_relative_angles(direction_face: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a direction given in the face frame (x forward, y left, z up)."""
    x, y, z = direction_face
    return math.degrees(math.atan2(y, x)), math.degrees(math.atan2(-z, math.hypot(x, y)))


def direction_from_angles(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit vector in the face frame for head-relative (yaw, pitch)."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    return np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])


def ray_sphere(ray: np.ndarray, centre: np.ndarray, radius: float):
    """Nearest intersection of the ray from the origin along unit `ray` with the sphere, and
    whether it hit; on a miss, the sphere point closest to the ray."""
    b = float(ray @ centre)
    disc = b * b - float(centre @ centre) + radius * radius
    if disc >= 0:
        return ray * (b - math.sqrt(disc)), True
    closest = ray * b
    return centre + radius * (closest - centre) / np.linalg.norm(closest - centre), False


@dataclass
class GazeEstimator:
    model: np.ndarray                       # metric face model (478, 3) in the face frame
    eyeball_radius: float = 0.012
    calibration_frames: int = 15
    offsets: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))  # per eye (yaw, pitch) deg
    _collect: list | None = None
    rejected: int = 0                       # inputs that gave no gaze: not finite, behind the camera

    def eyeball_centres_face(self) -> np.ndarray:
        """(2, 3) eyeball centres in the face frame: behind each iris along the forward axis."""
        iris = self.model[list(IRIS_CENTRE)]
        return iris - np.array([self.eyeball_radius, 0.0, 0.0])

    def start_calibration(self):
        """Begin "look at the camera": the next `calibration_frames` estimates learn the offsets."""
        self._collect = []

    @property
    def calibrating(self) -> bool:
        return self._collect is not None

    def estimate(self, landmarks_px, rotation, translation, camera_matrix, openness=(1.0, 1.0),
                 open_threshold: float = 0.25) -> GazeResult:
        """landmarks_px: (478, 2+) in vtb's pixels (image edge at 0); rotation, translation: the
        face frame's pose in the optical frame; openness: per eye 0..1 (closed eyes are invalid)."""
        lm = np.asarray(landmarks_px, np.float64)
        rotation = np.asarray(rotation, np.float64)
        translation = np.asarray(translation, np.float64)
        k = np.asarray(camera_matrix, np.float64)
        if not (np.all(np.isfinite(rotation)) and np.all(np.isfinite(translation)) and np.all(np.isfinite(k))
                and translation[2] > 0 and lm.ndim == 2 and lm.shape[0] > max(IRIS_CENTRE)
                and np.all(np.isfinite(lm[list(IRIS_CENTRE), :2])) and abs(np.linalg.det(k)) > 1e-12):
            self.rejected += 1
            return self._unknown(rotation, translation)
        openness = [float(o) if math.isfinite(float(o)) else 0.0 for o in openness]
        k_inv = np.linalg.inv(k)
        centres = self.eyeball_centres_face() @ rotation.T + translation
        eyes, raw = [], []
        for e in (RIGHT, LEFT):
            u, v = lm[IRIS_CENTRE[e], :2] - 0.5  # to OpenCV's pixel-centre convention
            ray = k_inv @ np.array([u, v, 1.0])
            ray /= np.linalg.norm(ray)
            iris, hit = ray_sphere(ray, centres[e], self.eyeball_radius)
            direction = iris - centres[e]
            direction /= np.linalg.norm(direction)
            yaw, pitch = head_relative_angles(rotation.T @ direction)
            raw.append((yaw, pitch, centres[e]))
            yaw, pitch = yaw - self.offsets[e, 0], pitch - self.offsets[e, 1]
            direction = rotation @ direction_from_angles(yaw, pitch)
            # an eye turned away from the camera is seen edge-on: its iris is poorly placed
            to_camera = -centres[e] / np.linalg.norm(centres[e])
            facing = float(rotation[:, 0] @ to_camera)   # cos of the angle between face forward and camera
            confidence = float(np.clip((facing - 0.3) / 0.5, 0, 1)) * (1.0 if hit else 0.5)
            confidence *= float(np.clip(openness[e] / max(open_threshold, 1e-6), 0, 1))
            valid = openness[e] >= open_threshold and confidence > 0.05
            if not (np.all(np.isfinite(direction)) and math.isfinite(yaw) and math.isfinite(pitch)
                    and math.isfinite(confidence)):
                self.rejected += 1
                direction, yaw, pitch, valid, confidence = rotation[:, 0].copy(), 0.0, 0.0, False, 0.0
                raw[-1] = (math.nan, math.nan, centres[e])
            eyes.append(EyeGaze(direction, centres[e], yaw, pitch, valid, confidence))
        if self._collect is not None:
            self._calibration_step(raw, rotation)
        return self._combine(eyes, rotation)

    def _unknown(self, rotation, translation) -> GazeResult:
        """No gaze from unusable inputs: invalid, straight ahead of the face, finite numbers only."""
        ok_r = rotation.shape == (3, 3) and np.all(np.isfinite(rotation))
        forward = rotation[:, 0].copy() if ok_r else np.array([0.0, 0.0, -1.0])
        origin = translation.copy() if translation.shape == (3,) and np.all(np.isfinite(translation)) else np.zeros(3)
        eyes = [EyeGaze(forward.copy(), origin.copy(), 0.0, 0.0, False, 0.0) for _ in (RIGHT, LEFT)]
        return GazeResult(eyes, forward, origin, 0.0, 0.0, False)

    def _calibration_step(self, raw, rotation):
        sample = []
        for yaw, pitch, centre in raw:
            want_yaw, want_pitch = head_relative_angles(rotation.T @ (-centre / np.linalg.norm(centre)))
            sample.append((yaw - want_yaw, pitch - want_pitch))
        if not np.all(np.isfinite(sample)):
            return                              # not learned from
        self._collect.append(sample)
        if len(self._collect) >= self.calibration_frames:
            self.offsets = np.median(np.array(self._collect), axis=0)
            self._collect = None

    @staticmethod
    def _combine(eyes, rotation) -> GazeResult:
        valid = [e for e in eyes if e.valid]
        if valid:
            weights = np.array([e.confidence for e in valid])
            direction = (np.array([e.direction for e in valid]) * weights[:, None]).sum(0)
            direction /= np.linalg.norm(direction)
            origin = np.mean([e.eyeball_centre for e in valid], axis=0)
        else:  # unknown gaze: straight ahead of the face
            direction = rotation[:, 0].copy()
            origin = np.mean([e.eyeball_centre for e in eyes], axis=0)
        yaw, pitch = head_relative_angles(rotation.T @ direction)
        return GazeResult(eyes, direction, origin, yaw, pitch, bool(valid))


def gaze_frame_rotation(direction: np.ndarray, face_rotation: np.ndarray) -> np.ndarray:
    """REP-155 gaze frame in the optical frame: z along the gaze, y down (towards the face's
    -z), x to the subject's right."""
    z = direction / np.linalg.norm(direction)
    down = -face_rotation[:, 2]
    x = np.cross(down, z)
    if np.linalg.norm(x) < 1e-6:  # looking straight up or down
        x = -face_rotation[:, 1] - (-face_rotation[:, 1] @ z) * z
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])
