"""The pose core: Euler conventions, PnP recovery, outlier rejection, One-Euro filtering."""
import cv2
import numpy as np
import pytest

from vtb_pose.face_model import face_frame, load_face_model, to_face_frame
from vtb_pose.filters import OneEuroQuaternion, OneEuroVector, PoseFilter, quaternion_angle
from vtb_pose.frames import FRONTAL, angle_between, quaternion_wxyz, rotation_from_ypr, ypr_from_rotation
from vtb_pose.pnp import HeadPoseEstimator, default_intrinsics

K = default_intrinsics(640, 480)


def project(model, rotation, t):
    pts, _ = cv2.projectPoints(model, cv2.Rodrigues(rotation)[0], np.asarray(t, float), K, None)
    return pts.reshape(-1, 2) + 0.5  # vtb's pixel convention: the image edge at 0


def test_ypr_signs_follow_the_message_definition():
    assert np.allclose(rotation_from_ypr(0, 0, 0), FRONTAL)
    # columns: the face's forward, left, up axes in the optical frame (x right, y down, z forward)
    assert rotation_from_ypr(20, 0, 0)[0, 0] > 0.3, "yaw > 0: the face turns to the image's right"
    assert rotation_from_ypr(0, 20, 0)[1, 0] > 0.3, "pitch > 0: the face looks down"
    assert rotation_from_ypr(0, 0, 20)[1, 1] < -0.3, "roll > 0: the face's left side goes up"
    for ypr in [(30, -20, 10), (-45, 30, -30), (5, 0, 0)]:
        np.testing.assert_allclose(ypr_from_rotation(rotation_from_ypr(*ypr)), ypr, atol=1e-9)


def test_face_model_is_metric_and_in_its_own_frame():
    model = load_face_model(0.063)
    assert abs(np.linalg.norm(model[473] - model[468]) - 0.063) < 1e-9
    origin, rot = face_frame(model)
    np.testing.assert_allclose(origin, 0, atol=1e-9)
    np.testing.assert_allclose(rot, np.eye(3), atol=1e-9)
    assert model[1, 0] > 0.02, "the nose tip is in front of the eyes"
    assert model[152, 2] < -0.08 and model[10, 2] > 0.03, "chin below, forehead above"
    assert model[473, 1] > 0 > model[468, 1], "the left eye on +y"
    # scaling by the pupil distance
    np.testing.assert_allclose(load_face_model(0.07), model * 0.07 / 0.063)


def test_to_face_frame_undoes_any_pose():
    model = load_face_model()
    posed = model @ rotation_from_ypr(25, -15, 10).T + [0.1, -0.05, 0.7]
    np.testing.assert_allclose(to_face_frame(posed, 0.063), model, atol=1e-9)


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, -10, 5), (-45, 30, -30), (45, -30, 30)])
def test_pnp_recovers_a_known_pose(ypr):
    # exact points: the solver alone, without the turn the landmark model reads short
    est = HeadPoseEstimator(turn_gain=0.0)
    rotation, t = rotation_from_ypr(*ypr), [0.03, -0.02, 0.65]
    e = est.estimate(project(est.model, rotation, t), K)
    assert angle_between(e.rotation, rotation) < 1e-3
    np.testing.assert_allclose(e.translation, t, atol=1e-5)
    assert e.reprojection_error_px < 1e-3
    # and from the previous pose as the initial guess, as while tracking
    near = rotation_from_ypr(ypr[0] + 3, ypr[1] - 2, ypr[2])
    e2 = est.estimate(project(est.model, near, t), K, guess=e)
    assert angle_between(e2.rotation, near) < 1e-3


def test_outlier_landmarks_are_dropped():
    est = HeadPoseEstimator()
    rotation, t = rotation_from_ypr(20, 10, -5), [0.0, 0.0, 0.6]
    pts = project(est.model, rotation, t) + np.random.default_rng(0).normal(0, 0.5, (478, 2))
    corrupt = pts.copy()
    corrupt[est.indices[:12]] += 40  # twelve landmarks far off
    clean_err = angle_between(est.estimate(pts, K).rotation, rotation)
    e = est.estimate(corrupt, K)
    assert e.landmark_count <= len(est.indices) - 12
    assert angle_between(e.rotation, rotation) < clean_err + 0.5


def test_one_euro_vector_smooths_noise_and_follows_motion():
    rng = np.random.default_rng(1)
    f = OneEuroVector(min_cutoff=0.5, beta=2.0)
    still = [f(np.array([0.0, 0.0, 0.6]) + rng.normal(0, 0.002, 3), i / 30) for i in range(300)]
    assert np.std(np.array(still)[100:, 0]) < 0.3 * 0.002
    # a 10 cm move at 0.5 m/s: followed within a few frames of its end
    x = 0.0
    for i in range(300, 330):
        x = min(0.1, x + 0.5 / 30)
        out = f(np.array([x, 0.0, 0.6]), i / 30)
    assert abs(out[0] - 0.1) < 0.01


def test_one_euro_quaternion_smooths_noise_and_keeps_fast_turns():
    rng = np.random.default_rng(2)
    f = OneEuroQuaternion(min_cutoff=0.5, beta=0.5)
    truth = quaternion_wxyz(rotation_from_ypr(10, 5, 0))
    raw_err, filt_err = [], []
    for i in range(300):
        noisy = quaternion_wxyz(rotation_from_ypr(10 + rng.normal(0, 0.5), 5 + rng.normal(0, 0.5), 0))
        out = f(noisy, i / 30)
        if i > 100:
            raw_err.append(quaternion_angle(noisy, truth))
            filt_err.append(quaternion_angle(out, truth))
    assert np.mean(filt_err) < 0.35 * np.mean(raw_err)
    # a 40 degree turn in half a second: within 3 degrees a few frames after it ends
    for i in range(300, 330):
        yaw = min(50.0, 10 + 40 * (i - 299) / 15)
        out = f(quaternion_wxyz(rotation_from_ypr(yaw, 5, 0)), i / 30)
    assert np.degrees(quaternion_angle(out, quaternion_wxyz(rotation_from_ypr(50, 5, 0)))) < 3


def test_quaternion_filter_ignores_the_sign_flip():
    f = OneEuroQuaternion(min_cutoff=0.5)
    q = quaternion_wxyz(rotation_from_ypr(30, 0, 0))
    f(q, 0.0)
    out = f(-q, 1 / 30)  # the same rotation
    assert quaternion_angle(out, q) < 1e-9


def test_pose_filter_first_sample_passes_through():
    q, t = quaternion_wxyz(rotation_from_ypr(5, 5, 5)), np.array([0.1, 0.0, 0.5])
    fq, ft = PoseFilter()(q, t, 12.0)
    np.testing.assert_allclose(fq, q)
    np.testing.assert_allclose(ft, t)


def with_depth(model, rotation, t, depth_scale):
    """Landmarks as the mesh model gives them: pixels and a relative depth in the scale of x at
    the face's distance (MediaPipe's convention), for a perspective camera K."""
    cam = model @ rotation.T + t
    px = project(model, rotation, t)
    z_px = (cam[:, 2] - t[2]) * K[0, 0] / t[2] / depth_scale
    return np.column_stack([px, z_px])


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, -10, 5), (-60, 25, -20), (70, 0, 10)])
def test_procrustes_recovers_a_known_pose_from_landmarks_with_depth(ypr):
    # the depth fit alone: neither the pixels' rotation nor the lengthened turn
    est = HeadPoseEstimator(turn_gain=0.0, pixel_weight=0.0)
    assert est.method == "procrustes"
    rotation, t = rotation_from_ypr(*ypr), np.array([0.04, -0.03, 0.6])
    e = est.estimate(with_depth(est.model, rotation, t, est.depth_scale), K)
    assert angle_between(e.rotation, rotation) < 1e-4  # arccos near 1: 1e-6 is float noise
    np.testing.assert_allclose(e.translation, t, atol=1e-6)
    assert e.reprojection_error_px < 1e-4
    # the depth is what tells the turn: the same pixels with the depth of a frontal face give
    # a smaller yaw, which is how PnP on pixels alone can read a real turned head short
    flat = with_depth(est.model, rotation, t, est.depth_scale)
    flat[:, 2] *= 0.5
    if abs(ypr[0]) >= 30:
        assert abs(ypr_from_rotation(est.estimate(flat, K).rotation)[0]) < abs(ypr[0]) - 3


def load_metric():
    return HeadPoseEstimator().model


@pytest.mark.parametrize("t", [[0.0, 0.0, 0.6], [0.25, -0.1, 0.6]])
def test_turns_past_30_degrees_are_lengthened_as_the_landmark_model_reads_them_short(t):
    """TURN_GAIN: exact points of a head turned 60 degrees from the line of sight give 66
    (60 + 0.2 x 30), at any place in the image; 20 degrees stays 20; pitch and roll kept."""
    plain, est = HeadPoseEstimator(turn_gain=0.0), HeadPoseEstimator()
    assert est.turn_gain == pytest.approx(0.2)
    t = np.array(t)
    # the turn is taken from the line of sight: a head right of the centre faces the camera
    # at a negative yaw (turned to the image's left)
    sight = -np.degrees(np.arctan2(t[0], t[2]))
    for turn, expected in [(60, 66.0), (-60, -66.0), (20, 20.0), (-75, -84.0)]:
        rotation = rotation_from_ypr(turn + sight, 0, 0)
        lm = with_depth(est.model, rotation, t, est.depth_scale)
        assert angle_between(plain.estimate(lm, K).rotation, rotation) < 1e-4
        got = ypr_from_rotation(est.estimate(lm, K).rotation)
        assert got[0] - sight == pytest.approx(expected, abs=0.05)
        np.testing.assert_allclose(got[1:], 0, atol=0.05)
    # with pitch and roll the extra turn is about the head's own vertical: pitch and roll stay
    rotation = rotation_from_ypr(50, 15, -10)
    got = est.estimate(with_depth(est.model, rotation, np.array([0.0, 0.0, 0.6]), est.depth_scale), K).rotation
    extra = angle_between(got, rotation)
    assert 2.0 < extra < 5.0
    np.testing.assert_allclose(got[:, 2], rotation[:, 2], atol=1e-9)  # the head's vertical itself


def test_the_rotation_is_taken_halfway_between_the_depth_fit_and_the_pixels():
    """PIXEL_WEIGHT: where the landmarks' depth says another turn than their pixels, the pose
    lies between the two fits, at the weight's fraction of the way."""
    rotation, t = rotation_from_ypr(25, 0, 0), np.array([0.0, 0.0, 0.6])
    lm = with_depth(load_metric(), rotation, t, 1.2)
    lm[:, 2] *= 0.5   # a flatter depth than the pixels': the depth fit reads a smaller turn
    depth_only = HeadPoseEstimator(turn_gain=0.0, pixel_weight=0.0).estimate(lm, K).rotation
    pixels_only = HeadPoseEstimator(turn_gain=0.0, method="sqpnp").estimate(lm, K).rotation
    blended = HeadPoseEstimator(turn_gain=0.0).estimate(lm, K).rotation
    assert angle_between(pixels_only, rotation) < 1e-3 and angle_between(depth_only, rotation) > 3
    apart = angle_between(depth_only, pixels_only)
    assert angle_between(blended, depth_only) == pytest.approx(apart / 2, abs=0.01)
    assert angle_between(blended, pixels_only) == pytest.approx(apart / 2, abs=0.01)


def test_procrustes_without_depth_falls_back_to_pnp_and_bad_input_gives_none():
    est = HeadPoseEstimator()
    rotation, t = rotation_from_ypr(20, 10, -5), [0.0, 0.0, 0.7]
    e = est.estimate(project(est.model, rotation, t), K)  # (N, 2): no depth
    assert angle_between(e.rotation, rotation) < 1e-3
    lm = with_depth(est.model, rotation, np.array(t), est.depth_scale)
    lm[5, 2] = np.nan
    assert est.estimate(lm, K) is None
    assert est.estimate(lm[:100], K) is None  # too few points for the scheme


def test_metric_face_is_mediapipes_canonical_face_in_the_face_frame():
    from vtb_detector.models import bundle_path
    from vtb_pose.face_model import load_metric_face, read_geometry_metadata, LEFT_EYE_RING, RIGHT_EYE_RING
    vertices, weights = read_geometry_metadata(
        bundle_path("geometry_pipeline_metadata_landmarks.binarypb").read_bytes())
    assert vertices.shape == (468, 3)
    # MediaPipe's canonical face is symmetric about x = 0 and about 15 cm tall, in centimetres
    assert abs(vertices[:, 0].sum()) < 1e-3 and 14 < np.ptp(vertices[:, 1]) < 20
    assert vertices[1, 2] > vertices[234, 2] + 5, "the nose tip 5+ cm in front of the ears (z out of the face)"
    assert len(weights) > 20 and all(0 <= i < 468 for i in weights)
    model = load_metric_face(0.063)
    origin, rot = face_frame(model)
    np.testing.assert_allclose(origin, 0, atol=1e-9)
    np.testing.assert_allclose(rot, np.eye(3), atol=1e-9)
    eyes = model[LEFT_EYE_RING].mean(0) - model[RIGHT_EYE_RING].mean(0)
    assert abs(np.linalg.norm(eyes) - 0.063) < 1e-9 and eyes[1] > 0, "the left eye on +y, 63 mm apart"
    assert model[1, 0] > 0.03 and model[152, 2] < -0.1, "nose in front, chin below"


def test_camera_from_info_takes_a_usable_camera_only():
    from vtb_pose.pnp import camera_from_info
    good = [800.0, 0, 319.5, 0, 800.0, 239.5, 0, 0, 1]
    k, dist = camera_from_info(good, [0.1, 0, 0, 0, 0])
    assert k[0, 0] == 800 and dist.shape == (5,)
    assert camera_from_info(good)[1] is None
    for bad_k in ([float("inf")] + good[1:], [0.0] + good[1:], good[:4] + [-1.0] + good[5:],
                  good[:2] + [float("nan")] + good[3:], [0.0] * 9, []):
        assert camera_from_info(bad_k) is None, bad_k
    assert camera_from_info(good, [float("nan"), 0, 0, 0, 0]) is None
