"""The vtb command line, run as users run it (a separate process)."""
import json
import subprocess
import sys

import cv2
import pytest


def vtb(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "vtb_bringup.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def astronaut_png(tmp_path, astronaut_rgb):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.parametrize("model", ["short", "full"])
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
    assert set(out["stages_ms"]) == {"detect", "crop", "landmarks", "iris", "total"}


def test_detect_table_drawing_and_unreadable_image(astronaut_png, tmp_path):
    drawn = tmp_path / "drawn.png"
    r = vtb("detect", astronaut_png, "--draw", drawn)
    assert r.returncode == 0 and "1 face(s)" in r.stdout and "landmarks=478" in r.stdout
    original, annotated = cv2.imread(str(astronaut_png)), cv2.imread(str(drawn))
    assert annotated.shape == original.shape and (annotated != original).any(axis=2).sum() > 1000
    missing = tmp_path / "nope.png"
    r = vtb("detect", missing)
    assert r.returncode == 2 and str(missing) in r.stderr


def test_bench_perception_without_the_peer(tmp_path):
    out = tmp_path / "bench.json"
    r = vtb("bench", "perception", "--frames", "40", "--no-mediapipe", "--json", out)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["vtb_ms"] > 0 and set(result["stages"]) == {"detect", "crop", "landmarks", "iris", "total"}
    assert result["vtb"]["frames_without_face"] == 0 and len(result["vtb"]["face_ids"]) == 1
    assert "vtb total" in r.stdout


def test_models_verify():
    r = vtb("models", "verify")
    assert r.returncode == 0 and "match their sha256" in r.stdout
