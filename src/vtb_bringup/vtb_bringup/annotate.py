"""The demo's outputs: frames annotated with what the graph published, and the avatar CSV.

Works on vtb_msgs messages as plain objects (no rclpy). The drawing of boxes and landmarks is
vtb_detector's debug drawing; this adds the head's axes and the gaze, projected with the
camera matrix, and a line of text.
"""
from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from transforms3d.quaternions import quat2mat
from vtb_detector.debug_draw import draw_faces

AXIS_M, GAZE_M = 0.08, 0.25
AXIS_COLOURS = [(255, 0, 0), (0, 200, 0), (0, 90, 255)]    # x, y, z as RViz draws them
GAZE_COLOUR = (255, 0, 255)


def _project(points, k) -> list:
    """Camera-frame points (N, 3), metres -> pixel tuples."""
    points = np.asarray(points, np.float64)
    uv = (k @ points.T).T
    return [tuple(int(round(v)) for v in p[:2] / p[2]) for p in uv]


def _vec(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z], np.float64)


def annotate(rgb: np.ndarray, k: np.ndarray, faces=None, poses=None, gazes=None, states=None,
             caption: str = "") -> np.ndarray:
    """`rgb` with the FaceArray's boxes and landmarks, each HeadPose's axes, each Gaze's
    direction and the FaceStateArray's eye and mouth values drawn."""
    out = rgb
    if faces is not None:
        drawn = [SimpleNamespace(id=f.id, box=(f.bbox.x, f.bbox.y, f.bbox.width, f.bbox.height),
                                 presence=f.landmark_confidence,
                                 landmarks=np.asarray(f.landmarks, np.float32).reshape(-1, 2)) for f in faces.faces]
        out = draw_faces(rgb, drawn)
    else:
        out = rgb.copy()
    lines = [caption] if caption else []
    for p in (poses.poses if poses is not None else []):
        if not p.valid:
            continue
        o, q = p.pose.position, p.pose.orientation
        origin = np.array([o.x, o.y, o.z])
        axes = quat2mat([q.w, q.x, q.y, q.z]) * AXIS_M
        ends = _project([origin, *(origin + axes[:, i] for i in range(3))], k)
        for i in range(3):
            cv2.arrowedLine(out, ends[0], ends[i + 1], AXIS_COLOURS[i], 2, cv2.LINE_AA, tipLength=0.15)
        lines.append(f"{p.face_id}: yaw {p.yaw_deg:+5.1f} pitch {p.pitch_deg:+5.1f} roll {p.roll_deg:+5.1f} deg, "
                     f"{o.z:.2f} m")
    for g in (gazes.gazes if gazes is not None else []):
        for valid, centre, direction in ((g.left_valid, g.left_eyeball_center, g.left_direction),
                                         (g.right_valid, g.right_eyeball_center, g.right_direction)):
            if valid:
                c = _vec(centre)
                a, b = _project([c, c + GAZE_M * _vec(direction)], k)
                cv2.arrowedLine(out, a, b, GAZE_COLOUR, 2, cv2.LINE_AA, tipLength=0.1)
        lines.append(f"gaze yaw {g.combined_yaw_deg:+5.1f} pitch {g.combined_pitch_deg:+5.1f} deg")
    for s in (states.states if states is not None else []):
        lines.append(f"eyes L {s.eye_left_open:.2f} R {s.eye_right_open:.2f}{' BLINK' if s.blink else ''}, "
                     f"mouth {s.mouth_open:.2f}")
    for i, text in enumerate(lines):
        cv2.putText(out, text, (8, 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(out, text, (8, 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return out


class VideoOut:
    """Frames (RGB) into a video file; mp4 (mp4v) or avi (MJPG) by the file's suffix."""

    def __init__(self, path: str | Path, fps: float, size):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.path), fourcc, fps, tuple(size))
        if not self.writer.isOpened():
            raise RuntimeError(f"cannot write video {self.path} (OpenCV has no encoder for it)")
        self.frames = 0

    def write(self, rgb: np.ndarray):
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self):
        self.writer.release()


def write_avatar_csv(path: str | Path, rows) -> int:
    """AvatarParameters messages -> CSV: stamp (s), face_id, then one column per parameter
    name (the union over all rows, in first-seen order). Returns the number of rows."""
    names = []
    for msg in rows:
        names += [n for n in msg.names if n not in names]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stamp", "face_id", *names])
        for msg in rows:
            values = dict(zip(msg.names, msg.values))
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            w.writerow([f"{stamp:.6f}", msg.face_id, *(f"{values[n]:.4f}" if n in values else "" for n in names)])
    return len(rows)
