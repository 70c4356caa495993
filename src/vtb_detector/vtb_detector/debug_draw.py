"""Drawing faces on an image, for the node's debug image and the CLI. No rclpy here."""
from __future__ import annotations

import cv2
import numpy as np

GREEN, RED, YELLOW = (0, 255, 0), (255, 64, 64), (255, 220, 0)


def draw_faces(rgb: np.ndarray, faces) -> np.ndarray:
    """A copy of `rgb` with each face's box, id, landmarks (mesh green, irises red) drawn.
    `faces`: objects with id, box [x, y, w, h], landmarks (N, 2+), presence."""
    out = rgb.copy()
    for f in faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), YELLOW, 2)
        cv2.putText(out, f"{f.id} {f.presence:.2f}", (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, YELLOW, 1,
                    cv2.LINE_AA)
        pts = np.asarray(f.landmarks)[:, :2]
        for i, (px, py) in enumerate(pts):
            cv2.circle(out, (int(px), int(py)), 1, RED if i >= 468 else GREEN, -1)
    return out
