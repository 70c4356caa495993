"""MediaPipe Face Landmarker's 478-point model on ONNX Runtime: converted at fetch time (its
float16 constants folded to float32, then tflite2onnx), checked against LiteRT, cached by the
sha256 of its tflite file, and verified like the other converted models."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vtb_detector import models
from vtb_detector.blazeface import BlazeFaceDetector
from vtb_detector.inference import ModelRunner
from vtb_detector.landmarks import crop, roi_from_detection
from vtb_detector.models import ModelError, model_path
from vtb_detector.tflite_rewrite import fold_float16_dequantize

NAME = "face_landmarker"
# Measured on the astronaut crops below: 2.0e-4 px (landmarks, pixels of the 256 crop) and
# 7.6e-6 (presence logit); the tolerance leaves 10x for other CPUs' kernels
LANDMARKS_TOLERANCE_PX = 2e-3
PRESENCE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def face_crops(astronaut_rgb):
    """The astronaut's face cut where vtb's pipeline cuts it from BlazeFace's detection (256x256,
    rotated so the eyes are level), and its mirror image: (2, 256, 256, 3) NHWC."""
    det = BlazeFaceDetector("short").detect(astronaut_rgb)[0]
    face = crop(astronaut_rgb, roi_from_detection(det), 256)
    return np.ascontiguousarray(np.stack([face, face[:, ::-1]]))


def run_each(runner, batch):
    return [np.concatenate(o) for o in zip(*(runner(batch[i:i + 1]) for i in range(len(batch))))]


def test_onnx_matches_litert_on_a_real_face(face_crops):
    litert = ModelRunner(NAME, backend="litert")
    onnx = ModelRunner(NAME, backend="onnxruntime")
    assert onnx.backend == "onnxruntime" and not onnx._fixed_batch, "both faces in one ONNX Runtime call"
    want = run_each(litert, face_crops)
    got = onnx(face_crops)
    # the same outputs in the same order: 478 x (x, y, z) in the crop's pixels, then the presence logit
    assert [g.shape for g in got] == [w.shape for w in want] == [(2, 1434), (2, 1)]
    px, logit = (float(np.abs(g - w).max()) for g, w in zip(got, want))
    print(f"max |onnx - litert|: landmarks {px:.2e} px of the 256 crop, presence logit {logit:.2e}")
    assert px <= LANDMARKS_TOLERANCE_PX and logit <= PRESENCE_TOLERANCE
    # and it was a face: the comparison is not on meaningless input
    assert (1 / (1 + np.exp(-want[1])) > 0.9).all()
    xy = want[0].reshape(2, 478, 3)[..., :2]
    assert (xy > 0).all() and (xy < 256).all()
    # one at a time gives the same as the batch
    np.testing.assert_allclose(run_each(onnx, face_crops)[0], got[0], atol=1e-4)


def test_float16_folding_leaves_litert_outputs_bit_identical(face_crops):
    """Why the conversion works: tflite2onnx cannot follow a PReLU slope that comes out of a
    DEQUANTIZE of a float16 constant; folded to float32 constants, LiteRT computes exactly what
    it computed on the original."""
    from ai_edge_litert.interpreter import Interpreter
    original = model_path(NAME, "tflite").read_bytes()
    folded, count = fold_float16_dequantize(original)
    assert count == 251

    def outputs(**source):
        it = Interpreter(num_threads=1, **source)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], face_crops[:1])
        it.invoke()
        return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}

    float16 = [sum(d["dtype"] == np.float16 for d in Interpreter(model_content=m).get_tensor_details())
               for m in (original, folded)]
    assert float16 == [251, 0]
    a, b = outputs(model_content=original), outputs(model_content=folded)
    assert list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def models_copy(tmp_path):
    """A private copy of the fetched models, free to damage."""
    d = tmp_path / "models"
    shutil.copytree(models.models_dir(), d)
    return d


@pytest.fixture
def conversions(monkeypatch):
    """Every conversion of a bundle model during the test."""
    calls, real = [], models.convert_bundle_model
    monkeypatch.setattr(models, "convert_bundle_model", lambda *a: calls.append(a[0].name) or real(*a))
    return calls


def test_fetch_converts_once_per_sha256_of_the_tflite(models_copy, conversions):
    onnx = models_copy / f"{NAME}.onnx"
    others = {p.name: p.stat().st_mtime_ns for p in models_copy.glob("*.onnx") if p != onnx}
    before = onnx.stat().st_mtime_ns
    models.fetch(directory=models_copy, echo=lambda m: None)
    assert conversions == [] and onnx.stat().st_mtime_ns == before, "fetched already: nothing converted"

    # a manifest entry made from another tflite (the bundle's model changed): verify names the
    # file, and fetch converts again, that model only
    path = models_copy / models.MANIFEST
    manifest = json.loads(path.read_text())
    manifest[NAME]["tflite_sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    assert not models.is_fetched(models_copy)
    problems = models.verify(models_copy)
    assert len(problems) == 1 and str(onnx) in problems[0] and "converted from another" in problems[0]
    assert "./vtb models fetch" in problems[0]
    lines = []
    models.fetch(directory=models_copy, echo=lines.append)
    assert conversions == [NAME] and models.verify(models_copy) == [] and models.is_fetched(models_copy)
    entry = json.loads(path.read_text())[NAME]
    assert entry["tflite_sha256"] == models.BUNDLE_FILES["face_landmarks_detector.tflite"]
    assert entry["conversion"] == models.BUNDLE_CONVERSION and entry["float16_folded"] == 251
    diffs = entry["max_abs_diff_vs_litert"]
    assert diffs["Identity"] <= LANDMARKS_TOLERANCE_PX and diffs["Identity_1"] <= PRESENCE_TOLERANCE
    assert any(f"{NAME}: tflite" in line and "max |onnx - litert|" in line for line in lines), lines
    assert others == {p.name: p.stat().st_mtime_ns for p in models_copy.glob("*.onnx") if p != onnx}
    assert not list(models_copy.glob("*.part"))

    models.fetch(directory=models_copy, echo=lambda m: None)
    assert conversions == [NAME], "and the next fetch converts nothing"


def test_a_corrupt_converted_model_is_reported_and_fetched_again(models_copy, conversions):
    path = models_copy / f"{NAME}.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = models.verify(models_copy)
    assert len(problems) == 1 and str(path) in problems[0] and "corrupt" in problems[0]
    assert "./vtb models fetch" in problems[0]
    with pytest.raises(ModelError, match=f"{NAME}.onnx is corrupt.*./vtb models fetch"):
        ModelRunner(NAME, backend="onnxruntime", models_dir=models_copy)
    ModelRunner(NAME, backend="litert", models_dir=models_copy)  # LiteRT does not read it
    models.fetch(directory=models_copy, echo=lambda m: None)
    assert conversions == [NAME] and models.verify(models_copy) == []
    path.unlink()
    assert not models.is_fetched(models_copy), "setup fetches again when it is missing"


def test_a_conversion_that_differs_from_litert_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLE_TOLERANCE", 0.0)
    spec = models.BUNDLE_MODELS[NAME]
    with pytest.raises(ModelError, match="differs from LiteRT"):
        models.convert_bundle_model(spec, model_path(NAME, "tflite"), tmp_path / "x.onnx")


def test_the_provider_check_tool_runs_and_reports_a_fallback():
    """tools/check_landmarker_onnx.py, for a GPU machine: here, CUDA falls back to the CPU and
    --require makes that exit 1; the CPU alone passes."""
    import onnxruntime
    tool = Path(__file__).resolve().parents[3] / "tools" / "check_landmarker_onnx.py"
    quick = ["--threads", "1", "--runs", "2", "--warmup", "1", "--require"]
    r = subprocess.run([sys.executable, str(tool), "--provider", "cpu", *quick], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "onnxruntime  cpu       CPUExecutionProvider" in r.stdout and "batch_landmarks_px" in r.stdout
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        r = subprocess.run([sys.executable, str(tool), "--provider", "cuda", *quick], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1 and "CUDAExecutionProvider is not available" in r.stderr, r.stdout + r.stderr
