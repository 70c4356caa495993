"""Gaze geometry on exact synthetic projections: known angles come back, closed and turned-away
eyes are handled, calibration learns an offset, the REP-155 gaze frame has the right axes."""
import numpy as np
import pytest

from vtb_gaze.gaze import (LEFT, RIGHT, IRIS_CENTRE, GazeEstimator, direction_from_angles, gaze_frame_rotation,
                           head_relative_angles)
from vtb_pose.face_model import load_face_model
from vtb_pose.frames import rotation_from_ypr
from vtb_pose.pnp import default_intrinsics

K = default_intrinsics(640, 480)


def landmarks_for(est, rotation, t, gaze_per_eye):
    """478 landmarks (only the iris centres matter) for eyes looking at head-relative angles."""
    lm = np.zeros((478, 2))
    centres = est.eyeball_centres_face()
    for e, (yaw, pitch) in enumerate(gaze_per_eye):
        iris_face = centres[e] + est.eyeball_radius * direction_from_angles(yaw, pitch)
        p = K @ (rotation @ iris_face + t)
        lm[IRIS_CENTRE[e]] = p[:2] / p[2] + 0.5   # vtb's pixels: the image edge at 0
    return lm


@pytest.fixture
def est():
    return GazeEstimator(load_face_model())


def test_angle_helpers_round_trip():
    for yaw, pitch in [(0, 0), (25, -10), (-30, 20)]:
        assert np.allclose(head_relative_angles(direction_from_angles(yaw, pitch)), (yaw, pitch))
    assert direction_from_angles(20, 0)[1] > 0, "yaw > 0 looks to the subject's left (+y)"
    assert direction_from_angles(0, 20)[2] < 0, "pitch > 0 looks down (-z)"


@pytest.mark.parametrize("head", [(0, 0, 0), (25, -10, 8), (-20, 15, -10)])
@pytest.mark.parametrize("gaze", [(0, 0), (20, 0), (-15, 10), (10, -20)])
def test_known_gaze_comes_back(est, head, gaze):
    rotation, t = rotation_from_ypr(*head), np.array([0.02, -0.01, 0.6])
    r = est.estimate(landmarks_for(est, rotation, t, [gaze, gaze]), rotation, t, K)
    for eye in r.eyes:
        assert eye.valid
        assert np.allclose((eye.yaw_deg, eye.pitch_deg), gaze, atol=1e-6)
        assert np.isclose(np.linalg.norm(eye.direction), 1.0)
    assert np.allclose((r.yaw_deg, r.pitch_deg), gaze, atol=1e-6)
    # in the camera frame: the head's rotation applied to the head-relative direction
    assert np.allclose(r.direction, rotation @ direction_from_angles(*gaze), atol=1e-9)


def test_a_closed_eye_is_invalid_and_the_other_eye_decides(est):
    rotation, t = rotation_from_ypr(0, 0, 0), np.array([0.0, 0.0, 0.6])
    lm = landmarks_for(est, rotation, t, [(15, 5), (-30, 20)])  # the left eye's iris is wrong...
    r = est.estimate(lm, rotation, t, K, openness=(0.9, 0.05))  # ...because the left eye is closed
    assert r.eyes[RIGHT].valid and not r.eyes[LEFT].valid
    assert np.allclose((r.yaw_deg, r.pitch_deg), (15, 5), atol=1e-6)
    both_closed = est.estimate(lm, rotation, t, K, openness=(0.0, 0.0))
    assert not both_closed.valid
    assert np.allclose(both_closed.direction, rotation[:, 0]), "unknown gaze follows the face's x axis"


def test_an_eye_turned_away_loses_confidence(est):
    t = np.array([0.0, 0.0, 0.6])
    frontal = est.estimate(landmarks_for(est, rotation_from_ypr(0, 0, 0), t, [(0, 0)] * 2),
                           rotation_from_ypr(0, 0, 0), t, K)
    turned_rot = rotation_from_ypr(70, 0, 0)
    turned = est.estimate(landmarks_for(est, turned_rot, t, [(0, 0)] * 2), turned_rot, t, K)
    assert frontal.eyes[RIGHT].confidence > 0.9
    assert turned.eyes[RIGHT].confidence < 0.5 * frontal.eyes[RIGHT].confidence


def test_look_at_the_camera_calibration_learns_the_offset(est):
    rotation, t = rotation_from_ypr(10, -5, 0), np.array([0.03, 0.0, 0.6])
    centres = est.eyeball_centres_face() @ rotation.T + t
    # the user's eyes read 3 deg left and 2 deg down of where they really look
    at_camera = [head_relative_angles(rotation.T @ (-c / np.linalg.norm(c))) for c in centres]
    biased = [(y + 3, p + 2) for y, p in at_camera]
    lm = landmarks_for(est, rotation, t, biased)
    est.start_calibration()
    for _ in range(est.calibration_frames):
        est.estimate(lm, rotation, t, K)
    assert not est.calibrating
    assert np.allclose(est.offsets, [[3, 2], [3, 2]], atol=1e-6)
    r = est.estimate(landmarks_for(est, rotation, t, [(23, 2)] * 2), rotation, t, K)
    assert np.allclose((r.eyes[RIGHT].yaw_deg, r.eyes[RIGHT].pitch_deg), (20, 0), atol=1e-6)


def test_gaze_frame_axes():
    face = rotation_from_ypr(0, 0, 0)
    g = gaze_frame_rotation(face[:, 0], face)  # looking straight at the camera
    assert np.allclose(g.T @ g, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(g), 1)
    assert np.allclose(g[:, 2], face[:, 0]), "z along the gaze"
    assert np.allclose(g[:, 1], -face[:, 2]), "y down"
    assert np.allclose(g[:, 0], -face[:, 1]), "x to the subject's right"


def _finite_result(r):
    return (np.all(np.isfinite(r.direction)) and np.all(np.isfinite(r.origin)) and np.isfinite(r.yaw_deg)
            and np.isfinite(r.pitch_deg) and all(np.all(np.isfinite(e.direction)) and np.isfinite(e.yaw_deg)
                                                 and np.isfinite(e.confidence) for e in r.eyes))


@pytest.mark.parametrize("bad", ["iris", "rotation", "translation", "behind", "openness"])
def test_one_nan_input_does_not_poison_the_calibration(est, bad):
    """A NaN iris landmark, pose or openness in the middle of "look at the camera": that frame
    is an invalid, finite result and is not learned from; the offsets and the next good frames
    are right (before: NaN offsets for good)."""
    rotation, t = rotation_from_ypr(10, -5, 0), np.array([0.03, 0.0, 0.6])
    centres = est.eyeball_centres_face() @ rotation.T + t
    at_camera = [head_relative_angles(rotation.T @ (-c / np.linalg.norm(c))) for c in centres]
    lm = landmarks_for(est, rotation, t, [(y + 3, p + 2) for y, p in at_camera])
    est.start_calibration()
    for i in range(est.calibration_frames + 1):
        if i == 3:
            lm_b, rot_b, t_b, open_b = lm.copy(), rotation.copy(), t.copy(), (1.0, 1.0)
            if bad == "iris":
                lm_b[IRIS_CENTRE[LEFT]] = np.nan
            elif bad == "rotation":
                rot_b[0, 0] = np.nan
            elif bad == "translation":
                t_b[0] = np.inf
            elif bad == "behind":
                t_b[2] = -0.6
            else:
                open_b = (np.nan, 1.0)
            r = est.estimate(lm_b, rot_b, t_b, K, openness=open_b)
            assert _finite_result(r) and (bad == "openness" or not r.valid) and est.rejected >= (bad != "openness")
            continue
        est.estimate(lm, rotation, t, K)
    assert not est.calibrating
    assert np.allclose(est.offsets, [[3, 2], [3, 2]], atol=1e-6)
    r = est.estimate(landmarks_for(est, rotation, t, [(23, 2)] * 2), rotation, t, K)
    assert _finite_result(r) and r.valid
    assert np.allclose((r.eyes[RIGHT].yaw_deg, r.eyes[RIGHT].pitch_deg), (20, 0), atol=1e-6)
