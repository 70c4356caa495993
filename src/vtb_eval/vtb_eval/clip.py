"""A moving-face clip made from a real photo, for benchmarks and tracking tests.

skimage's astronaut (one real frontal face) moved along a smooth path: translation, scale and
in-plane rotation, resampled into frames of the requested size. No rclpy here.
"""
from __future__ import annotations

import cv2
import numpy as np

FACE_CENTRE = (225.0, 128.0)  # the astronaut's face in the 512 x 512 photo, pixels


def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


def astronaut_clip(frames: int = 300, size=(640, 480), shift=60.0, rotate_deg=20.0, zoom=0.15,
                   photo: np.ndarray | None = None):
    """Yields (frame RGB uint8 (H, W, 3), 2x3 affine matrix from photo to frame pixels).
    The face starts centred and wanders within +-shift px, +-rotate_deg, 1 +- zoom scale."""
    photo = astronaut() if photo is None else photo
    w, h = size
    for i in range(frames):
        t = i / 30.0  # seconds at 30 fps: slow, smooth head-like motion
        angle = rotate_deg * np.sin(2 * np.pi * 0.23 * t)
        scale = 1.0 + zoom * np.sin(2 * np.pi * 0.17 * t + 1.0)
        m = cv2.getRotationMatrix2D(FACE_CENTRE, angle, scale)
        m[0, 2] += w / 2 - FACE_CENTRE[0] + shift * np.sin(2 * np.pi * 0.31 * t)
        m[1, 2] += h / 2 - FACE_CENTRE[1] + 0.6 * shift * np.sin(2 * np.pi * 0.19 * t + 0.5)
        yield cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), m
