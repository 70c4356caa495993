"""The demo: the whole graph of config/vtb.yaml on the rendered clip of a real face.

`./vtb run --clip` with more to see: the avatar page's URL, a live table of per-stage latency
and end-to-end fps, and at the end an annotated video, a CSV of the avatar parameters and how
the graph's answers compare with what was rendered (head pose, eyes closed or open).
Ends by itself, or loops with --loop until Ctrl-C.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .annotate import VideoOut, annotate, write_avatar_csv
from .monitor import GraphMonitor, stamp_ns
from .runner import GraphRunner, stop_signals
from .sources import clip_source


def run_demo(frames: int = 150, rate: float = 30.0, model: str = "short", socketio_url: str = "",
             port: int = 8000, loop: bool = False, out_dir: str | Path = "demo-output",
             stats_every: float = 2.0, log=print, vrm: str = "") -> int:
    out_dir = Path(out_dir)
    log(f"demo: rendering {frames} frames of the moving face ...")
    source = clip_source(frames=frames, rate=rate)
    runner = GraphRunner({"model": model, "socketio_url": socketio_url, "outputs": "server", "vrm": vrm},
                         overrides={"vtb_bridge": {"server_port": port}}, log=log)
    try:
        shown = {}                                  # image stamp -> (frame index, Frame), first pass
        count = [0]
        # the first pass's messages and avatar rows only: --loop runs for hours
        monitor = GraphMonitor(runner.namespace, keep_messages=lambda key: key in shown,
                               keep_avatar_rows=lambda: count[0] <= frames)
        runner.add_node(monitor)

        def on_frame(stamp, frame):
            if count[0] < frames:
                shown[stamp_ns(stamp)] = (count[0], frame)
            count[0] += 1
        runner.add_source(source, loop=loop, on_frame=on_frame)
        bridge = runner.node("vtb_bridge")
        page = next((o for o in bridge.outputs if hasattr(o, "url")), None)
        if page is not None:
            log(f"demo: avatar page at {page.url}  (open it in a browser)")
        log(f"demo: {source.name}, {frames} frames at {rate:g} fps on {runner.image_topic}"
            + (", looping until Ctrl-C" if loop else ""))
        detector = runner.node("vtb_detector")
        idle = monitor.table_every(
            stats_every, log, lambda: f", {detector.counts['dropped']} stale images dropped by the detector")
        stop = stop_signals()     # Ctrl-C / SIGTERM end the spin between callbacks
        try:
            code = runner.spin(idle=idle, stop=stop)
            if stop is not None and stop.requested:
                log("demo: stopped")
        except KeyboardInterrupt:
            code = 0
            log("demo: stopped")
        finally:
            if stop is not None:
                stop.restore()
        log(monitor.table())
        if code:
            return code
        return write_outputs(monitor, shown, out_dir, rate, log)
    finally:
        runner.shutdown()


def write_outputs(monitor: GraphMonitor, shown: dict, out_dir: Path, rate: float, log) -> int:
    """The annotated video, the avatar CSV and the comparison with the render."""
    answered = [(i, frame, monitor.messages.get(key, {})) for key, (i, frame) in sorted(shown.items())]
    if not any("faces" in m for _, _, m in answered):
        log("demo: no FaceArray arrived; nothing to write")
        return 1
    h, w = answered[0][1].rgb.shape[:2]
    video = VideoOut(out_dir / "demo.mp4", rate, (w, h))
    pose_errors, gaze_errors, eyes = [], [], []
    for i, frame, m in answered:
        video.write(annotate(frame.rgb, frame.camera_matrix, m.get("faces"), m.get("head_poses"), m.get("gaze"),
                             m.get("face_state"), caption=f"frame {i}"))
        for p in (m["head_poses"].poses if "head_poses" in m else []):
            if p.valid:
                pose_errors.append(np.subtract((p.yaw_deg, p.pitch_deg, p.roll_deg), frame.truth["ypr_deg"]))
        for g in (m["gaze"].gazes if "gaze" in m else []):
            if g.left_valid or g.right_valid:
                gaze_errors.append(np.subtract((g.combined_yaw_deg, g.combined_pitch_deg), frame.truth["gaze_deg"]))
        for s in (m["face_state"].states if "face_state" in m else []):
            eyes.append((bool(s.blink or (s.eye_left_closed and s.eye_right_closed)), frame.truth["eyes_closed"]))
    video.close()
    rows = write_avatar_csv(out_dir / "avatar_parameters.csv", monitor.avatar_rows)
    with_face = sum(1 for _, _, m in answered if "faces" in m and m["faces"].faces)
    log(f"demo: {len(answered)} frames sent, a face found in {with_face}")
    if pose_errors:
        mae = np.abs(np.array(pose_errors)).mean(0)
        log(f"demo: head pose on {len(pose_errors)} frames: mean absolute error yaw {mae[0]:.1f}, "
            f"pitch {mae[1]:.1f}, roll {mae[2]:.1f} deg against the rendered truth")
    if gaze_errors:
        e = np.array(gaze_errors)
        log(f"demo: gaze relative to the head on {len(e)} frames: mean error yaw {e[:, 0].mean():+.1f}, "
            f"pitch {e[:, 1].mean():+.1f} deg (mean absolute {np.abs(e[:, 0]).mean():.1f}, "
            f"{np.abs(e[:, 1]).mean():.1f}; not calibrated: ./vtb eval gaze calibrates first)")
    if eyes:
        agree = sum(got == want for got, want in eyes)
        log(f"demo: eyes closed/open agreed with the render on {agree} of {len(eyes)} frames")
    log(f"demo: wrote {video.path} ({video.frames} annotated frames) and {out_dir / 'avatar_parameters.csv'} "
        f"({rows} rows)")
    return 0 if with_face else 1
