"""`vtb eval pose`: head-pose accuracy and steadiness on renders of known pose.

Grid: a textured head made from a real photo (render.py) at every yaw, pitch, roll and distance
of the grid, through a pinhole camera (640x480, focal length 640 px). For each grid pose the
head turns from frontal to that pose over `approach` frames, as in video: the whole pipeline
(detector on the first frame, then landmark tracking, PnP) runs on every frame, and the last
is measured. Errors are estimated minus true yaw, pitch and roll in degrees.
All PnP methods are run on the same landmarks to choose one by measurement.

Jitter: a still head rendered once, 100 frames with sensor-like noise added (Gaussian, per
pixel and channel), tracked at 30 fps; the standard deviation of each angle over the frames,
with and without the One-Euro filter. No rclpy here.
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from vtb_pose.filters import PoseFilter
from vtb_pose.frames import angle_between, quaternion_wxyz, rotation_from_quaternion, rotation_from_ypr, ypr_from_rotation
from vtb_pose.pnp import METHODS, HeadPoseEstimator

YAWS = tuple(range(-45, 46, 15))
PITCHES = tuple(range(-30, 31, 15))
ROLLS = tuple(range(-30, 31, 15))
DISTANCES = (0.5, 0.8, 1.1)
SIZE = (640, 480)


def _wrap(deg):
    return (np.asarray(deg) + 180.0) % 360.0 - 180.0


def run_pose_eval(yaws=YAWS, pitches=PITCHES, rolls=ROLLS, distances=DISTANCES, jitter_frames=100,
                  noise_sigma=3.0, method="sqpnp", approach=5, echo=print) -> dict:
    from vtb_detector.pipeline import FacePipeline
    from .render import HeadRenderer, default_intrinsics

    renderer = HeadRenderer()
    k = default_intrinsics(*SIZE)
    pipeline = FacePipeline(threads=2)
    estimators = {m: HeadPoseEstimator(method=m) for m in METHODS}
    rows, failures = [], []
    pnp_ms = {m: [] for m in METHODS}
    grid = list(itertools.product(distances, yaws, pitches, rolls))
    t0 = time.monotonic()
    for i, (d, yaw, pitch, roll) in enumerate(grid):
        truth = rotation_from_ypr(yaw, pitch, roll)
        pipeline.reset()
        for s in np.linspace(0.0, 1.0, approach + 1):
            image = renderer.render(rotation_from_ypr(s * yaw, s * pitch, s * roll), np.array([0.0, 0.0, d]), k, SIZE)
            faces = pipeline.process(image)
        if len(faces) != 1:
            failures.append({"distance": d, "yaw": yaw, "pitch": pitch, "roll": roll, "faces": len(faces)})
            continue
        row = {"distance": d, "yaw": yaw, "pitch": pitch, "roll": roll}
        for m, est in estimators.items():
            s = time.perf_counter()
            e = est.estimate(faces[0].landmarks, k)
            pnp_ms[m].append(1e3 * (time.perf_counter() - s))
            if e is None:
                row[m] = None
                continue
            got = ypr_from_rotation(e.rotation)
            row[m] = {"error": [float(v) for v in _wrap(np.subtract(got, (yaw, pitch, roll)))],
                      "angle": angle_between(e.rotation, truth),
                      "distance_error_m": float(e.translation[2] - d), "reprojection_px": e.reprojection_error_px}
        rows.append(row)
        if (i + 1) % 100 == 0:
            echo(f"eval pose: {i + 1}/{len(grid)} renders ({time.monotonic() - t0:.0f} s)")

    methods = {}
    for m in METHODS:
        errs = np.array([r[m]["error"] for r in rows if r.get(m)])
        failed = sum(1 for r in rows if not r.get(m))
        methods[m] = {"mae_yaw": float(np.abs(errs[:, 0]).mean()), "mae_pitch": float(np.abs(errs[:, 1]).mean()),
                      "mae_roll": float(np.abs(errs[:, 2]).mean()), "mae_mean": float(np.abs(errs).mean()),
                      "max_err": float(np.abs(errs).max()), "pnp_failures": failed,
                      "ms_median": float(np.median(pnp_ms[m]))}
    chosen = methods[method]
    worst = max((r for r in rows if r.get(method)), key=lambda r: max(abs(v) for v in r[method]["error"]))
    result = {"n": len(grid), "failures": len(failures), "method": method, **{k2: chosen[k2] for k2 in
              ("mae_yaw", "mae_pitch", "mae_roll", "mae_mean", "max_err")},
              "worst_case": {k2: worst[k2] for k2 in ("distance", "yaw", "pitch", "roll")} | {"error": worst[method]["error"]},
              "distance_mae_m": float(np.mean([abs(r[method]["distance_error_m"]) for r in rows if r.get(method)])),
              "methods": methods, "failed_renders": failures,
              "grid": {"yaw": list(yaws), "pitch": list(pitches), "roll": list(rolls), "distance_m": list(distances),
                       "image": list(SIZE), "focal_px": float(k[0, 0]), "approach_frames": approach}}
    result.update(run_jitter(renderer, k, jitter_frames, noise_sigma, method))
    return result


def run_jitter(renderer, k, frames=100, noise_sigma=3.0, method="sqpnp", pose=(10.0, 5.0, 0.0), distance=0.6) -> dict:
    from vtb_detector.pipeline import FacePipeline
    truth = rotation_from_ypr(*pose)
    clean = renderer.render(truth, np.array([0.0, 0.0, distance]), k, SIZE).astype(np.float32)
    rng = np.random.default_rng(0)
    pipeline, est, pose_filter = FacePipeline(threads=2), HeadPoseEstimator(method=method), PoseFilter()
    raw, filtered, last = [], [], None
    for i in range(frames + 10):
        noisy = np.clip(clean + rng.normal(0, noise_sigma, clean.shape), 0, 255).astype(np.uint8)
        faces = pipeline.process(noisy)
        if not faces:
            continue
        last = est.estimate(faces[0].landmarks, k, guess=last)
        q, _ = pose_filter(quaternion_wxyz(last.rotation), last.translation, i / 30)
        if i >= 10:  # after the filter settled from its first sample
            raw.append(ypr_from_rotation(last.rotation))
            filtered.append(ypr_from_rotation(rotation_from_quaternion(q)))
    raw, filtered = np.array(raw), np.array(filtered)
    return {"jitter_deg": float(filtered.std(0).max()), "jitter_deg_unfiltered": float(raw.std(0).max()),
            "jitter_per_axis": {"filtered": [float(v) for v in filtered.std(0)],
                                "unfiltered": [float(v) for v in raw.std(0)]},
            "jitter_setup": {"frames": len(raw), "noise_sigma": noise_sigma, "pose_ypr": list(pose),
                             "distance_m": distance, "fps": 30}}


def format_table(r: dict) -> str:
    g = r["grid"]
    lines = [f"head pose on {r['n']} renders: yaw {g['yaw'][0]}..{g['yaw'][-1]}, pitch {g['pitch'][0]}..{g['pitch'][-1]}, "
             f"roll {g['roll'][0]}..{g['roll'][-1]} deg, distance {g['distance_m']} m; {g['image'][0]}x{g['image'][1]}, "
             f"f = {g['focal_px']:.0f} px",
             f"{'PnP method':<12}{'MAE yaw':>9}{'pitch':>8}{'roll':>8}{'mean':>8}{'max':>8}{'ms':>7}"]
    for m, v in r["methods"].items():
        mark = "  <- used" if m == r["method"] else ""
        lines.append(f"{m:<12}{v['mae_yaw']:>9.2f}{v['mae_pitch']:>8.2f}{v['mae_roll']:>8.2f}{v['mae_mean']:>8.2f}"
                     f"{v['max_err']:>8.2f}{v['ms_median']:>7.2f}{mark}")
    w = r["worst_case"]
    lines += [f"failures (no single face found): {r['failures']} of {r['n']}",
              f"worst case: yaw {w['yaw']} pitch {w['pitch']} roll {w['roll']} at {w['distance']} m, "
              f"error {', '.join(f'{e:+.1f}' for e in w['error'])} deg; distance MAE {r['distance_mae_m'] * 100:.1f} cm",
              f"jitter over {r['jitter_setup']['frames']} frames of a still head (noise sigma "
              f"{r['jitter_setup']['noise_sigma']}): {r['jitter_deg_unfiltered']:.3f} deg unfiltered, "
              f"{r['jitter_deg']:.3f} deg filtered (largest axis std)",
              f"goals: mean MAE <= 2 deg: {'reached' if r['mae_mean'] <= 2 else 'NOT reached'} ({r['mae_mean']:.2f}); "
              f"filtered jitter <= 0.1 deg: {'reached' if r['jitter_deg'] <= 0.1 else 'NOT reached'} ({r['jitter_deg']:.3f})"]
    return "\n".join(lines)
