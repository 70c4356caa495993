"""The vtb command line, run as users run it (a separate process)."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from vtb_pose.frames import rotation_from_quaternion, ypr_from_rotation


def vtb(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "vtb_bringup.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def astronaut_png(tmp_path, astronaut_rgb):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.parametrize("model", ["short", "full", "auto"])
def test_detect_json(astronaut_png, model):
    r = vtb("detect", astronaut_png, "--model", model, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["width"], out["height"], out["model"]) == (512, 512, model)
    assert len(out["faces"]) == 1
    face = out["faces"][0]
    x, y, w, h = face["box"]
    assert abs(x + w / 2 - 225) < 12 and abs(y + h / 2 - 128) < 12
    assert face["score"] > 0.85 and len(face["id"]) == 4 and len(face["keypoints"]) == 6
    assert face["landmarks"] == 478 and face["landmark_confidence"] > 0.9
    assert "landmarks_px" not in face, "the points only with --landmarks"
    assert set(out["stages_ms"]) == {"detect", "crop", "landmarks", "iris", "total", "blendshapes"}
    check_pose(face["pose"])
    # the 52 ARKit blendshapes by name, 0..1: the astronaut's eyes are open and she smiles
    shapes = face["blendshapes"]
    assert len(shapes) == 52 and all(0.0 <= v <= 1.0 for v in shapes.values())
    assert shapes["eyeBlinkLeft"] < 0.3 and shapes["eyeBlinkRight"] < 0.3 and shapes["tongueOut"] == 0
    assert shapes["mouthSmileLeft"] > 0.3 and shapes["mouthSmileRight"] > 0.3


def test_detect_json_landmarks(astronaut_png):
    """--landmarks: each face's 478 points as [x, y, z] (pixels, edge 0; z the relative depth in
    the scale of x), 2 decimals, inside the image and on the face the box found."""
    r = vtb("detect", astronaut_png, "--json", "--landmarks")
    assert r.returncode == 0, r.stderr
    (face,) = json.loads(r.stdout)["faces"]
    points = np.array(face["landmarks_px"])
    assert points.shape == (478, 3) and face["landmarks"] == 478
    assert np.allclose(points, np.round(points, 2))
    assert (points[:, :2] >= 0).all() and (points[:, :2] <= 512).all()
    x, y, w, h = face["box"]
    assert (points[:, 0] > x - 0.3 * w).all() and (points[:, 0] < x + 1.3 * w).all()
    assert (points[:, 1] > y - 0.5 * h).all() and (points[:, 1] < y + 1.3 * h).all()
    assert np.hypot(*(points[:, :2].mean(0) - [x + w / 2, y + h / 2])) < 0.2 * w
    # the nose tip (mesh point 1) at BlazeFace's nose keypoint (2); the irises (468, 473) between
    # their eye corners (33/133, 362/263); the depth in pixels of the face's size, the nose nearest
    assert np.hypot(*(points[1, :2] - face["keypoints"][2])) < 0.1 * w
    for iris, (a, b) in ((468, (33, 133)), (473, (362, 263))):
        assert min(points[a, 0], points[b, 0]) < points[iris, 0] < max(points[a, 0], points[b, 0])
    assert 0.1 * w < np.ptp(points[:, 2]) < 1.5 * w and points[1, 2] < np.median(points[:, 2])


def test_detect_backend_and_provider(astronaut_png):
    """--backend onnxruntime runs the models on ONNX Runtime, the Face Landmarker's too (its ONNX
    file converted at fetch time): the same points as on LiteRT; a --provider this onnxruntime
    lacks falls back to the CPU with a warning; LiteRT with a GPU provider is refused."""
    import onnxruntime
    runs = {}
    for backend in ("litert", "onnxruntime"):
        r = vtb("detect", astronaut_png, "--landmark-model", "face_landmarker", "--backend", backend,
                "--json", "--landmarks")
        assert r.returncode == 0, r.stderr
        runs[backend] = json.loads(r.stdout)
    assert runs["litert"]["landmarks_on"].startswith("LiteRT")
    assert runs["onnxruntime"]["landmarks_on"].startswith("onnxruntime")
    a, b = (np.array(runs[k]["faces"][0]["landmarks_px"]) for k in ("litert", "onnxruntime"))
    # the whole still on either backend (the detector too), printed to 2 decimals: 0.02 measured
    assert a.shape == b.shape == (478, 3) and np.abs(a - b).max() < 0.05
    r = vtb("detect", astronaut_png, "--landmark-model", "face_landmarker", "--provider", "cuda", "--json")
    assert r.returncode == 0, r.stderr
    used = json.loads(r.stdout)["landmarks_on"]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert "CUDAExecutionProvider" in used
    else:
        assert "CPUExecutionProvider" in used and "CUDAExecutionProvider is not available" in r.stderr
    r = vtb("detect", astronaut_png, "--backend", "litert", "--provider", "tensorrt")
    assert r.returncode == 2 and "--backend litert runs on the CPU only" in r.stderr


def test_detect_table_drawing_and_unreadable_image(astronaut_png, tmp_path):
    drawn = tmp_path / "drawn.png"
    r = vtb("detect", astronaut_png, "--draw", drawn)
    assert r.returncode == 0 and "1 face(s)" in r.stdout and "landmarks=478" in r.stdout and "pose: yaw=" in r.stdout
    original, annotated = cv2.imread(str(astronaut_png)), cv2.imread(str(drawn))
    assert annotated.shape == original.shape and (annotated != original).any(axis=2).sum() > 1000
    missing = tmp_path / "nope.png"
    r = vtb("detect", missing)
    assert r.returncode == 2 and str(missing) in r.stderr


def test_detect_refuses_a_huge_image_from_its_header(astronaut_png, tmp_path):
    """./vtb detect takes the detector node's max_pixels: a 12000x12000 PNG (a few KB of
    header and zeros) is refused before it is decoded, with what is wrong; the other images run."""
    import struct
    import time
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes(36001 * 10))) + chunk(b"IEND", b""))
    start = time.monotonic()
    r = vtb("detect", huge, astronaut_png, "--json")
    assert time.monotonic() - start < 60
    assert r.returncode == 2 and "12000x12000" in r.stderr and "max_pixels" in r.stderr, r.stderr
    out = json.loads(r.stdout)
    assert "12000x12000" in out["images"][0]["error"] and len(out["images"][1]["faces"]) == 1
    # the limit is an option
    r = vtb("detect", astronaut_png, "--max-pixels", "1000")
    assert r.returncode == 2 and "more than max_pixels = 1000" in r.stderr


def check_pose(pose):
    """A head pose as `vtb detect --json` gives it, self-consistent: a unit quaternion, the face
    in front of the camera, yaw/pitch/roll those of the quaternion in HeadPose's convention.
    Returns the rotation (face frame in the optical frame)."""
    assert set(pose) == {"position_m", "orientation_xyzw", "yaw_deg", "pitch_deg", "roll_deg",
                         "reprojection_error_px"}
    x, y, z, w = pose["orientation_xyzw"]
    assert abs(np.linalg.norm([x, y, z, w]) - 1) < 1e-5
    assert len(pose["position_m"]) == 3 and pose["position_m"][2] > 0
    rotation = rotation_from_quaternion([w, x, y, z])
    ypr = ypr_from_rotation(rotation)
    assert np.allclose(ypr, [pose["yaw_deg"], pose["pitch_deg"], pose["roll_deg"]], atol=0.02)
    assert 0 < pose["reprojection_error_px"] < 10
    return rotation


def test_detect_several_images_in_order_with_poses(astronaut_png, tmp_path):
    flipped = tmp_path / "flipped.png"
    cv2.imwrite(str(flipped), cv2.imread(str(astronaut_png))[:, ::-1])
    r = vtb("detect", astronaut_png, flipped, astronaut_png, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [i["path"] for i in out["images"]] == [str(astronaut_png), str(flipped), str(astronaut_png)]
    assert all((i["width"], i["height"], len(i["faces"])) == (512, 512, 1) for i in out["images"])
    poses = [i["faces"][0]["pose"] for i in out["images"]]
    rotations = [check_pose(p) for p in poses]
    # each image is a still: the third (the first again) is not seeded by the second
    assert out["images"][2]["faces"][0]["box"] == out["images"][0]["faces"][0]["box"]
    assert poses[2] == poses[0]
    # the astronaut is left of the image centre, slightly above it, about 0.8 m away (f = 512 px,
    # a 63 mm pupil distance); flipped she is right of it (optical frame: x right, y down)
    (x0, y0, z0), (x1, y1, z1) = poses[0]["position_m"], poses[1]["position_m"]
    assert x0 < -0.02 and x1 > 0.02 and abs(x0 + x1) < 0.01
    assert y0 < -0.1 and abs(y0 - y1) < 0.01 and 0.6 < z0 < 1.0 and abs(z0 - z1) < 0.05
    # face frame (REP-155): x forward out of the face (towards the camera: optical -z), y to the
    # subject's left (the image's right: +x), z up (the image's up: -y)
    for rot in rotations:
        assert rot[2, 0] < -0.8 and rot[0, 1] > 0.8 and rot[1, 2] < -0.8


@pytest.fixture(scope="module")
def turned_heads(tmp_path_factory):
    """The rendered head turned 35 degrees to its own left, at a known place, and its mirror image."""
    from vtb_eval.render import HeadRenderer, default_intrinsics, pose_from_ypr
    size, t = (640, 480), np.array([0.04, 0.02, 0.6])
    rgb = HeadRenderer().render(pose_from_ypr(35, 0, 0), t, default_intrinsics(*size), size)
    folder = tmp_path_factory.mktemp("turned")
    paths = folder / "left.png", folder / "mirrored.png"
    cv2.imwrite(str(paths[0]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths[1]), cv2.cvtColor(np.ascontiguousarray(rgb[:, ::-1]), cv2.COLOR_RGB2BGR))
    return paths, t


def test_detect_pose_signs_on_a_turned_head(turned_heads):
    (left, mirrored), t = turned_heads
    r = vtb("detect", left, mirrored, "--json")
    assert r.returncode == 0, r.stderr
    poses = [i["faces"][0]["pose"] for i in json.loads(r.stdout)["images"]]
    rotations = [check_pose(p) for p in poses]
    # turned to its own left (yaw > 0 in HeadPose's convention); the mirror image to its right
    assert 20 < poses[0]["yaw_deg"] < 50 and -50 < poses[1]["yaw_deg"] < -20
    assert abs(poses[0]["pitch_deg"]) < 12 and abs(poses[0]["roll_deg"]) < 8
    # turned to its left, the face looks towards the image's right: forward axis +x (optical)
    assert rotations[0][0, 0] > 0.3 and rotations[1][0, 0] < -0.3
    # where the renderer put it (origin between the eyes), mirrored: x changes sign
    assert np.allclose(poses[0]["position_m"], t, atol=[0.015, 0.015, 0.08])
    assert np.allclose(poses[1]["position_m"], t * [-1, 1, 1], atol=[0.015, 0.015, 0.08])


def test_detect_focal_length_scales_the_distance(astronaut_png):
    default, double = (json.loads(vtb("detect", astronaut_png, "--json", *extra).stdout)["faces"][0]["pose"]
                       for extra in ([], ["--focal", 1024]))
    # twice the focal length: the same pixels are twice as far (z); x = (u - cx) z / f stays
    check_pose(double)
    assert abs(double["position_m"][2] / default["position_m"][2] - 2) < 0.1
    assert np.allclose(double["position_m"][:2], default["position_m"][:2], atol=0.005)


def test_detect_several_images_one_unreadable(astronaut_png, tmp_path):
    missing = tmp_path / "nope.png"
    r = vtb("detect", missing, astronaut_png, "--json")
    assert r.returncode == 2 and str(missing) in r.stderr
    images = json.loads(r.stdout)["images"]
    assert images[0] == {"path": str(missing), "error": "cannot read image (No such file or directory)"}
    assert images[1]["path"] == str(astronaut_png) and len(images[1]["faces"]) == 1
    check_pose(images[1]["faces"][0]["pose"])
    r = vtb("detect", astronaut_png, missing)
    assert r.returncode == 2 and str(missing) in r.stderr
    assert "1 face(s)" in r.stdout and "pose: yaw=" in r.stdout and " m (x=" in r.stdout


def test_detect_estimator_is_the_pose_nodes_with_its_defaults():
    """cmd_detect builds HeadPoseEstimator() with its own defaults: they must be the node's."""
    import inspect
    from vtb_pose.node import PARAMETERS
    from vtb_pose.pnp import HeadPoseEstimator
    node = {name: default for name, default, _ in PARAMETERS}
    own = {name: p.default for name, p in inspect.signature(HeadPoseEstimator).parameters.items()}
    # the node's parameters that it passes to the estimator (vtb_pose.node.PoseNode._make_estimator)
    passed = {"interpupillary_distance_m": "ipd_m", "pnp_method": "method", "depth_scale": "depth_scale"}
    assert {arg: own[arg] for arg in passed.values()} == {arg: node[name] for name, arg in passed.items()}


def test_bench_perception_without_the_peer(tmp_path):
    out = tmp_path / "bench.json"
    r = vtb("bench", "perception", "--frames", "40", "--no-mediapipe", "--json", out)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["vtb_ms"] > 0 and set(result["stages"]) == {"detect", "crop", "landmarks", "iris", "total",
                                                                     "blendshapes", "total_with_blendshapes"}
    assert result["vtb"]["frames_without_face"] == 0 and len(result["vtb"]["face_ids"]) == 1
    assert "vtb total" in r.stdout


def test_models_verify():
    r = vtb("models", "verify")
    assert r.returncode == 0 and "match their sha256" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--camera", "7"], "camera 7 cannot be opened"),
    (["--video", "src"], "is a folder, not a video file"),
])
def test_run_names_a_bad_source_and_exits_2(args, message):
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "run", *args, "--duration", "5", "--outputs", "none"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert "image->topic" not in r.stdout + r.stderr, "no graph was started"
