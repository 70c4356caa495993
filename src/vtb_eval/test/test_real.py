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
    np.testing.assert_allclose(s.fitted, fitted[3][:2].T - 0.5)   # the second labelling, kept beside


def test_aflw_reader_maps_names_to_rows_through_the_crop_list(tmp_path):
    """3DDFA's AFLW2000-3D_crop.list names each row: the re-annotated points come from the row of
    the image's name, even where the .mat's fitted points match no row (or another one)."""
    rng = np.random.default_rng(2)
    fitted = rng.uniform(0, 400, (6, 3, 68))
    reannotated = rng.uniform(0, 400, (6, 2, 68))
    labels = tmp_path / "aflw2000" / "3ddfa_labels"
    labels.mkdir(parents=True)
    np.save(labels / datasets.FITTED, fitted)
    np.save(labels / datasets.REANNOTATED, reannotated)
    names = ["image00001", "image00003", "image00010", "image00002", "image00022", "image00005"]
    (tmp_path / "aflw2000" / datasets.CROP_LIST).write_text("".join(f"{n}.jpg\n" for n in names))
    img = np.zeros((450, 450, 3), np.uint8)
    # image00010 is on row 2; its .mat's fitted points are row 4's (sorted order or matching
    # would pick another row)
    _write_aflw(tmp_path / "aflw2000" / "dev", "image00010", img, (0.1, 0.2, 0.3), fitted[4])
    _write_aflw(tmp_path / "aflw2000" / "dev", "image00002", img, (0.1, 0.2, 0.3), rng.uniform(0, 400, (3, 68)))
    _write_aflw(tmp_path / "aflw2000" / "prnet", "image00005", img, (0.0, 1.9, 0.0), fitted[5])
    samples = datasets.real_data_samples(tmp_path)
    by_name = {s.image.stem: s for s in samples}
    assert set(by_name) == {"image00010", "image00002", "image00005"}
    np.testing.assert_allclose(by_name["image00010"].faces[0], reannotated[2].T - 0.5)
    np.testing.assert_allclose(by_name["image00002"].faces[0], reannotated[3].T - 0.5)
    np.testing.assert_allclose(by_name["image00005"].faces[0], reannotated[5].T - 0.5)
    assert all(s.label_source == "3DDFA re-annotation" for s in samples)
    # dev/ and prnet/ are read, each its own set: together the development half
    assert by_name["image00010"].set == "AFLW2000-3D dev" and by_name["image00005"].set == "AFLW2000-3D prnet"
    assert real.aflw_label(s.set for s in samples) == "AFLW2000-3D dev half"


def test_pose_protocol_drops_labels_over_99_degrees_bands_by_yaw_and_counts_misses():
    # pitch, yaw, roll labels: two over 99 degrees (dropped), the rest in the three |yaw| bands
    labels = np.array([[5, 10, 0], [-10, -29.9, 3], [0, 30, 0], [2, -45, 1], [0, 59, 0], [3, 60, -2],
                       [0, -85, 0], [120, 20, 0], [0, 10, -100.5], [0, -99, 0]], float)
    over = real.over_limit(labels)
    assert over.tolist() == [False] * 7 + [True, True, False], "|pitch| 120 and |roll| 100.5 over 99; 99 itself kept"
    kept = labels[~over]
    assert real.yaw_band(kept[:, 1]).tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    assert real.band_names() == ["0-30", "30-60", "60-90"]
    # a method 2 degrees off in yaw; it missed the second face (band 0-30) and the last two
    # (band 60-90)
    pred = kept + [0, 2, 0]
    pred[[1, 6, 7]] = np.nan
    r = real.score_pose(kept, pred, sets=["a"] * 4 + ["b"] * 4)
    assert (r["n"], r["missed"], r["missed_pct"]) == (5, 3, 37.5)
    assert r["mae_yaw"] == pytest.approx(2) and r["mae_pitch"] == 0 and r["mae_mean"] == pytest.approx(2 / 3)
    assert r["bands"]["0-30"] == {"faces": 2, "n": 1, "missed": 1, "missed_pct": 50.0, "mae_mean": pytest.approx(2 / 3)}
    assert (r["bands"]["30-60"]["faces"], r["bands"]["30-60"]["missed"]) == (3, 0)
    assert (r["bands"]["60-90"]["faces"], r["bands"]["60-90"]["n"], r["bands"]["60-90"]["missed"]) == (3, 1, 2)
    assert r["by_set"]["b"] == {"faces": 4, "n": 2, "mae_mean": pytest.approx(2 / 3)}
    assert r["errors"][1] is None and r["errors"][0] == [0, 2, 0]
    # the error wraps: 179 against -179 is 2 degrees
    assert real.score_pose([[0, 0, 179]], [[0, 0, -179]])["mae_roll"] == pytest.approx(2)


def test_the_pose_corrections_are_swept_around_the_estimators_defaults():
    class Estimator:
        def __init__(self, turn_gain: float = 0.2, pixel_weight: float = 0.6):
            pass
    assert real.correction_steps(Estimator, "turn_gain") == (0.0, 0.1, 0.2, 0.3, 0.4)
    assert real.correction_steps(Estimator, "pixel_weight") == (0.0, 0.3, 0.6, 0.9, 1.0)  # a weight stops at 1
    assert real.correction_steps(lambda method="x": None, "turn_gain") == ()


def test_depth_scale_leave_one_out_is_vectorised_and_follows_the_estimator():
    class Estimator:
        def __init__(self, depth_scale: float = 0.8):
            pass
    scales = real.depth_scales(Estimator)
    assert 0.8 in scales and len(scales) == 7 and scales == tuple(sorted(scales))
    assert real.depth_scales(lambda method="x": None) == ()
    rng = np.random.default_rng(3)
    truth = rng.uniform(-60, 60, (2000, 3))
    preds = {d: truth + rng.normal(0, 1 + abs(d - 1.1) * 10, truth.shape) for d in (1.0, 1.1, 1.2)}
    preds[1.2][5] = np.nan  # a miss: that face is left out of the choice
    r = real.leave_one_out(preds, truth)
    assert r["faces"] == 1999 and r["picked"] == [1.1]
    assert r["mae_mean"] == pytest.approx(np.abs(np.delete(preds[1.1] - truth, 5, 0)).mean(), rel=1e-9)


def test_sample_size_warning_only_for_a_small_sample(rendered_eval):
    assert "16 AFLW2000-3D images are far too few" in real.sample_size_note(16)
    assert real.sample_size_note(500) is None and real.sample_size_note(0) is None
    r = json.loads(json.dumps(rendered_eval))
    assert "3 AFLW2000-3D images are far too few" in real.format_table(r)
    r["stills"]["pose"]["faces"] = 500
    assert "too few" not in real.format_table(r)
    r["stills"]["pose"]["faces"] = 16
    assert "16 AFLW2000-3D images are far too few" in real.format_table(r)


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



def test_pose_jitter_on_still_frames_is_the_noise_not_the_turn():
    """A head that holds still, shakes (+-20 degrees, 0.6 s a swing) for most of the clip, holds
    still again (25 fps). Method a: noisy pose, smoothed through the shake; method b: steadier
    when still, following the shake as it is. Over all frames the shake's own second differences
    make b look worse; on the still frames, the same for both methods, b is the steadier."""
    rng = np.random.default_rng(0)
    t = np.arange(45)
    yaw = np.concatenate([np.zeros(15), 20 * np.sin(2 * np.pi * t / 15), np.zeros(15)])
    gentle = np.convolve(np.pad(yaw, 3, mode="edge"), np.ones(7) / 7, mode="valid")
    a = np.column_stack([gentle + rng.normal(0, 0.3, len(yaw)), rng.normal(0, 0.3, (len(yaw), 2))])
    b = np.column_stack([yaw + rng.normal(0, 0.1, len(yaw)), rng.normal(0, 0.1, (len(yaw), 2))])
    a[70] = np.nan   # a frame without a face: no second difference straddles it
    still = real.still_frames([a, b], 25.0)
    assert not still[15:60].any(), "no frame of the shake is still, not even where it turns"
    assert still[:9].all() and still[67:70].all() and not still[70]
    everything, at_rest = real._pose_jitter(b), real._pose_jitter(b, still)
    assert real._pose_jitter(a)[0] < everything[0], "over all frames the shake counts as jitter"
    assert at_rest[0] < real._pose_jitter(a, still)[0] and at_rest[0] < 0.5


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
        if n == 0:  # the same face in dev/, its pitch label over 99 degrees: dropped from the pose
            _write_aflw(root / "aflw2000" / "dev", "image00100", rgb, (np.radians(105), *pyr[1:]), pt3d)
    video = root / "video"
    video.mkdir()
    writer = cv2.VideoWriter(str(video / "turning.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    k640 = real.intrinsics(640, 480)
    for i in range(20):
        frame = renderer.render(rotation_from_ypr(i - 10, 0, 0), np.array([0.0, 0.0, 0.6]), k640)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return root


@pytest.fixture(scope="module")
def rendered_eval(rendered_data):
    return real.run_real_eval(rendered_data, with_mediapipe=False, echo=lambda m: None)


def test_eval_real_on_renders_of_known_pose(rendered_eval):
    r = rendered_eval
    s = r["stills"]
    assert s["faces"] == 3 and s["landmarks"]["vtb"]["found"] == 3
    assert s["landmarks"]["vtb"]["nme68"] < 6, "the labels are the render's own landmarks"
    assert set(s["by_set"]) == {"AFLW2000-3D dev", "AFLW2000-3D prnet"}
    assert s["aflw"]["name"] == "AFLW2000-3D dev half" and s["aflw"]["faces"] == 3
    # the protocol: the image labelled over 99 degrees is dropped from the pose, and counted
    p = s["pose"]
    assert (p["faces"], p["dropped"], p["kept"], p["dropped_images"]) == (3, 1, 2, ["image00100.jpg"])
    pose = p["methods"]
    assert pose["vtb"]["n"] == 2 and pose["vtb"]["missed"] == 0 and pose["vtb"]["mae_mean"] < 5 \
        and pose["vtb"]["geodesic_mean"] < 8, "AFLW's angles of the rendered pose, read back through the same convention"
    assert pose["6-point PnP on the labels' 68"]["n"] == 2
    assert pose["vtb"]["bands"]["0-30"]["faces"] == 2 and p["bands"] == {"0-30": 2, "30-60": 0, "60-90": 0}
    assert p["depth_scale_loo"]["faces"] == 2
    assert any(k.startswith("missed <= 2 %") for k in r["goals"])
    (v,) = r["videos"]
    assert v["frames"] == 20 and v["tracking"]["short"] == {"frames_found": 20, "ids": 1, "losses": 0,
                                                           "id_changes": 0}
    assert v["jitter"]["vtb"]["pose_filtered_deg"] is not None
    table = real.format_table(r)
    assert "head pose on AFLW2000-3D dev half: 3 faces, 1 dropped" in table and "turning.mp4" in table
    assert "goals:" in table and "HopeNet 6.16" in table and "60-90 (0 faces)" in table
    # the two AFLW-style renders within 45 degrees of yaw, held still with pixel noise
    h = r["held_still"]
    assert (h["photos"], h["frames"]) == (2, real.HELD_STILL["frames"]) and "real faces held still" in table
    assert all(0 < v < 1 for v in h["median_deg"]["vtb"]), "noise moves the pose a little, never 0"


def test_held_still_jitter_measures_the_noise(rendered_data):
    """The same photos without pixel noise hold the pose steadier than with twice the default:
    what is measured is the noise's effect, not a constant of the pipeline."""
    from vtb_detector.landmarks import DEFAULT_LANDMARK_MODEL
    samples = datasets.real_data_samples(rendered_data)
    quiet, noisy = (real.held_still_jitter(samples, "short", DEFAULT_LANDMARK_MODEL, False, lambda m: None,
                                           frames=16, sigma=s) for s in (0.0, 2 * real.HELD_STILL["sigma"]))
    assert quiet["photos"] == noisy["photos"] == 2
    assert all(a < b for a, b in zip(quiet["median_deg"]["vtb"], noisy["median_deg"]["vtb"]))


def test_paired_difference_tells_a_noisier_method_from_chance():
    rng = np.random.default_rng(1)
    steady = rng.uniform(0.01, 0.03, (60, 3))
    noisier = steady * 2 + rng.normal(0, 0.003, (60, 3))
    jiggle = rng.normal(0, 0.01, (60, 3))
    same = steady + jiggle - jiggle.mean(axis=0)   # differences that average exactly 0
    d = real.paired_difference(steady, noisier, rng)
    assert d["items"] == 60 and all(hi < 0 for hi in d["ci95"][1]) and d["items_lower"] == [60, 60, 60]
    d = real.paired_difference(steady, same, rng)
    assert all(lo < 0 < hi for lo, hi in zip(*d["ci95"])), "no difference: the interval spans 0"


def test_cli_names_data_when_there_is_none(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "eval", "real", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--data" in r.stderr
