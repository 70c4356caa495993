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


def test_detect_table_and_unreadable_image(astronaut_png, tmp_path):
    r = vtb("detect", astronaut_png)
    assert r.returncode == 0 and "1 face(s)" in r.stdout and "box x=" in r.stdout
    missing = tmp_path / "nope.png"
    r = vtb("detect", missing)
    assert r.returncode == 2 and str(missing) in r.stderr


def test_demo_streams_the_photo_through_the_graph():
    r = vtb("demo", "--frames", "8", "--rate", "20")
    assert r.returncode == 0, r.stdout + r.stderr
    frames = [line for line in r.stdout.splitlines() if line.startswith("frame ")]
    assert len(frames) >= 6, r.stdout  # images are best effort; nearly all must arrive
    assert all("box x=" in line and "detect " in line for line in frames), r.stdout
    ids = {line.split("face ")[1].split()[0] for line in frames}
    assert len(ids) == 1, f"one still face must keep one id: {ids}"
    assert "frames processed, a face in" in r.stdout


def test_models_verify():
    r = vtb("models", "verify")
    assert r.returncode == 0 and "match their sha256" in r.stdout
