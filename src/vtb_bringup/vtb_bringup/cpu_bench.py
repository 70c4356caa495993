"""`./vtb bench cpu`: the CPU a user's `./vtb run` costs per frame, beside MediaPipe's Face
Landmarker tracking the same video, measured in the same command.

vtb: `./vtb run --video V --loop --duration S --outputs server` as a user runs it, in its own
process; the CPU seconds it used while the graph ran (every thread: decode, image conversion,
DDS, the executor, the models, the bridge and its page server, the monitor), after its models
loaded (run's --stats-json), the avatar frames it sent, its latency image -> avatar (p50, p99)
and each stage's median time.

MediaPipe: 0.10.21's Face Landmarker task (its venv; video mode, blendshapes on) in a plain
loop that decodes the same video with OpenCV and tracks each frame, at the video's frame rate
(_mediapipe_video_worker.py); its CPU seconds over the loop, frames, and per-frame time.

Both run one after the other on the same machine, each for `seconds`; CPU ms per frame, % of a
core at the video's frame rate and the ratio vtb / MediaPipe. No rclpy here (the graph runs in
the child process).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 1.5
GOAL_P99_MS = 40.0


def default_video() -> Path:
    """The shared talking-head clip (720p, 25 fps) beside the checkout."""
    from .cli import default_real_data
    return default_real_data() / "video" / "3ddfa_obama.mp4"


def run_vtb(video: Path, seconds: float, echo=print) -> dict:
    from .soak import free_port, soak_config
    with tempfile.TemporaryDirectory(prefix="vtb-bench-cpu-") as tmp:
        stats = Path(tmp) / "stats.json"
        # the default graph, its page server on a free port (8000 may be taken)
        cmd = [sys.executable, "-m", "vtb_bringup.cli", "run", "--video", str(video), "--loop",
               "--duration", str(seconds), "--outputs", "server", "--stats-every", "0",
               "--config", str(soak_config(Path(tmp), free_port())), "--stats-json", str(stats)]
        echo("bench cpu: vtb: " + " ".join(cmd[2:]))
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 180)
        if r.returncode != 0 or not stats.is_file():
            raise RuntimeError(f"./vtb run failed (exit {r.returncode}): {r.stderr[-2000:]}")
        s = json.loads(stats.read_text())
    frames = s["avatar_frames"]
    avatar = s["topics"]["avatar_parameters"]
    return {"command": f"./vtb run --video {video} --loop --duration {seconds:g} --outputs server", "frames": frames, "images": s["images"],
            "cpu_s": s["cpu_s"], "wall_s": s["wall_s"], "process_s": round(time.monotonic() - t0, 1),
            "cpu_ms_per_frame": 1e3 * s["cpu_s"] / max(frames, 1), "frames_per_s": frames / s["wall_s"],
            "latency_ms": {"p50": avatar["from_image_ms_p50"], "p99": avatar["from_image_ms_p99"]},
            "stages": {t: {"node": v["node"], "stage_ms_p50": v["stage_ms_p50"], "stage_ms_p99": v.get("stage_ms_p99")}
                       for t, v in s["topics"].items()},
            "nodes": s.get("nodes", {})}


def run_mediapipe(video: Path, seconds: float, echo=print) -> dict:
    from vtb_eval import mediapipe_peer
    from vtb_eval.blendshape_eval import landmarker_task
    worker = Path(mediapipe_peer.WORKER).with_name("_mediapipe_video_worker.py")
    python = mediapipe_peer.ensure_venv(echo=echo)
    with tempfile.TemporaryDirectory(prefix="vtb-bench-cpu-mp-") as tmp:
        task, result = landmarker_task(Path(tmp)), Path(tmp) / "result.json"
        echo(f"bench cpu: MediaPipe Face Landmarker on {video.name} ({seconds:g} s)")
        r = subprocess.run([str(python), "-I", str(worker), str(video), str(result), "--task", str(task),
                            "--seconds", str(seconds)], capture_output=True, text=True, timeout=seconds + 180,
                           env=mediapipe_peer.clean_environment())
        if r.returncode != 0 or not result.is_file():
            raise RuntimeError(f"the MediaPipe worker failed (exit {r.returncode}): {r.stderr[-2000:]}")
        m = json.loads(result.read_text())
    return {"version": m["version"], "frames": m["frames"], "cpu_s": m["cpu_s"], "wall_s": m["wall_s"],
            "fps": m["fps"], "size": m["size"], "faces_found": m["faces_found"],
            "cpu_ms_per_frame": 1e3 * m["cpu_s"] / max(m["frames"], 1), "frames_per_s": m["frames"] / m["wall_s"],
            "latency_ms": {"p50": m["p50_ms"], "p99": m["p99_ms"]}}


def run_cpu_bench(video: Path | None = None, seconds: float = 30.0, with_mediapipe: bool = True,
                  busy_core: bool = False, echo=print) -> dict:
    """busy_core: a busy loop takes one core while both run (a game, OBS, a robot's other work)."""
    video = Path(video or default_video())
    if not video.is_file():
        raise FileNotFoundError(f"no video at {video} (--video FILE)")
    load0 = os.getloadavg()[0]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy_core else None
    try:
        vtb = run_vtb(video, seconds, echo)
        mp = run_mediapipe(video, seconds, echo) if with_mediapipe else None
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    fps = mp["fps"] if mp else None
    if fps is None:
        import cv2
        cap = cv2.VideoCapture(str(video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
    out = {"video": str(video), "seconds": seconds, "fps": fps, "busy_core": busy_core, "vtb": vtb, "mediapipe": mp,
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}}
    for who in ("vtb", "mediapipe"):
        if out[who]:
            out[who]["core_percent"] = out[who]["cpu_ms_per_frame"] * fps / 10.0
    if mp:
        out["ratio"] = vtb["cpu_ms_per_frame"] / mp["cpu_ms_per_frame"]
    out["goals"] = {
        f"vtb CPU <= {GOAL_RATIO}x MediaPipe's": None if not mp else {"reached": out["ratio"] <= GOAL_RATIO,
                                                                     "value": round(out["ratio"], 2)},
        "vtb holds the video's frame rate": {"reached": vtb["frames_per_s"] >= 0.97 * fps,
                                             "value": round(vtb["frames_per_s"], 1)},
        f"latency image -> avatar p99 <= {GOAL_P99_MS:g} ms": {
            "reached": vtb["latency_ms"]["p99"] is not None and vtb["latency_ms"]["p99"] <= GOAL_P99_MS,
            "value": None if vtb["latency_ms"]["p99"] is None else round(vtb["latency_ms"]["p99"], 1)},
    }
    return out


def format_table(r: dict) -> str:
    v, m = r["vtb"], r["mediapipe"]
    lines = [f"CPU per frame on {Path(r['video']).name} at {r['fps']:g} fps, {r['seconds']:g} s each "
             f"({r['machine']['cpus']} CPUs{', one taken by a busy loop' if r['busy_core'] else ''}; "
             f"load {r['machine']['load_before']} -> {r['machine']['load_after']})",
             f"{'':34}{'CPU ms/frame':>13}{'% of a core':>12}{'frames/s':>10}{'p50 ms':>8}{'p99 ms':>8}"]

    def row(name, x, note=""):
        lat = x["latency_ms"]
        f = lambda val: "-" if val is None else f"{val:.1f}"   # noqa: E731
        lines.append(f"{name:34}{x['cpu_ms_per_frame']:>13.1f}{x['core_percent']:>12.1f}{x['frames_per_s']:>10.1f}"
                     f"{f(lat['p50']):>8}{f(lat['p99']):>8}{note}")
    row("vtb (./vtb run, outputs server)", v, "   latency: image -> avatar")
    if m:
        row(f"MediaPipe {m['version']} Face Landmarker", m, "   latency: decode + track")
        lines.append(f"ratio vtb / MediaPipe: {r['ratio']:.2f} (CPU ms per frame)")
    lines.append("vtb's stages (ms from the previous topic, median / p99): " + ", ".join(
        f"{t} ({s['node']}) {s['stage_ms_p50']:.1f} / "
        f"{'-' if s.get('stage_ms_p99') is None else round(s['stage_ms_p99'], 1)}" for t, s in v["stages"].items()
        if s["stage_ms_p50"] is not None))
    det, bridge = v.get("nodes", {}).get("vtb_detector"), v.get("nodes", {}).get("vtb_bridge")
    if det and bridge:
        late = bridge["late_parts_carried"] + bridge["late_parts_dropped"]
        lines.append(f"vtb's inputs: detector processed {det['processed']} of {det['received']} images "
                     f"({det['dropped']} dropped: a newer one came while it was busy); bridge: "
                     f"{bridge['images']} images, {late} parts late for their own image, "
                     f"{bridge['late_parts_carried']} of them carried by the next one, "
                     f"{bridge['late_parts_dropped']} dropped (a newer one of their kind came), images without a "
                     f"face state {bridge['images_without']['face_state']}, without gaze "
                     f"{bridge['images_without']['gaze']}")
        src = v.get("nodes", {}).get("vtb_source")
        if src and src.get("late_ms_p50") is not None:
            lines.append(f"vtb's source: {src['published']} frames decoded and sent (thread at nice {src['nice']}), "
                         f"late against the video's schedule p50 {src['late_ms_p50']:.1f} / p99 "
                         f"{src['late_ms_p99']:.1f} ms (not in the latency above: a frame is stamped when it goes out)")
        ms = det.get("ms_per_image") or {}
        if ms:
            lines.append("detector per image (mean ms): " + ", ".join(
                f"{k} {v:.1f}" for k, v in ms.items()) + " (detect: the detector model, on the frames it runs; "
                "total: the pipeline, image conversion apart)")
    lines.append("goals: " + "; ".join(f"{k}: {'-' if g is None else ('reached' if g['reached'] else 'NOT reached')}"
                                       f"{'' if g is None else ' (' + str(g['value']) + ')'}"
                                       for k, g in r["goals"].items()))
    return "\n".join(lines)
