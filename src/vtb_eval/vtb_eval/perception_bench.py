"""`vtb bench perception`: vtb's per-frame perception against MediaPipe's FaceMesh on the same
frames, in the same run.

vtb: FacePipeline (detect or track, 468-point mesh, iris) timed per frame and per stage, then
the blendshape stage (vtb_gaze.blendshapes, the gaze node's) on the frame's faces, reported
beside the rest and in a second ratio ("with blendshapes").
MediaPipe: FaceMesh(refine_landmarks=True, static_image_mode=False) in its own venv (it needs
numpy < 2), timed around each process() call by mediapipe_peer. Both see the same clip; the
first `warmup` frames of each are run before timing. No rclpy here.
"""
from __future__ import annotations

import os
import platform

import numpy as np

from vtb_detector.pipeline import FacePipeline

from .clip import astronaut_clip

STAGES = ("detect", "crop", "landmarks", "iris", "total")


def _stats(values):
    v = np.asarray(values, np.float64)
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "mean": float(v.mean())}


def run_perception_bench(frames: int = 300, threads: int = 2, backend: str = "auto", warmup: int = 10,
                         with_mediapipe: bool = True, clip=None, clip_name: str | None = None, echo=print) -> dict:
    """`clip`: RGB frames (at least frames + warmup); default: the astronaut photo moved in 2D.
    The CLI passes the rendered 3D head (vtb_eval.render)."""
    if clip is None:
        clip = [f for f, _ in astronaut_clip(frames + warmup)]
        clip_name = "astronaut moved by translation, scale, rotation"
    clip = list(clip)[:frames + warmup]
    from time import perf_counter

    from vtb_gaze.blendshapes import BlendshapeEstimator
    pipeline = FacePipeline(threads=threads, backend=backend)
    shapes = BlendshapeEstimator()
    for f in clip[:warmup]:
        for face in pipeline.process(f):
            shapes(face.landmarks)
    per_stage = {s: [] for s in STAGES + ("blendshapes", "total_with_blendshapes")}
    landmarks, ids, missed = [], set(), 0
    for f in clip[warmup:]:
        faces = pipeline.process(f)
        for s in STAGES:
            per_stage[s].append(pipeline.timings[s])
        t0 = perf_counter()
        for face in faces:
            shapes(face.landmarks)
        per_stage["blendshapes"].append(1e3 * (perf_counter() - t0))
        per_stage["total_with_blendshapes"].append(per_stage["total"][-1] + per_stage["blendshapes"][-1])
        missed += not faces
        ids |= {face.id for face in faces}
        landmarks.append(faces[0].landmarks[:, :2] if faces else np.full((478, 2), np.nan, np.float32))
    stages = {s: _stats(v) for s, v in per_stage.items()}
    result = {
        "frames": frames, "frame_size": list(clip[0].shape[1::-1]), "clip": clip_name,
        "vtb": {"threads": threads, "backend": pipeline.mesh.runner.backend,
                # the Face Landmarker's model gives the irises itself: no iris model then
                "models": {r.name: r.where for r in (pipeline.detector.runner, pipeline.mesh.runner,
                                                     pipeline.iris.runner if pipeline.iris else None) if r},
                "frames_without_face": missed, "face_ids": sorted(ids),
                "detections": int(sum(1 for v in per_stage["detect"] if v > 0))},
        "stages": stages, "vtb_ms": stages["total"]["median"],
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
    }
    if with_mediapipe:
        from .mediapipe_peer import run_mediapipe
        echo("bench: running MediaPipe FaceMesh on the same frames (its own venv; created on first use)")
        mp = run_mediapipe(np.stack(clip), refine_landmarks=True, static_image_mode=False, warmup=warmup)
        mp_times = mp["times_ms"][warmup:]
        mp_lm = mp["landmarks"][warmup:]
        ours = np.stack(landmarks)
        both = ~(np.isnan(ours).any(axis=(1, 2)) | np.isnan(mp_lm).any(axis=(1, 2)))
        # MediaPipe's pixel coordinates put the image's edge at 0, as vtb's do
        dist = np.linalg.norm(ours[both] - mp_lm[both], axis=2)
        result["mediapipe"] = {"version": mp["version"], "options": "refine_landmarks=True, video mode",
                               **_stats(mp_times),
                               "frames_without_face": int(np.isnan(mp_lm).any(axis=(1, 2)).sum())}
        result["mediapipe_ms"] = result["mediapipe"]["median"]
        result["ratio"] = result["vtb_ms"] / result["mediapipe_ms"]
        result["ratio_p90"] = stages["total"]["p90"] / result["mediapipe"]["p90"]
        result["ratio_with_blendshapes"] = stages["total_with_blendshapes"]["median"] / result["mediapipe_ms"]
        result["landmark_agreement_px"] = {"mean": float(dist.mean()), "iris_mean": float(dist[:, 468:].mean()),
                                           "frames_compared": int(both.sum())}
    return result


def format_table(r: dict) -> str:
    lines = [f"perception on {r['frames']} frames of {r['frame_size'][0]}x{r['frame_size'][1]} "
             f"({r.get('clip')}); ms per frame",
             f"vtb: {r['vtb']['threads']} threads, models on {r['vtb']['backend']}; "
             f"{r['vtb']['detections']} detector runs, {len(r['vtb']['face_ids'])} face id(s), "
             f"{r['vtb']['frames_without_face']} frames without a face",
             f"{'stage':<20}{'median':>9}{'p90':>9}"]
    labels = {"total_with_blendshapes": "total+blendshapes"}
    for s, v in r["stages"].items():
        lines.append(f"{'vtb ' + labels.get(s, s):<20}{v['median']:>9.3f}{v['p90']:>9.3f}")
    if "mediapipe" in r:
        m = r["mediapipe"]
        lines.append(f"{'mediapipe':<20}{m['median']:>9.3f}{m['p90']:>9.3f}   (FaceMesh {m['version']}, {m['options']})")
        lines.append(f"ratio vtb / mediapipe: {r['ratio']:.2f} (median), {r['ratio_p90']:.2f} (p90); goal <= 1.0: "
                     f"{'reached' if r['ratio'] <= 1.0 else 'NOT reached'}")
        if "ratio_with_blendshapes" in r:
            lines.append(f"ratio with vtb's blendshape stage: {r['ratio_with_blendshapes']:.2f} (median; MediaPipe's "
                         "FaceMesh computes none)")
        a = r["landmark_agreement_px"]
        lines.append(f"landmarks vtb vs mediapipe: mean {a['mean']:.2f} px, iris {a['iris_mean']:.2f} px "
                     f"over {a['frames_compared']} frames")
    return "\n".join(lines)
