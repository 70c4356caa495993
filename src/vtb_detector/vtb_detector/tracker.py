"""Face ids and box overlap, for the tracking in pipeline.py.

An id is a short hex string (REP-155 style, e.g. "f3a9"); a face keeps it while it is tracked,
and a face that is lost and comes back gets a new one. No rclpy here.
"""
from __future__ import annotations

import secrets


def new_face_id(taken=()) -> str:
    """Four hex digits, the first a letter: ids name topics and frames (faces/<id>/...,
    face_<id>), and a ROS name token cannot start with a digit."""
    while True:
        fid = secrets.choice("abcdef") + secrets.token_hex(2)[:3]
        if fid not in taken:
            return fid


def box_iou(a, b) -> float:
    """IoU of two [x, y, w, h] boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
