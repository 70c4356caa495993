"""The vtb command line. ./vtb sets up the environment, then runs this inside it.

    vtb models fetch|verify|path    the face models (fetched by setup when missing)
    vtb detect IMAGE... [--json]    faces, head poses and ARKit blendshapes in still images
    vtb bench perception|detector|graph|soak|cpu   speed against MediaPipe; the detector's naive vs
                                    fast path; the graph's latency and memory over DDS; a soak;
                                    CPU per frame of ./vtb run beside MediaPipe's Face Landmarker
    vtb eval pose|gaze [--json PATH]  accuracy on renders of known pose, gaze, eyelids, jaw
    vtb eval real|blendshapes|expressions  on real faces beside MediaPipe (FaceMesh; Face Landmarker)
    vtb run [--clip|--camera N|--video F|--images DIR|--bag BAG]  the graph in one process
    vtb demo                        the graph on the rendered face: latency table, avatar page, video, CSV
    vtb calibrate [--reset]         the running graph's avatar: the current head and gaze become neutral
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
        print(f"models: all {2 * len(models.MODELS) + len(models.BUNDLE_FILES) + 1} model files and {len(sample_images.SAMPLES)} sample image(s) "
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


def detect_camera_matrix(width: int, height: int, focal_px: float | None = None):
    """The camera matrix `vtb detect` assumes: vtb_pose.pnp.default_intrinsics (focal length =
    image width, principal point = image centre); --focal sets fx = fy, the centre stays."""
    from vtb_pose.pnp import default_intrinsics
    k = default_intrinsics(width, height)
    if focal_px is not None:
        k[0, 0] = k[1, 1] = float(focal_px)
    return k


def pose_json(estimate) -> dict | None:
    """A PoseEstimate as JSON, as the pose node publishes it (measured pose, no filter): the
    face_<id> frame (REP-155) in the camera's optical frame, yaw/pitch/roll as vtb_msgs/HeadPose."""
    if estimate is None:
        return None
    from vtb_pose.frames import quaternion_wxyz, ypr_from_rotation
    w, x, y, z = (float(v) for v in quaternion_wxyz(estimate.rotation))
    yaw, pitch, roll = ypr_from_rotation(estimate.rotation)
    return {"position_m": [round(float(v), 5) for v in estimate.translation],
            "orientation_xyzw": [round(v, 6) for v in (x, y, z, w)],
            "yaw_deg": round(yaw, 2), "pitch_deg": round(pitch, 2), "roll_deg": round(roll, 2),
            "reprojection_error_px": round(float(estimate.reprojection_error_px), 3)}


def detect_still(pipeline, estimator, rgb, camera_matrix, passes: int = 2,
                 blendshapes=None, landmarks: bool = False, mirror: bool = True) -> tuple[list, list[dict], float, dict]:
    """One image as a still (FacePipeline.process_still: tracking reset, `passes` landmark
    passes), then each face's head pose and (with a vtb_gaze BlendshapeEstimator) its 52 ARKit
    blendshapes, {name: value}, null without 478 landmarks. Returns (FaceResults, faces as JSON,
    ms, ms per stage summed over the passes; "blendshapes" among them). With `landmarks` each face
    also has "landmarks_px": its points as [x, y, z], x and y in pixels (0 = the image's left/top
    edge, pixel i's centre at i + 0.5), z the model's relative depth in the scale of x, 2 decimals."""
    import numpy as np
    t0 = time.perf_counter()
    found = pipeline.process_still(rgb, passes, mirror=mirror)
    stages = dict(pipeline.timings)
    shapes = []
    if blendshapes is not None:
        t1 = time.perf_counter()
        shapes = [blendshapes.named(f.landmarks) for f in found]
        stages["blendshapes"] = 1e3 * (time.perf_counter() - t1)
    ms = 1e3 * (time.perf_counter() - t0)
    faces = []
    for i, f in enumerate(found):
        # as the pose node gets them: x, y pixels and the mesh's relative depth (landmarks_z)
        estimate = estimator.estimate(np.asarray(f.landmarks, np.float32), camera_matrix)
        faces.append({"id": f.id, "box": [round(float(v), 1) for v in f.box], "score": round(float(f.score), 4),
                      "landmark_confidence": round(float(f.presence), 4), "landmarks": len(f.landmarks),
                      # the landmarks against those of the mirrored crop, in face sizes (null unmirrored)
                      "mirror_disagreement": None if f.mirror_disagreement is None else round(f.mirror_disagreement, 4),
                      "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in f.keypoints],
                      "pose": pose_json(estimate)})
        if blendshapes is not None:
            faces[-1]["blendshapes"] = {k: round(v, 4) for k, v in shapes[i].items()} if shapes[i] else None
        if landmarks:
            faces[-1]["landmarks_px"] = [[round(float(v), 2) for v in p[:3]] for p in f.landmarks]
    return found, faces, ms, stages


def format_pose(pose: dict | None) -> str:
    if pose is None:
        return "pose: none (the pose solve failed)"
    x, y, z = pose["position_m"]
    return (f"pose: yaw={pose['yaw_deg']:+.1f} pitch={pose['pitch_deg']:+.1f} roll={pose['roll_deg']:+.1f} deg, "
            f"distance {(x * x + y * y + z * z) ** 0.5:.3f} m (x={x:+.3f} y={y:+.3f} z={z:.3f}), "
            f"reprojection {pose['reprojection_error_px']:.2f} px")


def cmd_detect(args) -> int:
    """Faces in still images, each with its head pose: the face_<id> frame (REP-155: x forward
    out of the face, y to the subject's left, z up) in the camera's optical frame (REP-103),
    from the pose node's estimator, with focal length = image width (or --focal) and principal
    point = image centre. One image: {"image": ..., "faces": [...]}; several: {"images": [...]}.
    An unreadable image is reported on stderr, the others still run, and the exit code is 2."""
    import cv2
    from vtb_detector.pipeline import FacePipeline
    from vtb_pose.pnp import HeadPoseEstimator

    if args.backend == "litert" and args.provider != "cpu":
        print(f"vtb detect: --backend litert runs on the CPU only; --provider {args.provider} needs "
              f"--backend onnxruntime (or auto)", file=sys.stderr)
        return 2
    from vtb_detector.image_msg import ImageError, check_pixels, compressed_size
    pipeline = estimator = shapes = None
    results, failed = [], False
    for n, path in enumerate(args.image):
        try:   # the size from the header before decoding, as the detector node does (max_pixels)
            check_pixels(*compressed_size(Path(path).read_bytes()), args.max_pixels)
        except (ImageError, OSError) as e:
            reason = f"cannot read image ({e.strerror})" if isinstance(e, OSError) else str(e)
            print(f"vtb detect: {path}: {reason}", file=sys.stderr)
            results.append({"path": str(path), "error": reason})
            failed = True
            continue
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"vtb detect: cannot read image {path}", file=sys.stderr)
            results.append({"path": str(path), "error": "cannot read image"})
            failed = True
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if pipeline is None:
            options = None
            if args.model == "retinaface":
                options = {"scale": args.detector_scale,
                           "drop_levels": [int(v) for v in args.drop_levels.split(",") if v.strip()]}
            pipeline = FacePipeline(detector=args.model, max_faces=args.max_faces, threads=args.threads,
                                    landmark_model=args.landmark_model, detector_options=options,
                                    backend=args.backend, provider=args.provider)
            estimator = HeadPoseEstimator()  # as the pose node with its default parameters
            from vtb_gaze.blendshapes import BlendshapeEstimator
            shapes = BlendshapeEstimator()
        first_run = all("error" in r for r in results)
        height, width = rgb.shape[:2]
        found, faces, ms, stages = detect_still(pipeline, estimator, rgb,
                                                detect_camera_matrix(width, height, args.focal), args.passes,
                                                blendshapes=shapes, landmarks=args.landmarks,
                                                mirror=not args.no_mirror)
        result = {"path": str(path), "width": width, "height": height, "ms": round(ms, 3),
                  "stages_ms": {k: round(v, 3) for k, v in stages.items()}, "faces": faces}
        results.append(result)
        draw = None
        if args.draw:
            from vtb_detector.debug_draw import draw_faces
            draw = args.draw if len(args.image) == 1 else args.draw.with_name(f"{args.draw.stem}-{n}{args.draw.suffix}")
            cv2.imwrite(str(draw), cv2.cvtColor(draw_faces(rgb, found), cv2.COLOR_RGB2BGR))
        if not args.json:
            print(f"{path}: {width}x{height}, {len(faces)} face(s), "
                  f"{args.model + '-range' if args.model in ('short', 'full') else args.model} detector, {ms:.1f} ms"
                  + (" (first run, models loaded)" if first_run else ""))
            for f in faces:
                x, y, w, h = f["box"]
                print(f"  face {f['id']}: box x={x} y={y} w={w} h={h} score={f['score']:.3f} "
                      f"landmarks={f['landmarks']} confidence={f['landmark_confidence']:.2f}")
                print(f"    {format_pose(f['pose'])}")
                if f.get("blendshapes"):
                    top = sorted(f["blendshapes"].items(), key=lambda kv: -kv[1])[:5]
                    print("    blendshapes: " + ", ".join(f"{k} {v:.2f}" for k, v in top) + " (the 5 largest of 52)")
            if draw:
                print(f"  drawn into {draw}")
    if args.json:
        if len(args.image) == 1:
            if failed:
                return 2
            r = results[0]
            json.dump({"image": r["path"], "width": r["width"], "height": r["height"], "model": args.model,
                       "landmarks_on": pipeline.mesh.runner.where,
                       "ms": r["ms"], "stages_ms": r["stages_ms"], "faces": r["faces"]}, sys.stdout)
        else:
            json.dump({"model": args.model, "landmarks_on": pipeline.mesh.runner.where if pipeline else None,
                       "images": results}, sys.stdout)
        print()
    return 2 if failed else 0


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
    elif args.what == "cpu":
        from .cpu_bench import format_table, run_cpu_bench
        result = run_cpu_bench(video=args.video, seconds=args.seconds or 30.0, with_mediapipe=not args.no_mediapipe,
                               busy_core=args.busy_core, echo=lambda m: print(m, file=sys.stderr))
    elif args.what == "soak":
        from .soak import format_table, run_soak
        result = run_soak(minutes=args.minutes, sample_every=args.sample_every, in_process=args.in_process,
                          processes=args.processes,
                          echo=lambda m: print(m, file=sys.stderr))
    elif args.what == "graph":
        from .graph_bench import format_table, run_graph_bench
        result = run_graph_bench(seconds=args.seconds or 20.0, executor=args.executor,
                                 echo=lambda m: print(m, file=sys.stderr))
    else:
        from vtb_eval.datasets import videos
        from vtb_eval.detector_bench import format_table, run_detector_bench
        # the shared clips when they are beside the checkout (faces kept per level variant)
        clips = videos(default_real_data()) if default_real_data().is_dir() else []
        result = run_detector_bench(clips=clips, echo=lambda m: print(m, file=sys.stderr))
    return report(result, format_table, args.json)


def default_real_data() -> Path:
    """../shared/realdata beside the checkout (where the project keeps its real labelled sample)."""
    return repo_root().resolve().parent / "shared" / "realdata"


def cmd_eval(args) -> int:
    if args.what == "real":
        from vtb_eval.real import format_table, run_real_eval
        data = args.data or default_real_data()
        if not data.is_dir():
            print(f"vtb eval real: no real data at {data}: pass --data DIR, a folder laid out like "
                  f"../shared/realdata or an AFLW2000-3D folder (imageNNNNN.jpg + .mat)", file=sys.stderr)
            return 2
        result = run_real_eval(data, model=args.model, landmark_model=args.landmark_model,
                               with_mediapipe=not args.no_mediapipe, echo=lambda m: print(m, file=sys.stderr))
        return report(result, format_table, args.json)
    if args.what == "expressions":
        from vtb_eval.expression_eval import format_table, run_expression_eval
        data = args.data or default_real_data()
        if not data.is_dir():
            print(f"vtb eval expressions: no data at {data}", file=sys.stderr)
            return 2
        return report(run_expression_eval(data, with_mediapipe=not args.no_mediapipe,
                                          echo=lambda m: print(m, file=sys.stderr)), format_table, args.json)
    if args.what == "blendshapes":
        from vtb_eval.blendshape_eval import format_table, run_blendshape_eval
        data = args.data or default_real_data()
        if args.data and not data.is_dir():
            print(f"vtb eval blendshapes: no data at {data}", file=sys.stderr)
            return 2
        result = run_blendshape_eval(data if data.is_dir() else None, with_mediapipe=not args.no_mediapipe,
                                     landmark_model=args.landmark_model, echo=lambda m: print(m, file=sys.stderr))
        return report(result, format_table, args.json)
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
                    port=args.port, loop=args.loop, out_dir=args.out, vrm=args.vrm)


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
    if args.bag:
        from .bag_source import bag_source
        from .graph import resolve_topics
        if args.loop:
            raise sources.SourceError("--loop: a bag plays its recorded times once (ros2 bag play --loop "
                                      "jumps /clock back; the graph's filters would see time run backwards)")
        return bag_source(args.bag, resolve_topics(graph_arguments(args))["image"], rate=args.rate)
    return None


def cmd_calibrate(args) -> int:
    from .calibrate import run_calibrate
    return run_calibrate(reset=args.reset, service=args.service, timeout=args.timeout)


def cmd_run(args) -> int:
    from vtb_common.parameters import ParameterError
    from .graph import GraphError
    from .recorder import RecordError
    from .runner import run
    from .sources import SourceError
    if args.bag and not args.use_sim_time:
        args.use_sim_time = True   # the nodes take the bag's time from /clock
        print("vtb run: --bag: the nodes run with use_sim_time (time from the bag's /clock)", file=sys.stderr)
    try:
        source = make_source(args)
        return run(graph_arguments(args), source=source, loop=args.loop, executor=args.executor,
                   record=args.record, record_images=args.record_images, duration=args.duration,
                   stats_every=args.stats_every, stats_json=args.stats_json)
    except (GraphError, SourceError, RecordError) as e:
        print(f"vtb run: {e}", file=sys.stderr)
        return 2
    except ParameterError as e:   # a bad value in the graph YAML or a --param: as the nodes say it
        print(f"vtb run: {e}", file=sys.stderr)
        return 3


def cmd_test(args) -> int:
    import pytest
    os.chdir(repo_root())
    return pytest.main(args.pytest_args)


def build_parser() -> argparse.ArgumentParser:
    from vtb_detector.image_msg import DEFAULT_MAX_PIXELS
    from vtb_detector.landmarks import DEFAULT_LANDMARK_MODEL, LANDMARK_MODELS
    ap = argparse.ArgumentParser(prog="vtb", description="vtb: real-time face tracking as a ROS 2 graph")
    # vtb_detector.landmarks.DEFAULT_LANDMARK_MODEL chooses the default: the help says its value
    landmark_models = (f"face_mesh: the 468-point mesh + iris model; face_landmarker: the Face Landmarker's 478 "
                       f"points (default: {DEFAULT_LANDMARK_MODEL}, vtb's default landmark model)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="fetch, verify or locate the face models")
    p.add_argument("action", choices=["fetch", "verify", "path"])
    p.add_argument("--force", action="store_true", help="fetch and convert again even if present")
    p.set_defaults(func=cmd_models, needs_models=False)

    p = sub.add_parser("detect", help="faces and head poses in still images",
                       description="Faces in still images, each with its landmarks and head pose: the face_<id> "
                                   "frame (REP-155: x forward out of the face, y to the subject's left, z up) "
                                   "in the camera's optical frame (REP-103: x right, y down, z forward), as the "
                                   "pose node publishes it. Focal length = image width unless --focal, principal "
                                   "point = image centre. Each image is a still (tracking reset between images). "
                                   "An unreadable image: reported on stderr, the others still run, exit code 2.")
    p.add_argument("image", type=Path, nargs="+")
    p.add_argument("--model", choices=["short", "full", "auto", "retinaface"], default="short")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"detect: largest image taken, width x height (default {DEFAULT_MAX_PIXELS}, the detector "
                        "node's max_pixels): a larger one is refused from its header, before it is decoded")
    p.add_argument("--detector-scale", type=float, default=1.0,
                   help="retinaface: resize factor of the image before the network (default 1.0)")
    p.add_argument("--drop-levels", default="", metavar="STRIDES",
                   help="retinaface: comma list of pyramid strides to skip, e.g. 8 (default none)")
    p.add_argument("--landmark-model", choices=list(LANDMARK_MODELS), default=DEFAULT_LANDMARK_MODEL,
                   help=f"landmark model: {landmark_models}")
    p.add_argument("--backend", choices=["auto", "litert", "onnxruntime"], default="auto",
                   help="inference backend (default auto: LiteRT for --provider cpu, ONNX Runtime otherwise); "
                        "both landmark models run on either")
    p.add_argument("--provider", choices=["cpu", "cuda", "tensorrt"], default="cpu",
                   help="ONNX Runtime execution provider (default cpu); one this onnxruntime lacks falls back "
                        "to the next (tensorrt -> cuda -> cpu) with a warning; not with --backend litert")
    p.add_argument("--json", action="store_true",
                   help='print JSON: {"image": ..., "faces": [...]} for one image, {"images": [{"path": ..., '
                        '"faces": [...]}, ...]} for several; each face has "pose": {position_m, orientation_xyzw, '
                        'yaw_deg, pitch_deg, roll_deg, reprojection_error_px} or null where the pose solve failed')
    p.add_argument("--landmarks", action="store_true",
                   help='with --json: also each face\'s points as "landmarks_px": [[x, y, z], ...] (478: the mesh '
                        'and the irises), x, y in pixels (0 = the image\'s left/top edge, pixel i\'s centre at '
                        'i + 0.5), z the model\'s relative depth in the scale of x (smaller = nearer the camera), '
                        '2 decimals')
    p.add_argument("--focal", type=float, metavar="PX",
                   help="focal length in pixels (fx = fy) for the pose (default: the image width)")
    p.add_argument("--passes", type=int, default=2, choices=[1, 2, 3],
                   help="landmark passes per image: 1 = crop from the detection; 2 (default) = again on the "
                        "crop from the first pass's landmarks, as tracking does (lower pose error on real photos)")
    p.add_argument("--no-mirror", action="store_true",
                   help="the last pass without its mirrored crop: by default it also runs each crop mirrored, "
                        "averages the two, and drops a face whose two disagree (mirror_disagreement > 0.06 "
                        "face sizes: a face the model cannot read; lower pose error on real photos)")
    p.add_argument("--max-faces", type=int, default=10, help="most faces to report (default 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--draw", type=Path, metavar="OUT.png",
                   help="also write the image with the faces drawn (several images: OUT-0.png, OUT-1.png, ...)")
    p.set_defaults(func=cmd_detect, needs_models=True)

    p = sub.add_parser("bench", help="benchmarks: perception (vs MediaPipe), detector (naive vs fast), "
                                      "graph (latency over DDS), soak (memory, CPU, latency over minutes), cpu (./vtb run's CPU "
                                      "per frame beside MediaPipe's Face Landmarker)")
    p.add_argument("what", choices=["perception", "detector", "graph", "soak", "cpu"])
    p.add_argument("--frames", type=int, default=300, help="perception: frames of the clip (default 300)")
    p.add_argument("--threads", type=int, default=2, help="perception: vtb's CPU threads (default 2)")
    p.add_argument("--backend", default="auto", choices=["auto", "litert", "onnxruntime"])
    p.add_argument("--no-mediapipe", action="store_true", help="perception: skip the MediaPipe peer")
    p.add_argument("--seconds", type=float, default=None,
                   help="graph: measured seconds per scenario (default 20); cpu: seconds each (default 30)")
    p.add_argument("--video", type=Path, metavar="FILE",
                   help="cpu: the video played (default: the shared 720p talking-head clip, looped)")
    p.add_argument("--busy-core", action="store_true", help="cpu: a busy loop takes one core while both run")
    p.add_argument("--executor", choices=["both", "events", "single", "multi"], default="both",
                   help="graph: the runner's executor (default both: events, and VGA on single- and multi-threaded too, to compare)")
    p.add_argument("--minutes", type=float, default=30.0,
                   help="soak: minutes of the graph on the looping clip with a page client (default 30)")
    p.add_argument("--sample-every", type=float, default=10.0, help=argparse.SUPPRESS)  # soak: for the tests
    p.add_argument("--in-process", action="store_true",
                   help="soak: the graph plays the clip itself, as `vtb run --clip --loop` (default: fed over DDS)")
    p.add_argument("--processes", action="store_true",
                   help="soak: one process per node, as `ros2 launch` starts them (default: `vtb run`, one process)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=cmd_bench, needs_models=True)

    p = sub.add_parser("eval", help="accuracy: pose, gaze on renders of known ground truth; real on real "
                                     "labelled faces and videos, beside MediaPipe and a 6-point PnP")
    p.add_argument("what", choices=["pose", "gaze", "real", "blendshapes", "expressions"])
    p.add_argument("--method", default="procrustes", choices=["procrustes", "sqpnp", "iterative", "epnp"],
                   help="pose: the head-pose method reported")
    p.add_argument("--data", type=Path, help="real, blendshapes, expressions: the data folder (default ../shared/realdata beside the checkout)")
    p.add_argument("--model", default="short", choices=["short", "full", "auto", "retinaface"],
                   help="real: vtb's detector model for the stills (default short; the videos run all three)")
    p.add_argument("--landmark-model", default=DEFAULT_LANDMARK_MODEL, choices=list(LANDMARK_MODELS),
                   help=f"real, blendshapes: vtb's landmark model: {landmark_models}")
    p.add_argument("--no-mediapipe", action="store_true", help="real, blendshapes, expressions: skip the MediaPipe peer")
    p.add_argument("--quick", action="store_true", help="a coarse grid (for a quick look)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=cmd_eval, needs_models=True)

    p = sub.add_parser("demo", help="the whole graph on a moving real face: live latency, avatar page, video, CSV")
    p.add_argument("--frames", type=int, default=150, help="frames to stream (default 150)")
    p.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--model", choices=["short", "full", "auto", "retinaface"], default="short")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"detect: largest image taken, width x height (default {DEFAULT_MAX_PIXELS}, the detector "
                        "node's max_pixels): a larger one is refused from its header, before it is decoded")
    p.add_argument("--socketio-url", default="", help="also stream result_data to this Socket.IO server (/kizuna)")
    p.add_argument("--port", type=int, default=8000, help="port of the built-in avatar page (0: any free port)")
    p.add_argument("--loop", action="store_true", help="play the clip again and again until Ctrl-C")
    p.add_argument("--vrm", default="", metavar="FILE", help="your VRM model (.vrm) on the avatar page (default: vtb's 3D character)")
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
    src.add_argument("--bag", type=Path, metavar="BAG",
                     help="a rosbag2 folder (./vtb run --record BAG --record-images): its images and camera_info "
                          "with their recorded stamps, /clock at the recorded times, the nodes on use_sim_time")
    p.add_argument("--frames", type=int, default=150, help="--clip: frames to render (default 150)")
    p.add_argument("--rate", type=float, help="frames per second for --clip (30), --images (10), --video (its own); "
                                                "--bag: times the recorded speed (1)")
    p.add_argument("--loop", action="store_true", help="play the clip, video or folder again and again")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--executor", choices=["events", "single", "multi"], default="events",
                   help="rclpy executor for the nodes (default events: rclpy.experimental.EventsExecutor, the least CPU; see ./vtb bench cpu, graph)")
    p.add_argument("--record", metavar="BAG", help="record the graph's topics into this rosbag2 (mcap) folder")
    p.add_argument("--record-images", action="store_true", help="--record: the image topics too")
    p.add_argument("--stats-every", type=float, default=2.0, help="seconds between latency tables (0: only at the end)")
    p.add_argument("--stats-json", metavar="PATH", help="also write the final table as JSON, with the CPU seconds "
                                                        "the graph used while it ran (./vtb bench cpu reads it)")
    p.set_defaults(func=cmd_run, needs_models=True)

    p = sub.add_parser("calibrate", help="the running graph's avatar: take the current head pose and gaze as "
                                          "neutral (as the page's button), or --reset to the pose as measured",
                       description="Finds every running vtb bridge on the ROS graph (./vtb run, ./vtb demo, ros2 "
                                   "launch; any namespace, this ROS_DOMAIN_ID) and calls its calibrate_neutral "
                                   "(or reset_neutral) service. Exit 0: done; 1: a bridge refused (no face seen "
                                   "yet); 2: no bridge found, or one did not answer.")
    p.add_argument("--reset", action="store_true", help="forget the calibration: head and gaze as measured")
    p.add_argument("--service", metavar="NAME", help="one service to call (default: every bridge's)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a bridge and its answer")
    p.set_defaults(func=cmd_calibrate, needs_models=False)

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
