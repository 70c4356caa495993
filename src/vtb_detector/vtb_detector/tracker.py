"""Face ids that stay the same while a face is followed from frame to frame.

For now faces are associated by box overlap with the previous frame; the landmark tracker of
the detector issue replaces the association but keeps the id rules: an id is a short hex
string (REP-155 style, e.g. "f3a9"), a face keeps it while it is matched, and a face that is
lost and comes back gets a new one. No rclpy here.
"""
from __future__ import annotations

import secrets

import numpy as np


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


class IouTracker:
    def __init__(self, min_iou: float = 0.3):
        self.min_iou = min_iou
        self.tracks: dict[str, np.ndarray] = {}   # id -> last box

    def update(self, boxes) -> list[str]:
        """Ids for this frame's boxes (same order); greedy, best overlaps first."""
        pairs = sorted(((box_iou(t, b), fid, i) for fid, t in self.tracks.items()
                        for i, b in enumerate(boxes)), reverse=True)
        ids = [None] * len(boxes)
        used = set()
        for iou, fid, i in pairs:
            if iou < self.min_iou:
                break
            if ids[i] is None and fid not in used:
                ids[i] = fid
                used.add(fid)
        for i, fid in enumerate(ids):
            if fid is None:
                ids[i] = new_face_id(set(self.tracks) | set(filter(None, ids)))
        self.tracks = {fid: np.asarray(b, np.float32) for fid, b in zip(ids, boxes)}
        return ids
