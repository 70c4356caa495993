"""`vtb eval gaze`: gaze, blink and mouth-open accuracy on renders of known state.

The rendered head (vtb_eval.render) looks in a known direction (its iris moved on a 12 mm
eyeball, the eye model the estimator also assumes), closes its eyelids, opens its jaw. Each case
is tracked into over a few frames, then measured through the whole pipeline: detector,
landmarks, PnP, FaceState, gaze. Gaze error is the angle between the estimated and the true
combined gaze, in the camera frame (head-pose error included) and relative to the head (the eyes
alone). No rclpy here.

Two more measurements:
- Pose sweep (`pose_sweep`): a resting mouth (lips meeting, and the photo's own parted smile)
  with the head at yaw -30..30 and pitch -20..20: how far mouth_open and the eyes' openness
  move from their frontal values, "cold" (each pose tracked into from frontal, the calibration
  fresh) and "in session" (one tracked session: the user first looks around for about 20 s,
  talking now and then, as anyone does; then each pose is held at rest, then with the jaw
  open, which must still read open).
- Neutral (`neutral`): the bridge's AvatarMapper (config/avatar.yaml, mirror off) on the
  pipeline's head pose (after the pose node's One-Euro filter) and gaze (no "look at the
  camera" calibration): ParamEyeBallX/Y looking straight and ParamAngleX with the head held at
  +-25 degrees, before and after `calibrate_neutral()` at a frontal head looking straight.
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
SWEEP_YAWS = (-30, -20, -10, 0, 10, 20, 30)
SWEEP_PITCHES = (-20, -10, 10, 20)
REST_JAWS = (-1.0, 0.0)       # lips meeting; the photo's own mouth (a smile, lips parted)
NEUTRAL_YAW = 25


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
                  sweep_yaws=SWEEP_YAWS, sweep_pitches=SWEEP_PITCHES, rest_jaws=REST_JAWS, neutral=True,
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
    poses = sweep_poses(sweep_yaws, sweep_pitches)
    sweeps = [run_pose_sweep(run, render, jaw, poses, approach, echo=echo) for jaw in rest_jaws]
    neutral_result = run_neutral_eval(run, render, echo=echo) if neutral else None
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
                  "distance_m": DISTANCE, "image": list(SIZE), "focal_px": float(k[0, 0]),
                  "sweep_yaw": list(sweep_yaws), "sweep_pitch": list(sweep_pitches), "rest_jaws": list(rest_jaws)},
        "gaze_rows": rows, "blink_cases": blink_cases, "mouth_cases": mouth_cases,
        "pose_sweep": sweeps, "neutral": neutral_result,
    }


def sweep_poses(yaws=SWEEP_YAWS, pitches=SWEEP_PITCHES):
    return [(y, 0, 0) for y in yaws] + [(0, p, 0) for p in pitches if p != 0]


def look_around(yaw_max=36.0, pitches=(0, -20, 20, -10, 10), speed_deg_s=30.0, fps=30.0):
    """(yaw, pitch) per frame of a user looking around: at each pitch in turn, the head sweeps
    from the middle to -yaw_max, to +yaw_max and back, at `speed_deg_s`."""
    step = speed_deg_s / fps
    path, (y, p) = [], (0.0, 0.0)

    def go(y1, p1):
        nonlocal y, p
        n = max(int(math.ceil(max(abs(y1 - y), abs(p1 - p)) / step)), 1)
        for i in range(1, n + 1):
            path.append((y + (y1 - y) * i / n, p + (p1 - p) * i / n))
        y, p = y1, p1

    for pitch in pitches:
        go(0.0, pitch)
        go(-yaw_max, pitch)
        go(yaw_max, pitch)
        go(0.0, pitch)
    go(0.0, 0.0)
    return path


def talking(i: int, rest: float) -> float:
    """The jaw at frame i of someone who talks now and then: a quarter of the frames open."""
    return (0.4, 1.0, 0.7)[(i // 24) % 3] if (i // 6) % 4 == 3 else rest


def _openness(state):
    return state.mouth_open, state.eye_left_open, state.eye_right_open


def run_pose_sweep(run, render, rest_jaw, poses, approach=4, hold=15, echo=print) -> dict:
    """Mouth and eyes at rest over `poses`, cold and in one session (see the module docstring)."""
    cold = []
    for head in poses:
        run.reset()
        out = None
        for s in np.linspace(0, 1, approach + 1):
            out = run.frame(render(tuple(s * np.array(head)), jaw=rest_jaw))
        cold.append(_openness(out[0]) if out else (math.nan,) * 3)
    # the session: sit down, look around while talking now and then, then each pose in turn
    run.reset()
    for _ in range(20):
        run.frame(render((0, 0, 0), jaw=rest_jaw))
    for i, (y, p) in enumerate(look_around()):
        run.frame(render((y, p, 0), jaw=talking(i, rest_jaw)))
    session, opened, here = [], [], np.zeros(3)
    for head in poses:
        for s in np.linspace(0, 1, approach + 1)[1:]:
            run.frame(render(tuple(here + s * (np.array(head) - here)), jaw=rest_jaw))
        here = np.array(head, float)
        reads = [run.frame(render(head, jaw=rest_jaw)) for _ in range(hold)]
        reads = [r[0] for r in reads[-5:] if r is not None]
        session.append(tuple(np.mean([_openness(r) for r in reads], axis=0)) if reads else (math.nan,) * 3)
        jaw_reads = {}
        for jaw in (0.5, 1.0):
            out = None
            for s in np.linspace(0, 1, hold + 1)[1:]:
                out = run.frame(render(head, jaw=rest_jaw + min(2 * s, 1.0) * (jaw - rest_jaw)))
            jaw_reads[jaw] = out[0].mouth_open if out else math.nan
        for _ in range(3):
            run.frame(render(head, jaw=rest_jaw))
        opened.append(jaw_reads)
    front = poses.index((0, 0, 0))
    rows = [{"head": list(h), "cold": dict(zip(("mouth_open", "eye_left_open", "eye_right_open"), c)),
             "session": dict(zip(("mouth_open", "eye_left_open", "eye_right_open"), v)),
             "session_jaw_open": {str(j): v for j, v in o.items()}}
            for h, c, v, o in zip(poses, cold, session, opened)]

    def deviation(kind, key):
        f = rows[front][kind][key]
        return float(max(abs(r[kind][key] - f) for r in rows))

    opens = [v for o in opened for v in o.values()]
    result = {
        "rest_jaw": rest_jaw,
        "mouth_open_frontal": {"cold": rows[front]["cold"]["mouth_open"], "session": rows[front]["session"]["mouth_open"]},
        "mouth_open_max_deviation": {"cold": deviation("cold", "mouth_open"), "session": deviation("session", "mouth_open")},
        "eye_open_max_deviation": {k: max(deviation(k, "eye_left_open"), deviation(k, "eye_right_open"))
                                   for k in ("cold", "session")},
        "eye_open_min": {k: float(min(min(r[k]["eye_left_open"], r[k]["eye_right_open"]) for r in rows))
                         for k in ("cold", "session")},
        "session_jaw_open_accuracy": float(np.mean([v > 0.5 for v in opens])),
        # how far an open jaw reads above the resting mouth at the same pose (the least of all)
        "session_open_minus_rest_min": {str(j): float(min(o[j] - r["session"]["mouth_open"] for o, r in zip(opened, rows)))
                                        for j in (0.5, 1.0)},
        "rows": rows,
    }
    echo(f"eval gaze: pose sweep at rest (jaw {rest_jaw}) over {len(poses)} poses")
    return result


def _bridge_config() -> dict:
    """vtb_bridge's config/avatar.yaml: installed (ament index) or in the source tree."""
    from pathlib import Path

    import vtb_bridge
    from vtb_bridge.avatar_params import load_config
    try:
        from ament_index_python.packages import get_package_share_directory
        path = Path(get_package_share_directory("vtb_bridge")) / "config" / "avatar.yaml"
    except Exception:  # noqa: BLE001 - not installed: the source tree
        path = Path(vtb_bridge.__file__).resolve().parent.parent / "config" / "avatar.yaml"
    return load_config(path)


def run_neutral_eval(run, render, yaw=NEUTRAL_YAW, hold=45, ramp=10, echo=print) -> dict:
    """The bridge's mapping through the pipeline, before and after calibrate_neutral()."""
    from vtb_bridge.avatar_params import AvatarMapper, Inputs
    from vtb_pose.filters import PoseFilter
    from vtb_pose.frames import quaternion_wxyz, rotation_from_quaternion

    mapper = AvatarMapper(dict(_bridge_config(), mirror=False))
    pose_filter = PoseFilter()          # the pose node's defaults: HeadPose's yaw/pitch/roll
    saved = run.gaze.offsets.copy()
    run.gaze.offsets = np.zeros((2, 2))   # no "look at the camera" calibration
    run.reset()
    here = [0.0]

    def hold_at(head_yaw, n=hold):
        reads = []
        for s in list(np.linspace(0, 1, ramp + 1)[1:]) + [1.0] * n:
            y = here[0] + s * (head_yaw - here[0])
            out = run.frame(render((y, 0, 0), gaze=(0, 0)))
            if out is None:
                continue
            state, g, pose = out
            q, _ = pose_filter(quaternion_wxyz(pose.rotation), pose.translation, run.t)
            ypr = ypr_from_rotation(rotation_from_quaternion(q))
            f = mapper.update(Inputs("f", run.t, head=ypr, gaze=(g.yaw_deg, g.pitch_deg) if g.valid else None,
                                     state={"eye_left_open": state.eye_left_open,
                                            "eye_right_open": state.eye_right_open}))
            reads.append(f.params)
        here[0] = head_yaw
        last = reads[-10:]
        return {n: float(np.mean([r[n] for r in last])) for n in
                ("ParamAngleX", "ParamAngleY", "ParamEyeBallX", "ParamEyeBallY")}

    try:
        out = {}
        for phase in ("before", "after"):
            if phase == "after":
                hold_at(0)
                ok, message = mapper.calibrate_neutral()
                out["calibration"] = message
            out[phase] = {"straight": hold_at(0), f"yaw_{yaw}": hold_at(yaw), f"yaw_-{yaw}": hold_at(-yaw),
                          "straight_again": hold_at(0)}
    finally:
        run.gaze.offsets = saved
    for phase in ("before", "after"):
        o = out[phase]
        o["angle_x_ratio"] = {f"+{yaw}": o[f"yaw_{yaw}"]["ParamAngleX"] / yaw,
                              f"-{yaw}": o[f"yaw_-{yaw}"]["ParamAngleX"] / -yaw}
    echo("eval gaze: neutral calibration through the bridge's mapping")
    return out


def format_table(r: dict) -> str:
    s = r["setup"]
    lines = []
    for sweep in r.get("pose_sweep", []):
        d, f = sweep["mouth_open_max_deviation"], sweep["mouth_open_frontal"]
        lines.append(
            f"mouth at rest (jaw {sweep['rest_jaw']}) over yaw {s['sweep_yaw'][0]}..{s['sweep_yaw'][-1]}, pitch "
            f"{s['sweep_pitch'][0]}..{s['sweep_pitch'][-1]} deg: mouth_open frontal {f['session']:.2f}, farthest from it "
            f"{d['session']:.3f} in session (cold: frontal {f['cold']:.2f}, farthest {d['cold']:.3f}); eyes open at least "
            f"{sweep['eye_open_min']['session']:.2f} (cold {sweep['eye_open_min']['cold']:.2f}); jaw 0.5 / 1 read open "
            f"(> 0.5) at {sweep['session_jaw_open_accuracy'] * 100:.0f}% of the poses, above the resting mouth by at "
            f"least {sweep['session_open_minus_rest_min']['0.5']:.2f} / {sweep['session_open_minus_rest_min']['1.0']:.2f}")
    n = r.get("neutral")
    if n:
        for phase in ("before", "after"):
            o = n[phase]
            yaws = [k for k in o if k.startswith("yaw_")]
            lines.append(
                f"bridge {phase} calibrate_neutral: looking straight ParamEyeBallX {o['straight']['ParamEyeBallX']:+.3f} "
                f"(again {o['straight_again']['ParamEyeBallX']:+.3f}), ParamEyeBallY {o['straight']['ParamEyeBallY']:+.3f}; "
                + ", ".join(f"head at {k[4:]} deg: ParamAngleX {o[k]['ParamAngleX']:+.1f}, ParamEyeBallX "
                            f"{o[k]['ParamEyeBallX']:+.3f}" for k in yaws))
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
    ] + lines)
