"""vtb's 52 ARKit blendshapes: the model fed as MediaPipe feeds it (checked against MediaPipe's
own Face Landmarker output, recorded by tools/record_blendshape_reference.py), the subject's
sides, renders of known state through vtb's own landmarks, and bad input."""
import json
from pathlib import Path

import numpy as np
import pytest

from vtb_gaze.blendshapes import LANDMARK_SUBSET, MODEL_OUTPUTS, NAMES, BlendshapeEstimator

REFERENCE = Path(__file__).with_name("data") / "blendshapes_mediapipe.json"


@pytest.fixture(scope="module")
def estimator():
    return BlendshapeEstimator()


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())["cases"]


def test_names_are_arkits_52():
    assert len(NAMES) == 52 and len(set(NAMES)) == 52
    assert NAMES[-1] == "tongueOut" and "_neutral" not in NAMES
    assert set(NAMES[:-1]) == set(MODEL_OUTPUTS[1:])
    for n in ("eyeBlinkLeft", "jawOpen", "mouthSmileRight", "browInnerUp", "cheekPuff", "noseSneerLeft"):
        assert n in NAMES
    assert len(LANDMARK_SUBSET) == 146 and LANDMARK_SUBSET.max() == 477


def test_mediapipes_own_landmarks_give_mediapipes_own_blendshapes(estimator, reference):
    """The landmark subset, its order and the pixel scaling are MediaPipe's: on its own points
    vtb's stage gives back what MediaPipe's Face Landmarker gave (measured: the subset reversed
    gives differences up to 0.87, normalised 0..1 coordinates of a 640x480 image up to 0.55)."""
    for case in reference:
        got = estimator.named(np.array(case["landmarks"]))
        want = case["blendshapes"]
        diff = max(abs(got[n] - want[n]) for n in NAMES[:-1])
        print(case["image"], f"max |diff| {diff:.4f}")
        assert diff < 0.01, case["image"]
        assert got["tongueOut"] == 0.0


def test_sides_are_the_subjects_own(reference, estimator):
    cases = {c["image"]: c for c in reference}
    left = estimator.named(np.array(cases["render_left_eye_shut"]["landmarks"]))
    right = estimator.named(np.array(cases["render_right_eye_shut"]["landmarks"]))
    # (MediaPipe's own, recorded: 0.52 / 0.10 and 0.08 / 0.33)
    assert left["eyeBlinkLeft"] > left["eyeBlinkRight"] + 0.3
    assert right["eyeBlinkRight"] > right["eyeBlinkLeft"] + 0.2


def test_renders_of_known_state_through_vtbs_landmarks(estimator):
    from vtb_detector.pipeline import FacePipeline
    from vtb_eval.render import HeadRenderer, default_intrinsics, pose_from_ypr
    k, size = default_intrinsics(640, 480), (640, 480)
    renderer, pipeline = HeadRenderer(), FacePipeline(max_faces=1)

    def shapes(yaw=0.0, **expression):
        rgb = renderer.render(pose_from_ypr(yaw, 0, 0), np.array([0.0, 0.0, 0.5]), k, size, **expression)
        faces = pipeline.process_still(rgb)
        assert faces
        return estimator.named(faces[0].landmarks)

    opened, closed = shapes(eyelids=(0, 0)), shapes(eyelids=(1, 1))
    assert opened["eyeBlinkLeft"] <= 0.3 and opened["eyeBlinkRight"] <= 0.3
    assert closed["eyeBlinkLeft"] >= 0.6 and closed["eyeBlinkRight"] >= 0.6
    wink = shapes(eyelids=(1, 0))      # the subject's left eye shut
    assert wink["eyeBlinkLeft"] > wink["eyeBlinkRight"] + 0.3
    jaw = [shapes(jaw=j)["jawOpen"] for j in (0.0, 0.5, 1.0)]
    assert jaw[0] < jaw[1] < jaw[2]
    rest = [shapes(yaw=y)["jawOpen"] for y in (-30, 0, 30)]
    assert max(rest) < jaw[0] + 0.05, "a head turn alone does not open the jaw"


def test_the_eyes_and_jaw_are_face_states_own():
    """agree_with_state: eyeBlink* and jawOpen come from the calibrated FaceState, the other 49
    stay the model's; values outside 0..1 are clipped."""
    from vtb_gaze.blendshapes import FROM_STATE, agree_with_state
    from vtb_gaze.face_state import FaceStateResult
    model = np.linspace(0.1, 0.6, len(NAMES)).astype(np.float32)
    state = FaceStateResult(eye_left_open=0.02, eye_right_open=0.7, mouth_open=1.3)
    out = dict(zip(NAMES, agree_with_state(model, state)))
    assert out["eyeBlinkLeft"] == pytest.approx(0.98) and out["eyeBlinkRight"] == pytest.approx(0.3)
    assert out["jawOpen"] == 1.0
    assert all(out[n] == pytest.approx(v) for n, v in zip(NAMES, model) if n not in FROM_STATE)


def test_bad_landmarks_give_none(estimator):
    good = np.array(json.loads(REFERENCE.read_text())["cases"][0]["landmarks"])
    assert estimator(good) is not None
    assert estimator(good[:468]) is None
    bad = good.copy()
    bad[LANDMARK_SUBSET[5]] = np.nan
    assert estimator(bad) is None
    bad[LANDMARK_SUBSET[5]] = np.inf
    assert estimator(bad) is None
    assert estimator(np.zeros(10)) is None
    values = estimator(good)
    assert values.shape == (52,) and values.dtype == np.float32 and ((0 <= values) & (values <= 1)).all()
