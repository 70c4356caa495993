"""`vtb eval gaze`: gaze, blink and mouth-open accuracy on renders of known state.

The rendered head (vtb_eval.render) looks in a known direction (its iris moved on a 12 mm
eyeball, the eye model the estimator also assumes), closes its eyelids, opens its jaw. Each case
is tracked into over a few frames, then measured through the whole pipeline: detector,
landmarks, PnP, FaceState, gaze. Gaze error is the angle between the estimated and the true
combined gaze, in the camera frame (head-pose error included) and relative to the head (the eyes
alone). No rclpy here.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from vtb_pose.frames import rotation_from_ypr, ypr_from_rotation
from vtb_pose.pnp import HeadPoseEstimator
from vtb_gaze.face_state import FaceStateEstimator
from vtb_gaze.gaze import GazeEstimator, direction_from_angles

HEADS = ((0, 0, 0), (20, 0, 0), (-15, 10, 0), (0, -10, 10))
GAZE_YAWS = (-20, -10, 0, 10, 20)
GAZE_PITCHES = (-10, 0, 10)
DISTANCE = 0.6
SIZE = (640, 480)


def _angle(a, b) -> float:
    return math.degrees(math.acos(float(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


class _Runner:
    """The pipeline from image to face state and gaze, as the nodes chain it."""

    def __init__(self, k):
        from vtb_detector.pipeline import FacePipeline
        self.k, self.pipeline, self.pnp = k, FacePipeline(threads=2), HeadPoseEstimator()
        self.gaze = GazeEstimator(self.pnp.model)
        self.reset()

    def reset(self):
        self.pipeline.reset()
        self.state = FaceStateEstimator()
        self.last, self.t = None, 0.0

    def frame(self, image):
        faces = self.pipeline.process(image)
        self.t += 1 / 30
        if not faces:
            return None
        lm = faces[0].landmarks
        self.last = self.pnp.estimate(lm, self.k, guess=self.last)
        if self.last is None:
            return None
        state = self.state.update(lm, ypr_from_rotation(self.last.rotation), self.t)
        g = self.gaze.estimate(lm, self.last.rotation, self.last.translation, self.k,
                               openness=(state.eye_right_open, state.eye_left_open))
        return state, g, self.last


def look_at_camera(renderer, rotation, t):
    """Per-eye (yaw, pitch) relative to the head that points each eye at the camera, in the
    renderer's order (left, right)."""
    from vtb_gaze.gaze import head_relative_angles
    centres = renderer.eyeball_centres(rotation, t)
    return tuple(head_relative_angles(rotation.T @ (-centres[e] / np.linalg.norm(centres[e])))
                 for e in ("left", "right"))


def calibrate(run, renderer, k, t, frames=20):
    """The user's one "look at the camera" calibration at the start of a session."""
    head = rotation_from_ypr(0, 0, 0)
    gaze = look_at_camera(renderer, head, t)
    run.reset()
    run.gaze.start_calibration()
    for _ in range(frames):
        run.frame(renderer.render(head, t, k, SIZE, gaze=gaze))
    return run.gaze.offsets.copy()


def run_gaze_eval(heads=HEADS, gaze_yaws=GAZE_YAWS, gaze_pitches=GAZE_PITCHES, approach=4, calibrated=True,
                  echo=print) -> dict:
    from .render import HeadRenderer, default_intrinsics
    renderer = HeadRenderer()
    k = default_intrinsics(*SIZE)
    run = _Runner(k)
    t = np.array([0.0, 0.0, DISTANCE])

    def render(head, **expression):
        return renderer.render(rotation_from_ypr(*head), t, k, SIZE, **expression)

    offsets = calibrate(run, renderer, k, t) if calibrated else np.zeros((2, 2))
    echo(f"eval gaze: calibrated offsets (yaw, pitch) right {offsets[0].round(2)}, left {offsets[1].round(2)} deg")

    # gaze
    cam_err, head_err, failures, rows = [], [], 0, []
    for head, gy, gp in itertools.product(heads, gaze_yaws, gaze_pitches):
        run.reset()
        out = None
        for s in np.linspace(0, 1, approach + 1):
            out = run.frame(render(tuple(s * np.array(head)), gaze=(s * gy, s * gp)))
        if out is None or not out[1].valid:
            failures += 1
            continue
        state, g, pose = out
        truth_head = direction_from_angles(gy, gp)
        truth_cam = rotation_from_ypr(*head) @ truth_head
        e_cam, e_head = _angle(g.direction, truth_cam), _angle(direction_from_angles(g.yaw_deg, g.pitch_deg), truth_head)
        cam_err.append(e_cam)
        head_err.append(e_head)
        rows.append({"head": list(head), "gaze": [gy, gp], "error_camera_deg": e_cam, "error_head_deg": e_head,
                     "estimated_head_relative": [g.yaw_deg, g.pitch_deg]})
    echo(f"eval gaze: {len(rows)} gaze renders")

    # blinks and winks: 20 open frames to settle the calibration, then 3 frames of the state
    blink_cases, blink_ok = [], 0
    for head, (left, right) in itertools.product(heads, [(0, 0), (1, 1), (1, 0), (0, 1)]):
        run.reset()
        for _ in range(20):
            run.frame(render(head))
        out = None
        for _ in range(3):
            out = run.frame(render(head, eyelids=(left, right)))
        if out is None:
            blink_cases.append({"head": list(head), "eyelids": [left, right], "ok": False, "found": False})
            continue
        state = out[0]
        ok = state.eye_left_closed == bool(left) and state.eye_right_closed == bool(right)
        blink_ok += ok
        blink_cases.append({"head": list(head), "eyelids": [left, right], "ok": bool(ok),
                            "open": [state.eye_left_open, state.eye_right_open]})
    echo(f"eval gaze: {len(blink_cases)} eyelid cases")

    # mouth: lips meeting (jaw -1) is closed, jaw 0.5 and 1 are open; the photo's own mouth
    # (jaw 0, a smile with parted lips) is reported, not scored
    mouth_cases, mouth_ok, mouth_values = [], 0, {}
    for head, jaw in itertools.product(heads, (-1.0, 0.0, 0.5, 1.0)):
        run.reset()
        out = None
        for s in np.linspace(0, 1, approach + 1):
            out = run.frame(render(head, jaw=s * jaw))
        value = out[0].mouth_open if out else float("nan")
        mouth_values.setdefault(jaw, []).append(value)
        if jaw != 0.0:
            ok = out is not None and ((value > 0.5) == (jaw > 0))
            mouth_ok += ok
            mouth_cases.append({"head": list(head), "jaw": jaw, "mouth_open": value, "ok": bool(ok)})
    cam_err, head_err = np.array(cam_err), np.array(head_err)
    return {
        "gaze_n": len(rows) + failures, "gaze_failures": failures, "calibrated": calibrated,
        "calibration_offsets_deg": {"right": offsets[0].tolist(), "left": offsets[1].tolist()},
        "gaze_mae_deg": float(cam_err.mean()), "gaze_median_deg": float(np.median(cam_err)),
        "gaze_max_deg": float(cam_err.max()),
        "gaze_head_relative_mae_deg": float(head_err.mean()), "gaze_head_relative_max_deg": float(head_err.max()),
        "blink_accuracy": blink_ok / len(blink_cases), "blink_n": len(blink_cases),
        "mouth_open_accuracy": mouth_ok / len(mouth_cases), "mouth_n": len(mouth_cases),
        "mouth_open_by_jaw": {str(j): float(np.nanmean(v)) for j, v in mouth_values.items()},
        "setup": {"heads_ypr": [list(h) for h in heads], "gaze_yaw": list(gaze_yaws), "gaze_pitch": list(gaze_pitches),
                  "distance_m": DISTANCE, "image": list(SIZE), "focal_px": float(k[0, 0])},
        "gaze_rows": rows, "blink_cases": blink_cases, "mouth_cases": mouth_cases,
    }


def format_table(r: dict) -> str:
    s = r["setup"]
    return "\n".join([
        f"gaze on {r['gaze_n']} renders: head {s['heads_ypr']}, gaze yaw {s['gaze_yaw']}, pitch {s['gaze_pitch']} deg, "
        f"{s['distance_m']} m, {s['image'][0]}x{s['image'][1]}, f = {s['focal_px']:.0f} px",
        f"look-at-the-camera calibration: {'on' if r['calibrated'] else 'off'} "
        f"(offsets right {np.round(r['calibration_offsets_deg']['right'], 1)}, left "
        f"{np.round(r['calibration_offsets_deg']['left'], 1)} deg)",
        f"gaze error in the camera frame (head pose included): mean {r['gaze_mae_deg']:.2f} deg, "
        f"median {r['gaze_median_deg']:.2f}, max {r['gaze_max_deg']:.2f}; failures {r['gaze_failures']}",
        f"gaze error relative to the head (the eyes alone): mean {r['gaze_head_relative_mae_deg']:.2f} deg, "
        f"max {r['gaze_head_relative_max_deg']:.2f}",
        f"eyes closed / open (blinks and winks): {r['blink_accuracy'] * 100:.0f}% correct of {r['blink_n']} cases",
        f"mouth open / closed: {r['mouth_open_accuracy'] * 100:.0f}% correct of {r['mouth_n']} cases; mouth_open by jaw "
        + ", ".join(f"{j}: {v:.2f}" for j, v in r["mouth_open_by_jaw"].items()),
    ])
