"""The MediaPipe reference landmarks of the astronaut, and the peer runner's parts that need no
MediaPipe. Nothing here creates .venv-mediapipe (about 30 s and 1 GB): the reference file was
recorded once with tools/record_mediapipe_reference.py."""
import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vtb_eval import mediapipe_peer

# recorded by tools/record_mediapipe_reference.py; kept with vtb_detector's tests, which check the
# detector against it
REFERENCE = Path(__file__).resolve().parents[2] / "vtb_detector" / "test" / "data" / "astronaut_mediapipe_478.json"
# BlazeFace's box of the astronaut's face (x 178..272, y 81..175); the mesh reaches above the
# brows to the hairline, so the region is widened
FACE_REGION = (178 - 15, 81 - 15, 272 + 15, 175 + 15)
# eye corners in MediaPipe's mesh: (outer, inner) of the subject's right and left eye
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS = (33, 133), (263, 362)
RIGHT_IRIS, LEFT_IRIS = 468, 473


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


def test_reference_is_well_formed(reference):
    assert reference["image_size"] == [512, 512]
    assert reference["mediapipe_version"] in reference["how"]
    assert "refine_landmarks=True" in reference["how"] and "static_image_mode=True" in reference["how"]
    for key, count in (("landmarks_478", 478), ("landmarks_468", 468)):
        points = np.array(reference[key], dtype=np.float64)
        assert points.shape == (count, 2), key
        assert np.isfinite(points).all(), key
        np.testing.assert_allclose(points, np.round(points, 2), atol=1e-9, err_msg=key)


@pytest.mark.parametrize("key", ["landmarks_478", "landmarks_468"])
def test_every_point_lies_on_the_face(reference, key):
    points = np.array(reference[key])
    x0, y0, x1, y1 = FACE_REGION
    assert (points[:, 0] > x0).all() and (points[:, 0] < x1).all()
    assert (points[:, 1] > y0).all() and (points[:, 1] < y1).all()
    # a face, not a clump: the mesh spans most of the box
    assert np.ptp(points[:, 0]) > 70 and np.ptp(points[:, 1]) > 80


def test_both_meshes_agree(reference):
    """MediaPipe runs a different landmark model with refine on (attention mesh) than without;
    on a frontal face their shared 468 points still agree within a few pixels."""
    distance = np.linalg.norm(np.array(reference["landmarks_478"])[:468]
                              - np.array(reference["landmarks_468"]), axis=1)
    assert distance.mean() < 2.0 and distance.max() < 5.0


def test_iris_centres_sit_on_the_pupils(reference, astronaut_rgb):
    points = np.array(reference["landmarks_478"])
    right, left = points[RIGHT_IRIS], points[LEFT_IRIS]
    assert right[0] < left[0], "the subject's right eye is on the image's left"
    gray = astronaut_rgb.astype(np.float64).mean(axis=2)
    for centre, corners in ((right, RIGHT_EYE_CORNERS), (left, LEFT_EYE_CORNERS)):
        a, b = points[list(corners)]
        # between the eye's corners, at their height
        assert min(a[0], b[0]) < centre[0] < max(a[0], b[0])
        assert abs(centre[1] - (a[1] + b[1]) / 2) < 5
        # on the dark pupil: darker than the eye region around it (0.45 measured; 1 = as bright)
        x, y = int(centre[0]), int(centre[1])
        pupil = gray[y - 1:y + 2, x - 1:x + 2].mean()
        xs, ys = sorted((a[0], b[0])), sorted((a[1], b[1]))
        eye = gray[int(ys[0]) - 6:int(ys[1]) + 6, int(xs[0]) - 4:int(xs[1]) + 4].mean()
        assert pupil < 0.6 * eye
    # the 4 edge points of each iris ring its centre; an iris is about 8 px across here
    for c in (RIGHT_IRIS, LEFT_IRIS):
        radii = np.linalg.norm(points[c + 1:c + 5] - points[c], axis=1)
        assert (radii > 2).all() and (radii < 7).all()


def test_worker_imports_only_its_own_venvs_packages():
    tree = ast.parse(mediapipe_peer.WORKER.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"argparse", "time", "numpy", "mediapipe", "cv2"}, imported


def test_worker_environment_drops_vtbs_paths(monkeypatch):
    monkeypatch.setenv("VIRTUAL_ENV", "/x/.venv")
    monkeypatch.setenv("PATH", "/x/.venv/bin:/usr/bin")
    for name in ("PYTHONPATH", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
        monkeypatch.setenv(name, "/x")
    monkeypatch.setenv("HOME", "/root-of-someone")
    env = mediapipe_peer.clean_environment()
    assert not {"VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH",
                "_ROS_WHEELS_BOOTSTRAP_COMPLETE"} & env.keys()
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/root-of-someone"


def test_ensure_venv_skips_when_the_stamp_matches(tmp_path):
    requirements = tmp_path / mediapipe_peer.REQUIREMENTS
    requirements.parent.mkdir()
    requirements.write_text("mediapipe==0.10.21\n")
    python = mediapipe_peer.venv_python(tmp_path)
    python.parent.mkdir(parents=True)
    python.touch()
    (tmp_path / mediapipe_peer.VENV_NAME / mediapipe_peer.STAMP).write_text(
        hashlib.sha256(requirements.read_bytes()).hexdigest() + "\n")
    said = []
    assert mediapipe_peer.ensure_venv(tmp_path, echo=said.append) == python
    assert said == []


def test_ensure_venv_names_a_missing_requirements_file(tmp_path):
    with pytest.raises(RuntimeError, match="mediapipe.txt is missing"):
        mediapipe_peer.ensure_venv(tmp_path)


def test_run_mediapipe_rejects_frames_that_are_not_rgb_uint8():
    with pytest.raises(ValueError, match="uint8 RGB"):
        mediapipe_peer.run_mediapipe(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        mediapipe_peer.run_mediapipe(np.zeros((1, 8, 8, 3), np.float32))
