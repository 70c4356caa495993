"""The BlazeFace detector core: anchors, suppression, and faces in real photos."""
import numpy as np
import pytest

from vtb_detector.blazeface import CONFIGS, BlazeFaceDetector, generate_anchors, weighted_nms


def test_anchor_counts_and_layout_match_mediapipe():
    short = generate_anchors(CONFIGS["short"].anchors)
    full = generate_anchors(CONFIGS["full"].anchors)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short range: a 16x16 grid with 2 anchors per cell, then 8x8 with 6 per cell
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces():
    corners = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[:, :, 0] = corners[:, :1]
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    c, k, s = weighted_nms(corners, keypoints, scores, 0.3)
    assert len(c) == 2
    np.testing.assert_allclose(s, [0.9, 0.7])
    # the merged box is the score-weighted mean of the two overlapping ones
    np.testing.assert_allclose(c[0], (0.9 * corners[0] + 0.6 * corners[1]) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(k[0, 0, 0], (0.9 * 0.1 + 0.6 * 0.12) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(c[1], corners[2])


# The astronaut's face, checked by eye on the image with the box drawn: the box spans the
# face from brow to chin, the keypoints sit on the eyes, nose tip and mouth.
ASTRONAUT_FACE_CENTRE = (225.0, 128.0)


@pytest.mark.parametrize("model", ["short", "full"])
def test_finds_the_astronaut_face(model, astronaut_rgb):
    faces = BlazeFaceDetector(model).detect(astronaut_rgb)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.85
    assert np.linalg.norm(f.center - ASTRONAUT_FACE_CENTRE) < 12
    assert 80 < f.box[2] < 120 and 80 < f.box[3] < 120
    r_eye, l_eye, nose, mouth = f.keypoints[:4]
    assert r_eye[0] < nose[0] < l_eye[0], "subject's right eye is on the image's left"
    assert max(r_eye[1], l_eye[1]) < nose[1] < mouth[1], "eyes above nose above mouth"


def test_letterbox_maps_back_to_original_pixels(astronaut_rgb):
    """The same face in a wide and in a tall image is found at the shifted position."""
    # (one input pixel of the 192 x 192 model covers 4 image pixels here: tolerance 5 px)
    wide = np.zeros((512, 768, 3), np.uint8)
    wide[:, 128:640] = astronaut_rgb
    base = BlazeFaceDetector("full").detect(astronaut_rgb)[0]
    moved = BlazeFaceDetector("full").detect(wide)
    assert len(moved) == 1
    np.testing.assert_allclose(moved[0].center, base.center + [128, 0], atol=5)
    np.testing.assert_allclose(moved[0].box[2:], base.box[2:], rtol=0.1)
    tall = np.zeros((768, 512, 3), np.uint8)
    tall[200:712] = astronaut_rgb
    moved = BlazeFaceDetector("full").detect(tall)
    assert len(moved) == 1
    np.testing.assert_allclose(moved[0].center, base.center + [0, 200], atol=5)


def test_two_faces_side_by_side(astronaut_rgb):
    pair = np.concatenate([astronaut_rgb, astronaut_rgb[:, ::-1]], axis=1)
    faces = BlazeFaceDetector("full").detect(pair)
    assert len(faces) == 2
    xs = sorted(f.center[0] for f in faces)
    assert xs[0] < 512 < xs[1]


def test_no_face_in_a_blank_image():
    assert BlazeFaceDetector("short").detect(np.full((480, 640, 3), 127, np.uint8)) == []


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="short"):
        BlazeFaceDetector("medium")
