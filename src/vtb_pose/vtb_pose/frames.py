"""Face-frame rotations and the yaw/pitch/roll convention of vtb_msgs/HeadPose. No rclpy here.

Rotations are the pose of the REP-155 face frame (x forward out of the face, y to the subject's
left, z up) in the camera's optical frame (x right, y down, z forward). Euler angles are
relative to a face looking straight into the camera, intrinsic Z-Y'-X'' (yaw about the face's
up axis, then pitch, then roll), right-handed: yaw > 0 turns the face to its own left, pitch > 0
looks down, roll > 0 tilts towards the right shoulder. transforms3d does the Euler math.
"""
from __future__ import annotations

import numpy as np
from transforms3d.euler import euler2mat, mat2euler
from transforms3d.quaternions import mat2quat, quat2mat

# A frontal face: its forward axis points at the camera (optical -z), its left is the image's
# right (+x), its up is the image's up (-y).
FRONTAL = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


def rotation_from_ypr(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    return FRONTAL @ euler2mat(*np.radians([yaw_deg, pitch_deg, roll_deg]), axes="rzyx")


def ypr_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(a) for a in np.degrees(mat2euler(FRONTAL.T @ rotation, axes="rzyx")))


def quaternion_wxyz(rotation: np.ndarray) -> np.ndarray:
    return mat2quat(rotation)


def rotation_from_quaternion(q_wxyz) -> np.ndarray:
    return quat2mat(q_wxyz)


def angle_between(r1: np.ndarray, r2: np.ndarray) -> float:
    """The angle of the rotation taking r1 to r2, degrees."""
    c = (np.trace(r1.T @ r2) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
