"""`vtb eval blendshapes`: vtb's 52 ARKit blendshapes against MediaPipe's own Face Landmarker on
the same frames, and on renders of known state. No rclpy here.

Frames: a rendered clip (the 3D head turning, blinking, winking, opening its jaw), the real
clips and the labelled photos of the data folder (../shared/realdata by default). On each,
MediaPipe's Face Landmarker (mediapipe 0.10.21 in its own venv, given the .task re-made from
the bundle files vtb fetched, blendshapes on; image mode for photos, video mode for clips) and
vtb (its pipeline, then vtb_gaze.blendshapes on vtb's 478 points). Reported per blendshape:
Pearson correlation and mean absolute difference over the frames where both found the face,
and the same for vtb's blendshape stage fed MediaPipe's own landmarks (what the input
preparation alone changes: should be about 0), so the difference vtb's points make is seen.

Renders of known state (frontal head, 0.5 m): eyes open and closed, each wink, the jaw over
0..1, the mouth at rest over yaw -30..30. Cost: the blendshape stage's time per face.
"""
from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from . import datasets

KEY_SHAPES = ("eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")
GOALS = {"key_correlation": 0.9, "mean_abs_difference": 0.1, "blink_closed": 0.6, "blink_open": 0.3,
         "stage_ms": 1.0}
MAX_VIDEO_FRAMES = 300


def landmarker_task(folder: Path) -> Path:
    """Face Landmarker's .task again, zipped from the bundle files `./vtb models fetch` checked."""
    from vtb_detector.models import BUNDLE_FILES, bundle_path
    task = Path(folder) / "face_landmarker.task"
    with zipfile.ZipFile(task, "w", zipfile.ZIP_STORED) as z:
        for member in BUNDLE_FILES:
            z.write(bundle_path(member), member)
    return task


def expression_clip(n_frames: int = 120, size=(640, 480)):
    """(frames, truth): the rendered head turning a little while it blinks, winks and talks."""
    from .render import HeadRenderer, default_intrinsics, pose_from_ypr
    renderer = HeadRenderer()
    k = default_intrinsics(*size)
    frames, truth = [], []
    for i in range(n_frames):
        s = i / n_frames
        yaw, pitch = 15 * np.sin(2 * np.pi * s), 8 * np.sin(4 * np.pi * s)
        left = float(np.clip(2 * np.sin(2 * np.pi * 3 * s), 0, 1))         # blinks and winks
        right = float(np.clip(2 * np.sin(2 * np.pi * 3 * s + 1.5), 0, 1))
        jaw = float(np.clip(np.sin(2 * np.pi * 5 * s), 0, 1))
        rgb = renderer.render(pose_from_ypr(yaw, pitch, 0), np.array([0.0, 0.0, 0.55]), k, size,
                              eyelids=(left, right), jaw=jaw)
        frames.append(rgb)
        truth.append({"eyelid_left": left, "eyelid_right": right, "jaw": jaw})
    return np.stack(frames), truth


def run_blendshape_eval(data: Path | None = None, with_mediapipe: bool = True, echo=print,
                        max_video_frames: int = MAX_VIDEO_FRAMES, landmark_model: str | None = None) -> dict:
    """landmark_model: vtb's (default vtb_detector.landmarks.DEFAULT_LANDMARK_MODEL)."""
    from vtb_gaze.blendshapes import BlendshapeEstimator
    if landmark_model is None:
        from vtb_detector.landmarks import DEFAULT_LANDMARK_MODEL
        landmark_model = DEFAULT_LANDMARK_MODEL
    t0 = time.monotonic()
    estimator = BlendshapeEstimator()
    sets = []
    frames, _ = expression_clip()
    sets.append(("rendered clip", frames, False))
    if data is not None and Path(data).is_dir():
        for path in datasets.videos(data):
            sets.append((path.name, datasets.video_frames(path, max_video_frames)[0], False))
        photos = _photos(data)
        if photos:
            sets.append((f"{len(photos)} labelled photos", photos, True))
    out = {"data": str(data) if data else None, "landmark_model": landmark_model, "sets": [],
           "renders": _known_state(estimator, landmark_model, echo),
           "stage_ms": _stage_ms(estimator)}
    with tempfile.TemporaryDirectory(prefix="vtb-blendshapes-") as tmp:
        task = landmarker_task(Path(tmp)) if with_mediapipe else None
        for name, frames, still in sets:
            out["sets"].append(_compare(name, frames, still, estimator, task, landmark_model, echo))
    out["all"] = _pooled(out["sets"]) if with_mediapipe else None
    out["goals"] = _goals(out)
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def _photos(data: Path) -> list:
    """The labelled photos, less AFLW2000-3D's dev/ (991 crops: the head-pose evaluation's; the
    other photos cover the same faces' expressions at a fraction of the time)."""
    import cv2
    photos = []
    for s in datasets.real_data_samples(data):
        if s.set == datasets.AFLW_SETS["dev"]:
            continue
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is not None:
            photos.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return photos


def _vtb_landmarks(frames, still: bool, landmark_model: str) -> list:
    """vtb's 478 points of the first face per frame (None where none)."""
    from vtb_detector.pipeline import FacePipeline
    pipeline = FacePipeline(max_faces=1, threads=2, landmark_model=landmark_model)
    out = []
    for rgb in frames:
        faces = pipeline.process_still(rgb) if still else pipeline.process(rgb)
        out.append(faces[0].landmarks[:478] if faces and len(faces[0].landmarks) >= 478 else None)
    return out


def _compare(name, frames, still, estimator, task, landmark_model, echo) -> dict:
    from vtb_gaze.blendshapes import MODEL_OUTPUTS, NAMES
    echo(f"eval blendshapes: {name}: {len(frames)} frames")
    vtb_points = _vtb_landmarks(frames, still, landmark_model)
    vtb = np.full((len(frames), len(NAMES)), np.nan)
    for i, lm in enumerate(vtb_points):
        if lm is not None:
            values = estimator(lm)
            vtb[i] = values if values is not None else np.nan
    result = {"set": name, "frames": len(frames), "vtb_found": int(np.isfinite(vtb).all(1).sum())}
    if task is None:
        return result
    from .mediapipe_peer import run_mediapipe
    if still:   # photos of many sizes: one MediaPipe run per size
        mp_lm = np.full((len(frames), 478, 2), np.nan)
        mp_bs = np.full((len(frames), 52), np.nan)
        mp_names = []
        for shape in sorted({f.shape for f in frames}):
            rows = [i for i, f in enumerate(frames) if f.shape == shape]
            r = run_mediapipe(np.stack([frames[i] for i in rows]), static_image_mode=True, warmup=0, echo=echo, task=task)
            mp_lm[rows], mp_bs[rows] = r["landmarks"], r["blendshapes"][:, 0]
            mp_names = mp_names or r["blendshape_names"]
    else:
        r = run_mediapipe(np.ascontiguousarray(frames), static_image_mode=False, warmup=0, echo=echo, task=task)
        mp_lm, mp_bs, mp_names = r["landmarks"], r["blendshapes"][:, 0], r["blendshape_names"]
    mp_names = mp_names or list(MODEL_OUTPUTS)                 # no face found: no names came
    columns = [mp_names.index(n) for n in NAMES[:-1]]          # MediaPipe has no tongueOut
    mp = mp_bs[:, columns]
    # vtb's stage on MediaPipe's own points: what the input preparation changes
    same = np.full_like(mp, np.nan)
    for i, lm in enumerate(mp_lm):
        if np.isfinite(lm).all():
            values = estimator(lm)
            same[i] = values[:-1] if values is not None else np.nan
    result["mediapipe_found"] = int(np.isfinite(mp).all(1).sum())
    result["vtb_vs_mediapipe"] = _agreement(vtb[:, :-1], mp)
    result["same_points_vs_mediapipe"] = _agreement(same, mp)
    result["_pairs"] = (vtb[:, :-1], mp, same)   # pooled over the sets, then dropped
    return result


def _agreement(a: np.ndarray, b: np.ndarray) -> dict:
    from vtb_gaze.blendshapes import NAMES
    both = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    a, b = a[both], b[both]
    per = {}
    for j, name in enumerate(NAMES[:-1]):
        corr = None
        if len(a) > 2 and a[:, j].std() > 1e-6 and b[:, j].std() > 1e-6:
            corr = float(np.corrcoef(a[:, j], b[:, j])[0, 1])
        per[name] = {"corr": corr, "mad": float(np.abs(a[:, j] - b[:, j]).mean()) if len(a) else None}
    return {"frames": int(both.sum()), "mad_all": float(np.abs(a - b).mean()) if len(a) else None, "per_shape": per}


def _pooled(sets: list) -> dict:
    parts = [s.pop("_pairs") for s in sets if "_pairs" in s]
    vtb, mp, same = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return {"vtb_vs_mediapipe": _agreement(vtb, mp), "same_points_vs_mediapipe": _agreement(same, mp)}


def _known_state(estimator, landmark_model, echo) -> dict:
    """Blendshapes on renders of known eyelids, jaw and head turn (frontal, 0.5 m)."""
    from vtb_detector.pipeline import FacePipeline
    from .render import HeadRenderer, default_intrinsics, pose_from_ypr
    echo("eval blendshapes: renders of known state")
    size = (640, 480)
    k = default_intrinsics(*size)
    renderer, pipeline = HeadRenderer(), FacePipeline(max_faces=1, threads=2, landmark_model=landmark_model)

    def shapes(yaw=0.0, **expression):
        rgb = renderer.render(pose_from_ypr(yaw, 0, 0), np.array([0.0, 0.0, 0.5]), k, size, **expression)
        faces = pipeline.process_still(rgb)
        return estimator.named(faces[0].landmarks) if faces else None

    eyes = {}
    for label, lids in (("open", (0, 0)), ("closed", (1, 1)), ("wink_left", (1, 0)), ("wink_right", (0, 1))):
        s = shapes(eyelids=lids)
        eyes[label] = {"eyeBlinkLeft": s["eyeBlinkLeft"], "eyeBlinkRight": s["eyeBlinkRight"]} if s else None
    jaws = (0.0, 0.25, 0.5, 0.75, 1.0)
    jaw = [{"jaw": j, "jawOpen": (s or {}).get("jawOpen")} for j in jaws for s in [shapes(jaw=j)]]
    yaws = (-30, -20, -10, 0, 10, 20, 30)
    rest = [{"yaw": y, "jawOpen": (s or {}).get("jawOpen"), "mouthSmileLeft": (s or {}).get("mouthSmileLeft"),
             "mouthSmileRight": (s or {}).get("mouthSmileRight")} for y in yaws for s in [shapes(yaw=y)]]
    return {"eyes": eyes, "jaw": jaw, "rest_over_yaw": rest}


def _stage_ms(estimator, runs: int = 300) -> float:
    """Median time of the blendshape stage for one face (LiteRT, one thread)."""
    from .render import HeadRenderer, default_intrinsics, frontal_rotation, project
    lm = np.zeros((478, 2), np.float32)
    r = HeadRenderer()
    lm[:] = project(r.landmarks_3d, frontal_rotation(), np.array([0.0, 0.0, 0.5]), default_intrinsics(640, 480))[0]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        estimator(lm)
        times.append(time.perf_counter() - t0)
    return float(1e3 * np.median(times))


def _goals(r: dict) -> dict:
    g = {}
    eyes = r["renders"]["eyes"]
    if all(eyes.values()):
        closed = [eyes["closed"]["eyeBlinkLeft"], eyes["closed"]["eyeBlinkRight"], eyes["wink_left"]["eyeBlinkLeft"],
                  eyes["wink_right"]["eyeBlinkRight"]]
        opened = [eyes["open"]["eyeBlinkLeft"], eyes["open"]["eyeBlinkRight"], eyes["wink_left"]["eyeBlinkRight"],
                  eyes["wink_right"]["eyeBlinkLeft"]]
        g["blink_closed_min"] = {"value": min(closed), "goal": f">= {GOALS['blink_closed']}",
                                 "reached": min(closed) >= GOALS["blink_closed"]}
        g["blink_open_max"] = {"value": max(opened), "goal": f"<= {GOALS['blink_open']}",
                               "reached": max(opened) <= GOALS["blink_open"]}
    jaw = [j["jawOpen"] for j in r["renders"]["jaw"]]
    g["jaw_monotonic"] = {"value": jaw, "reached": None not in jaw and all(b > a for a, b in zip(jaw, jaw[1:]))}
    rest = [x["jawOpen"] for x in r["renders"]["rest_over_yaw"] if x["jawOpen"] is not None]
    if rest:
        g["jaw_at_rest_over_yaw_max"] = {"value": max(rest), "reached": max(rest) <= jaw[0] + 0.05 if jaw[0] is not None else None}
    g["stage_ms"] = {"value": r["stage_ms"], "goal": f"<= {GOALS['stage_ms']}", "reached": r["stage_ms"] <= GOALS["stage_ms"]}
    if r.get("all"):
        per = r["all"]["vtb_vs_mediapipe"]["per_shape"]
        worst = min((per[n]["corr"] if per[n]["corr"] is not None else -1.0) for n in KEY_SHAPES)
        g["key_correlation_min"] = {"value": worst, "goal": f">= {GOALS['key_correlation']}",
                                    "reached": worst >= GOALS["key_correlation"]}
        mad = r["all"]["vtb_vs_mediapipe"]["mad_all"]
        g["mean_abs_difference"] = {"value": mad, "goal": f"<= {GOALS['mean_abs_difference']}",
                                    "reached": mad is not None and mad <= GOALS["mean_abs_difference"]}
    return g


def _f(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(r: dict) -> str:
    lines = [f"vtb blendshapes (landmarks: {r['landmark_model']}) against MediaPipe's Face Landmarker (same frames)"]
    for s in r["sets"]:
        line = f"  {s['set']}: {s['frames']} frames, vtb found {s['vtb_found']}"
        if "vtb_vs_mediapipe" in s:
            a, b = s["vtb_vs_mediapipe"], s["same_points_vs_mediapipe"]
            line += (f", MediaPipe {s['mediapipe_found']}; mean |diff| over 51 shapes: vtb {_f(a['mad_all'], 3)}, "
                     f"vtb's stage on MediaPipe's points {_f(b['mad_all'], 3)}")
        lines.append(line)
    if r.get("all"):
        a, b = r["all"]["vtb_vs_mediapipe"], r["all"]["same_points_vs_mediapipe"]
        lines.append(f"  pooled over {a['frames']} frames   corr (vtb points / MediaPipe's points)   mean |diff|")
        for n in KEY_SHAPES:
            pa, pb = a["per_shape"][n], b["per_shape"][n]
            lines.append(f"    {n:<16} {_f(pa['corr']):>6} / {_f(pb['corr']):<6}    {_f(pa['mad'], 3)} / {_f(pb['mad'], 3)}")
    e = r["renders"]["eyes"]
    lines.append("renders of known state (eyeBlinkLeft, eyeBlinkRight): " + ", ".join(
        f"{k} {_f(v['eyeBlinkLeft'])}/{_f(v['eyeBlinkRight'])}" if v else f"{k} -" for k, v in e.items()))
    lines.append("  jawOpen over rendered jaw 0..1: " + " ".join(_f(j["jawOpen"]) for j in r["renders"]["jaw"]))
    lines.append("  jawOpen at rest over yaw -30..30: " + " ".join(_f(x["jawOpen"]) for x in r["renders"]["rest_over_yaw"]))
    lines.append(f"blendshape stage: {r['stage_ms']:.2f} ms a face (LiteRT, 1 thread)")
    lines.append("goals: " + ", ".join(f"{k} {'reached' if v['reached'] else 'NOT reached'}" for k, v in r["goals"].items()))
    return "\n".join(lines)
