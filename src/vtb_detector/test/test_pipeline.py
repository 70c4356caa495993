"""Landmarks and tracking: accuracy against MediaPipe's own output, stable ids, loss and
re-identification, several faces."""
import json
from pathlib import Path

import numpy as np
import pytest

from vtb_detector.landmarks import EYE_CONTOUR_TO_MESH, Roi
from vtb_detector.pipeline import FacePipeline
from vtb_eval.clip import astronaut_clip

# MediaPipe FaceMesh 0.10.21 (refine_landmarks=True, static image mode) on the astronaut,
# recorded once by tools/record_mediapipe_reference.py; see the file's "how".
REFERENCE = json.loads((Path(__file__).parent / "data" / "astronaut_mediapipe_478.json").read_text())
REF_478 = np.asarray(REFERENCE["landmarks_478"], np.float32)


def distances(landmarks, reference):
    return np.linalg.norm(landmarks[:, :2] - reference[:, :2], axis=1)


@pytest.mark.parametrize("backend, threads", [("litert", 1), ("litert", 2), ("onnxruntime", 1)])
def test_landmarks_match_mediapipe_on_a_real_photo(astronaut_rgb, backend, threads):
    pipeline = FacePipeline(backend=backend, threads=threads)
    faces = pipeline.process(astronaut_rgb)
    assert len(faces) == 1 and faces[0].landmarks.shape == (478, 3)
    d = distances(faces[0].landmarks, REF_478)
    print(f"{backend}/{threads}: mean {d.mean():.2f} px, iris {d[468:].mean():.2f} px, max {d.max():.2f} px")
    assert d.mean() < 2.0, "mean landmark distance to MediaPipe within 2 px"
    assert d[468:].mean() < 1.0, "iris points within 1 px"
    assert np.percentile(d, 95) < 3.5
    assert faces[0].presence > 0.9 and not faces[0].tracked


def test_iris_points_follow_mediapipe_layout(astronaut_rgb):
    lm = FacePipeline().process(astronaut_rgb)[0].landmarks
    # 468..472: the subject's right eye (image left), 473..477 the left; rim point 1 to the
    # image's right of its centre and point 3 to its left, for both eyes
    assert lm[468, 0] < lm[473, 0]
    for c in (468, 473):
        assert lm[c + 1, 0] > lm[c, 0] > lm[c + 3, 0]
        assert lm[c + 2, 1] < lm[c, 1] < lm[c + 4, 1]
    # the eye contours were replaced by the iris model's, near the mesh's own
    for e in range(2):
        assert np.isfinite(lm[EYE_CONTOUR_TO_MESH[e]]).all()


def test_tracking_follows_a_moving_face_with_one_id():
    """The clip's known motion carries MediaPipe's reference points into each frame: the
    tracked landmarks must follow them, with one id and the detector skipped."""
    pipeline = FacePipeline(redetect_every=30, threads=2)
    errors, ids, tracked = [], set(), []
    for i, (frame, m) in enumerate(astronaut_clip(90)):
        faces = pipeline.process(frame)
        assert len(faces) == 1, f"frame {i}"
        ids.add(faces[0].id)
        tracked.append(faces[0].tracked)
        expected = REF_478[:, :2] @ m[:, :2].T + m[:, 2]
        errors.append(distances(faces[0].landmarks, expected).mean())
    assert len(ids) == 1
    assert tracked[0] is False and all(tracked[1:])
    errors = np.array(errors)
    print(f"landmark error vs moved reference: median {np.median(errors):.2f} px, max {errors.max():.2f} px")
    assert np.median(errors) < 2.5 and errors.max() < 4.0


def test_detector_runs_only_every_n_frames_while_tracking():
    pipeline = FacePipeline(redetect_every=10)
    detected = []
    for frame, _ in astronaut_clip(35):
        pipeline.process(frame)
        detected.append(pipeline.timings["detect"] > 0)
    assert [i for i, d in enumerate(detected) if d] == [0, 11, 22, 33]


def test_a_lost_face_comes_back_with_a_new_id(astronaut_rgb):
    """Gone for longer than keep_id_frames: a new face (a short gap keeps the id, see
    test_face_recovery.py)."""
    pipeline = FacePipeline()
    first = pipeline.process(astronaut_rgb)[0].id
    assert pipeline.process(astronaut_rgb)[0].id == first
    blank = np.full_like(astronaut_rgb, 90)
    for _ in range(pipeline.keep_id_frames + 1):
        assert pipeline.process(blank) == []
    again = pipeline.process(astronaut_rgb)
    assert len(again) == 1 and again[0].id != first


def test_two_faces_tracked_with_distinct_stable_ids(astronaut_rgb):
    pair = np.concatenate([astronaut_rgb, astronaut_rgb[:, ::-1]], axis=1)
    pipeline = FacePipeline(detector="full", max_faces=2)
    seen = []
    for shift in range(0, 40, 4):
        frame = np.roll(pair, shift, axis=1)
        faces = pipeline.process(frame)
        assert len(faces) == 2
        seen.append({f.id: f.box[0] for f in faces})
    assert all(set(s) == set(seen[0]) for s in seen), "the same two ids on every frame"
    first, last = seen[0], seen[-1]
    for fid in first:  # each id stays with its face: both moved right by 36 px
        assert 30 < last[fid] - first[fid] < 42


def test_max_faces_caps_the_tracks(astronaut_rgb):
    pair = np.concatenate([astronaut_rgb, astronaut_rgb[:, ::-1]], axis=1)
    assert len(FacePipeline(detector="full", max_faces=1).process(pair)) == 1


@pytest.mark.parametrize("flip", [False, True])
def test_roi_maps_crop_and_image_coordinates_both_ways(flip):
    roi = Roi(100.0, 80.0, 50.0, 0.3)
    pts = np.random.default_rng(1).uniform(0, 64, (20, 3)).astype(np.float32)
    back = roi.to_image(pts, 64, flip)
    m = roi.edge_affine(64, flip)
    np.testing.assert_allclose(back[:, :2] @ m[:, :2].T + m[:, 2], pts[:, :2], atol=1e-3)
    np.testing.assert_allclose(back[:, 2], pts[:, 2] * 50 / 64, rtol=1e-6)
    # the crop's centre is the ROI's centre
    np.testing.assert_allclose(roi.to_image(np.array([[32.0, 32.0]]), 64, flip)[0], [100, 80], atol=1e-4)


def test_landmark_models_give_the_same_layout_and_the_landmarker_runs_on_both_backends(astronaut_rgb):
    mesh = FacePipeline(backend="litert", landmark_model="face_mesh")
    assert mesh.mesh.model == "face_mesh" and mesh.iris is not None
    landmarker = FacePipeline(backend="litert", landmark_model="face_landmarker")
    assert landmarker.mesh.points == 478 and landmarker.mesh.size == 256 and landmarker.iris is None
    with pytest.raises(ValueError, match="landmark_model"):
        FacePipeline(landmark_model="dlib")
    # both give MediaPipe's 478-point layout on the same face, close to each other and to
    # MediaPipe's own
    a = landmarker.process(astronaut_rgb)[0].landmarks
    b = mesh.process(astronaut_rgb)[0].landmarks
    assert a.shape == b.shape == (478, 3)
    assert np.median(distances(a, b)) < 3.0 and distances(a[468:], b[468:]).mean() < 2.0
    assert np.median(distances(a, REF_478)) < 3.0
    # the Face Landmarker on ONNX Runtime (its ONNX file converted at fetch time): the same points
    on_ort = FacePipeline(backend="onnxruntime", landmark_model="face_landmarker")
    assert on_ort.mesh.runner.backend == "onnxruntime" and on_ort.mesh.points == 478
    faces = on_ort.process(astronaut_rgb)
    assert len(faces) == 1 and faces[0].presence > 0.9
    assert np.abs(faces[0].landmarks - a).max() < 0.01, "within 0.01 px of LiteRT's in the image"

def test_a_still_is_processed_the_same_whatever_came_before(astronaut_rgb):
    pipeline = FacePipeline(max_faces=5)
    first = pipeline.process_still(astronaut_rgb)
    pipeline.process_still(astronaut_rgb[:, ::-1].copy())  # another image in between
    again = pipeline.process_still(astronaut_rgb)
    assert len(first) == len(again) == 1
    np.testing.assert_allclose(first[0].landmarks, again[0].landmarks, atol=1e-4)
    # the second pass starts from the first pass's landmarks, so it differs from one pass
    one = pipeline.process_still(astronaut_rgb, passes=1)[0].landmarks
    assert 0 < np.abs(one - first[0].landmarks).max()
    assert set(pipeline.timings) >= {"detect", "landmarks", "total"}


def test_mirror_permutation_maps_the_metric_face_onto_its_mirror_image():
    from vtb_detector.landmarks import MIDLINE, mirror_permutation
    from vtb_pose.face_model import load_metric_face
    perm = mirror_permutation(478)
    assert (perm[perm] == np.arange(478)).all() and sorted(perm) == list(range(478))
    face = load_metric_face()[:468]            # face frame: y is the subject's left
    mirrored = face * [1.0, -1.0, 1.0]
    assert np.abs(face[perm[:468]] - mirrored).max() < 1e-6
    assert set(np.flatnonzero(perm[:468] == np.arange(468))) == set(MIDLINE)
    assert list(perm[468:]) == [473, 476, 475, 474, 477, 468, 471, 470, 469, 472]


def test_a_mirrored_crop_agrees_on_a_frontal_face_and_its_average_is_kept(astronaut_rgb):
    plain = FacePipeline().process_still(astronaut_rgb, mirror=False)
    both = FacePipeline().process_still(astronaut_rgb)           # mirror by default on stills
    assert len(plain) == len(both) == 1
    assert plain[0].mirror_disagreement is None
    assert 0 < both[0].mirror_disagreement < 0.02                 # measured 0.005
    # the average moves the points a little, not the face: within 3 px (face about 190 px)
    shift = np.linalg.norm(both[0].landmarks[:, :2] - plain[0].landmarks[:, :2], axis=1)
    assert 0 < np.median(shift) < 3.0
    # the irises are renumbered too: each stays on its own eye
    right, left = both[0].landmarks[468, :2], both[0].landmarks[473, :2]
    assert np.linalg.norm(right - plain[0].landmarks[468, :2]) < 3.0 and right[0] < left[0]


def test_a_still_whose_mirror_disagrees_is_dropped(astronaut_rgb):
    strict = FacePipeline(max_mirror_disagreement=0.0)
    assert strict.process_still(astronaut_rgb) == []
    assert len(strict.process_still(astronaut_rgb, mirror=False)) == 1   # nothing to disagree with
    assert strict.mesh.mirror is False      # the mirrored pass does not leak into tracking
    assert len(strict.process(astronaut_rgb)) == 1
