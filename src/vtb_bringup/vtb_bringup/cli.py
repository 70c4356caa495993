"""The vtb command line. ./vtb sets up the environment, then runs this inside it.

    vtb models fetch|verify|path    the face models (fetched by setup when missing)
    vtb detect IMAGE [--json]       faces in a still image
    vtb bench perception|detector|graph   speed against MediaPipe; the detector's naive vs fast
                                    path; the graph's latency and memory over DDS
    vtb eval pose|gaze [--json PATH]  accuracy on renders of known pose, gaze, eyelids, jaw
    vtb run [--clip|--camera N|--video F|--images DIR]  the graph in one process
    vtb demo                        the graph on the rendered face: latency table, avatar page, video, CSV
    vtb test [PYTEST ARGS]          the test suite
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def repo_root() -> Path:
    return Path(os.environ.get("VTB_ROOT") or Path.cwd())


def cmd_models(args) -> int:
    from vtb_detector import models
    if args.action == "path":
        print(models.models_dir())
        return 0
    from vtb_eval import sample_images
    if args.action == "fetch":
        t0 = time.monotonic()
        models.fetch(force=args.force)
        sample_images.fetch_samples()
        print(f"models: ready in {time.monotonic() - t0:.1f} s")
        return 0
    problems = models.verify() + sample_images.verify_samples()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"models: all {2 * len(models.MODELS)} model files and {len(sample_images.SAMPLES)} sample image(s) "
              f"in {models.models_dir()} match their sha256")
    return 1 if problems else 0


def ensure_models() -> None:
    """Setup's last step: fetch the models the first time (a cheap presence check otherwise;
    the checksums are verified when a model is loaded)."""
    from vtb_detector import models
    from vtb_eval import sample_images
    echo = lambda m: print(f"[vtb setup] {m}", file=sys.stderr)  # noqa: E731
    if not models.is_fetched() or not sample_images.samples_fetched():
        echo(f"models: fetching into {models.models_dir()}")
        t0 = time.monotonic()
        models.fetch(echo=echo)
        sample_images.fetch_samples(echo=echo)
        echo(f"models: done in {time.monotonic() - t0:.1f} s")


def cmd_detect(args) -> int:
    import cv2
    from vtb_detector.pipeline import FacePipeline

    bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if bgr is None:
        print(f"vtb detect: cannot read image {args.image}", file=sys.stderr)
        return 2
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    pipeline = FacePipeline(detector=args.model, max_faces=args.max_faces, threads=args.threads)
    t0 = time.perf_counter()
    found = pipeline.process(rgb)
    ms = 1e3 * (time.perf_counter() - t0)
    faces = [{"id": f.id, "box": [round(float(v), 1) for v in f.box], "score": round(float(f.score), 4),
              "landmark_confidence": round(float(f.presence), 4), "landmarks": len(f.landmarks),
              "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in f.keypoints]}
             for f in found]
    if args.draw:
        from vtb_detector.debug_draw import draw_faces
        cv2.imwrite(str(args.draw), cv2.cvtColor(draw_faces(rgb, found), cv2.COLOR_RGB2BGR))
    if args.json:
        json.dump({"image": str(args.image), "width": rgb.shape[1], "height": rgb.shape[0], "model": args.model,
                   "ms": round(ms, 3), "stages_ms": {k: round(v, 3) for k, v in pipeline.timings.items()},
                   "faces": faces}, sys.stdout)
        print()
    else:
        print(f"{args.image}: {rgb.shape[1]}x{rgb.shape[0]}, {len(faces)} face(s), {args.model}-range detector, "
              f"{ms:.1f} ms (first run, models loaded)")
        for f in faces:
            x, y, w, h = f["box"]
            print(f"  face {f['id']}: box x={x} y={y} w={w} h={h} score={f['score']:.3f} "
                  f"landmarks={f['landmarks']} confidence={f['landmark_confidence']:.2f}")
        if args.draw:
            print(f"  drawn into {args.draw}")
    return 0


def report(result: dict, format_table, json_path) -> int:
    """Print a benchmark's or evaluation's table; also write its JSON when asked."""
    print(format_table(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written: {json_path}")
    return 0


def cmd_bench(args) -> int:
    if args.what == "perception":
        from vtb_eval.perception_bench import format_table, run_perception_bench
        from vtb_eval.render import render_clip
        clip = [rgb for rgb, *_ in render_clip(args.frames + 10)]
        result = run_perception_bench(frames=args.frames, threads=args.threads, backend=args.backend,
                                      with_mediapipe=not args.no_mediapipe, clip=clip,
                                      clip_name="rendered 3D head from the astronaut photo, turning and moving")
    elif args.what == "graph":
        from .graph_bench import format_table, run_graph_bench
        result = run_graph_bench(seconds=args.seconds, executor=args.executor,
                                 echo=lambda m: print(m, file=sys.stderr))
    else:
        from vtb_eval.detector_bench import format_table, run_detector_bench
        result = run_detector_bench()
    return report(result, format_table, args.json)


def cmd_eval(args) -> int:
    if args.what == "gaze":
        from vtb_eval.gaze_eval import format_table, run_gaze_eval
        return report(run_gaze_eval(echo=lambda m: print(m, file=sys.stderr)), format_table, args.json)
    from vtb_eval.pose_eval import DISTANCES, PITCHES, ROLLS, YAWS, format_table, run_pose_eval
    if args.quick:  # a coarse grid for a quick look
        grid = dict(yaws=YAWS[::2], pitches=PITCHES[::2], rolls=ROLLS[::2], distances=DISTANCES[:2], jitter_frames=40)
    else:
        grid = {}
    result = run_pose_eval(method=args.method, echo=lambda m: print(m, file=sys.stderr), **grid)
    return report(result, format_table, args.json)


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(frames=args.frames, rate=args.rate, model=args.model, socketio_url=args.socketio_url,
                    port=args.port, loop=args.loop, out_dir=args.out)


def graph_arguments(args) -> dict:
    """The graph arguments (vtb_bringup.graph.ARGUMENTS) from the command line's options."""
    from .graph import DEFAULTS
    return {name: str(getattr(args, name)).lower() if isinstance(getattr(args, name), bool) else getattr(args, name)
            for name in DEFAULTS}


def add_graph_options(p) -> None:
    """The launch file's arguments, as options: one list (graph.ARGUMENTS) for both."""
    from .graph import ARGUMENTS
    for name, default, description in ARGUMENTS:
        flag = "--" + name.replace("_", "-")
        if default in ("true", "false"):
            p.add_argument(flag, dest=name, action="store_true", default=default == "true", help=description)
        else:
            p.add_argument(flag, dest=name, default=default, metavar=name.upper(), help=description)


def make_source(args):
    from . import sources
    if args.clip:
        return sources.clip_source(frames=args.frames, rate=args.rate or 30.0)
    if args.camera is not None:
        return sources.camera_source(args.camera)
    if args.video:
        return sources.video_source(args.video, rate=args.rate)
    if args.images:
        return sources.folder_source(args.images, rate=args.rate or 10.0)
    return None


def cmd_run(args) -> int:
    from .graph import GraphError
    from .runner import run
    from .sources import SourceError
    try:
        source = make_source(args)
        return run(graph_arguments(args), source=source, loop=args.loop, executor=args.executor,
                   record=args.record, record_images=args.record_images, duration=args.duration,
                   stats_every=args.stats_every)
    except (GraphError, SourceError, FileExistsError) as e:
        print(f"vtb run: {e}", file=sys.stderr)
        return 2


def cmd_test(args) -> int:
    import pytest
    os.chdir(repo_root())
    return pytest.main(args.pytest_args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vtb", description="vtb: real-time face tracking as a ROS 2 graph")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="fetch, verify or locate the face models")
    p.add_argument("action", choices=["fetch", "verify", "path"])
    p.add_argument("--force", action="store_true", help="fetch and convert again even if present")
    p.set_defaults(func=cmd_models, needs_models=False)

    p = sub.add_parser("detect", help="faces in a still image")
    p.add_argument("image", type=Path)
    p.add_argument("--model", choices=["short", "full"], default="short")
    p.add_argument("--json", action="store_true", help='print {"faces": [...]} as JSON')
    p.add_argument("--max-faces", type=int, default=10, help="most faces to report (default 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--draw", type=Path, metavar="OUT.png", help="also write the image with the faces drawn")
    p.set_defaults(func=cmd_detect, needs_models=True)

    p = sub.add_parser("bench", help="benchmarks: perception (vs MediaPipe), detector (naive vs fast), "
                                      "graph (latency over DDS)")
    p.add_argument("what", choices=["perception", "detector", "graph"])
    p.add_argument("--frames", type=int, default=300, help="perception: frames of the clip (default 300)")
    p.add_argument("--threads", type=int, default=2, help="perception: vtb's CPU threads (default 2)")
    p.add_argument("--backend", default="auto", choices=["auto", "litert", "onnxruntime"])
    p.add_argument("--no-mediapipe", action="store_true", help="perception: skip the MediaPipe peer")
    p.add_argument("--seconds", type=float, default=20.0, help="graph: measured seconds per scenario (default 20)")
    p.add_argument("--executor", choices=["both", "single", "multi"], default="both",
                   help="graph: the runner's executor (default both: VGA on multi-threaded too, to compare)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=cmd_bench, needs_models=True)

    p = sub.add_parser("eval", help="accuracy on renders of known ground truth: pose, gaze")
    p.add_argument("what", choices=["pose", "gaze"])
    p.add_argument("--method", default="sqpnp", choices=["sqpnp", "iterative", "epnp"], help="PnP method reported")
    p.add_argument("--quick", action="store_true", help="a coarse grid (for a quick look)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=cmd_eval, needs_models=True)

    p = sub.add_parser("demo", help="the whole graph on a moving real face: live latency, avatar page, video, CSV")
    p.add_argument("--frames", type=int, default=150, help="frames to stream (default 150)")
    p.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--model", choices=["short", "full"], default="short")
    p.add_argument("--socketio-url", default="", help="also stream result_data to this Socket.IO server (/kizuna)")
    p.add_argument("--port", type=int, default=8000, help="port of the built-in avatar page (0: any free port)")
    p.add_argument("--loop", action="store_true", help="play the clip again and again until Ctrl-C")
    p.add_argument("--out", type=Path, default=Path("demo-output"),
                   help="folder for demo.mp4 (annotated) and avatar_parameters.csv (default demo-output)")
    p.set_defaults(func=cmd_demo, needs_models=True)

    p = sub.add_parser("run", help="the graph of config/vtb.yaml in one process, on a topic, webcam, video, folder or the clip")
    add_graph_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--clip", action="store_true", help="play the rendered clip of a real face")
    src.add_argument("--camera", metavar="DEVICE", help="a webcam through OpenCV: index (0) or path (/dev/video0)")
    src.add_argument("--video", type=Path, metavar="FILE", help="a video file, at its own frame rate")
    src.add_argument("--images", type=Path, metavar="DIR", help="every image in a folder, in name order")
    p.add_argument("--frames", type=int, default=150, help="--clip: frames to render (default 150)")
    p.add_argument("--rate", type=float, help="frames per second for --clip (30), --images (10), --video (its own)")
    p.add_argument("--loop", action="store_true", help="play the clip, video or folder again and again")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--executor", choices=["single", "multi"], default="single",
                   help="rclpy executor for the nodes (default single: see ./vtb bench graph)")
    p.add_argument("--record", metavar="BAG", help="record the graph's topics into this rosbag2 (mcap) folder")
    p.add_argument("--record-images", action="store_true", help="--record: the image topics too")
    p.add_argument("--stats-every", type=float, default=2.0, help="seconds between latency tables (0: only at the end)")
    p.set_defaults(func=cmd_run, needs_models=True)

    p = sub.add_parser("test", help="run the test suite (other arguments go to pytest)")
    p.set_defaults(func=cmd_test, needs_models=True)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        args.pytest_args = extra  # e.g. ./vtb test -k dds -x
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from vtb_detector.models import ModelError
    try:
        if args.needs_models:
            ensure_models()
        return args.func(args)
    except ModelError as e:
        print(f"vtb {args.command}: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
