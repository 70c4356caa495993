"""`vtb eval real`: the data-set readers, AFLW's rotation convention, the 68-point mapping and
metrics, the 6-point baseline, and the whole evaluation on a data folder made here from renders
of known pose (CI has no ../shared: nothing here reads it)."""
import json

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from vtb_eval import datasets, real
from vtb_eval.render import HeadRenderer
from vtb_pose.frames import FRONTAL, angle_between, rotation_from_ypr


def test_aflw_rotation_round_trips_and_has_the_documented_signs():
    for pyr in [(0.1, -0.4, 0.2), (-0.5, 1.1, -0.3), (0.0, 0.0, 0.0)]:
        np.testing.assert_allclose(datasets.aflw_angles(datasets.aflw_rotation(pyr)), np.degrees(pyr), atol=1e-9)
        r = rotation_from_ypr(*np.degrees(pyr))
        np.testing.assert_allclose(datasets.from_aflw(datasets.to_aflw(r)), r, atol=1e-12)
    assert np.allclose(datasets.to_aflw(FRONTAL), np.eye(3)), "a frontal face is AFLW's zero pose"
    # SOURCES.md: AFLW's yaw > 0 turns the face to the image's left (the subject's right),
    # pitch > 0 looks up; vtb's yaw > 0 turns it to its own left, pitch > 0 looks down
    pitch, yaw, roll = datasets.aflw_angles(datasets.to_aflw(rotation_from_ypr(30, 0, 0)))
    assert yaw == pytest.approx(-30, abs=1e-6) and abs(pitch) < 1e-6 and abs(roll) < 1e-6
    assert datasets.aflw_angles(datasets.to_aflw(rotation_from_ypr(0, 20, 0)))[0] == pytest.approx(-20, abs=1e-6)
    assert datasets.aflw_angles(datasets.to_aflw(rotation_from_ypr(0, 0, 10)))[2] == pytest.approx(-10, abs=1e-6)


def test_readers_convert_each_layout_to_edge_zero_pixels(tmp_path):
    pts = np.arange(136, dtype=float).reshape(68, 2) + 10
    image = np.zeros((40, 40, 3), np.uint8)
    # 300-VW: imgs/ + annot/, 1-based .pts
    (tmp_path / "vw" / "imgs").mkdir(parents=True)
    (tmp_path / "vw" / "annot").mkdir()
    cv2.imwrite(str(tmp_path / "vw" / "imgs" / "000001.jpg"), image)
    body = "\n".join(f"{x} {y}" for x, y in pts)
    (tmp_path / "vw" / "annot" / "000001.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
    (s,) = datasets.pts_samples(tmp_path / "vw", "300-VW")
    assert s.image.name == "000001.jpg"
    np.testing.assert_allclose(s.faces[0], pts - 0.5)
    # COCO JSON: 98 WFLW points mapped to 68 (taken as given), two faces in one image
    cv2.imwrite(str(tmp_path / "w.jpg"), image)
    k98 = np.column_stack([np.arange(98.0), np.arange(98.0) * 2, np.ones(98)])
    coco = {"images": [{"id": 3, "file_name": "w.jpg"}],
            "annotations": [{"image_id": 3, "keypoints": k98.ravel().tolist()}] * 2}
    (tmp_path / "w.json").write_text(json.dumps(coco))
    (s,) = datasets.coco_samples(tmp_path / "w.json", "WFLW", offset=0.0)
    assert len(s.faces) == 2 and s.faces[0].shape == (68, 2)
    assert s.faces[0][36, 0] == 60 and s.faces[0][45, 0] == 72, "outer eye corners: WFLW 60 and 72"
    assert s.faces[0][30, 0] == 54 and s.faces[0][8, 0] == 16, "nose tip 54, chin 16"
    # menpo's ljson: 0-based [y, x]
    cv2.imwrite(str(tmp_path / "l.png"), image)
    (tmp_path / "l.ljson").write_text(json.dumps(
        {"groups": {"LJSON": {"landmarks": {"points": pts[:, ::-1].tolist()}}}, "version": 2}))
    (s,) = datasets.ljson_samples(tmp_path, "menpo")
    np.testing.assert_allclose(s.faces[0], pts + 0.5)


def _write_aflw(folder, name, rgb, pose_pyr_rad, pt3d):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    savemat(str(folder / f"{name}.mat"), {"Pose_Para": np.array([[*pose_pyr_rad, 0, 0, 0, 1]]),
                                          "pt3d_68": pt3d})


def test_aflw_reader_takes_the_reannotation_row_of_each_mat(tmp_path):
    rng = np.random.default_rng(1)
    fitted = rng.uniform(0, 400, (5, 3, 68))
    reannotated = rng.uniform(0, 400, (5, 2, 68))
    labels = tmp_path / "3ddfa_labels"
    labels.mkdir()
    np.save(labels / datasets.FITTED, fitted)
    np.save(labels / datasets.REANNOTATED, reannotated)
    img = np.zeros((450, 450, 3), np.uint8)
    _write_aflw(tmp_path / "prnet", "image00007", img, (0.1, 0.2, 0.3), fitted[3])  # a subset: row 3
    (s,) = datasets.aflw2000_samples(tmp_path / "prnet")
    np.testing.assert_allclose(s.pose, np.degrees([0.1, 0.2, 0.3]))
    assert s.label_source == "3DDFA re-annotation"
    np.testing.assert_allclose(s.faces[0], reannotated[3].T - 0.5)


def test_68_point_mapping_and_nme():
    assert len(real.MEDIAPIPE_TO_68) == 68 and real._PAIRS.max() < 468
    lm = np.random.default_rng(0).uniform(0, 100, (478, 3))
    p68 = real.to68(lm)
    np.testing.assert_allclose(p68[8], lm[152, :2])            # chin
    np.testing.assert_allclose(p68[27], (lm[168, :2] + lm[6, :2]) / 2)
    assert real.nme(p68, p68) == 0
    shifted = p68 + [3.0, 4.0]  # every point 5 px off
    assert real.nme(shifted, p68) == pytest.approx(500 / np.linalg.norm(p68[36] - p68[45]))


def test_six_point_baseline_recovers_the_pose_of_its_own_model():
    k = real.intrinsics(640, 480)
    truth = rotation_from_ypr(25, -10, 5)
    model = real.SIX_POINT_MODEL * [1, -1, -1] / 1000
    # the model's axes are a frontal face's: posed by truth @ FRONTAL.T
    cam = model @ (truth @ FRONTAL.T).T + [0.02, 0.01, 1.0]
    px = cam[:, :2] / cam[:, 2:] * k[0, 0] + k[:2, 2] + 0.5
    p68 = np.zeros((68, 2))
    p68[real.SIX_POINTS] = px
    assert angle_between(real.six_point_rotation(p68, k), truth) < 0.01


@pytest.fixture(scope="module")
def rendered_data(tmp_path_factory):
    """A data folder in the shared layout from renders of known pose: two AFLW-style stills
    (labels from the renderer's own projected landmarks) and a short video."""
    root = tmp_path_factory.mktemp("realdata")
    renderer = HeadRenderer()
    k = real.intrinsics(450, 450)
    for n, ypr in enumerate([(20, -10, 5), (-30, 10, -5)]):
        r = rotation_from_ypr(*ypr)
        rgb = renderer.render(r, np.array([0.0, 0.0, 0.45]), k, (450, 450))
        pyr = np.radians(datasets.aflw_angles(datasets.to_aflw(r)))
        lm = renderer.project_landmarks(r, np.array([0.0, 0.0, 0.45]), k)
        pt3d = np.vstack([(real.to68(lm) + 0.5).T, np.zeros(68)])  # 1-based, as the .mat files
        _write_aflw(root / "aflw2000" / "prnet", f"image{n:05d}", rgb, pyr, pt3d)
    video = root / "video"
    video.mkdir()
    writer = cv2.VideoWriter(str(video / "turning.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    k640 = real.intrinsics(640, 480)
    for i in range(20):
        frame = renderer.render(rotation_from_ypr(i - 10, 0, 0), np.array([0.0, 0.0, 0.6]), k640)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return root


def test_eval_real_on_renders_of_known_pose(rendered_data):
    r = real.run_real_eval(rendered_data, with_mediapipe=False, echo=lambda m: None)
    s = r["stills"]
    assert s["faces"] == 2 and s["landmarks"]["vtb"]["found"] == 2
    assert s["landmarks"]["vtb"]["nme68"] < 6, "the labels are the render's own landmarks"
    pose = s["pose"]["methods"]
    assert pose["vtb"]["n"] == 2 and pose["vtb"]["mae_mean"] < 5 and pose["vtb"]["geodesic_mean"] < 8, \
        "AFLW's angles of the rendered pose, read back through the same convention"
    assert pose["6-point PnP on the labels' 68"]["n"] == 2
    (v,) = r["videos"]
    assert v["frames"] == 20 and v["tracking"]["short"] == {"frames_found": 20, "ids": 1, "losses": 0,
                                                           "id_changes": 0}
    assert v["jitter"]["vtb"]["pose_filtered_deg"] is not None
    table = real.format_table(r)
    assert "head pose on 2 AFLW2000-3D faces" in table and "turning.mp4" in table and "goals:" in table


def test_cli_names_data_when_there_is_none(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "eval", "real", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--data" in r.stderr
