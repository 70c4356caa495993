"""./vtb eval gaze's pose sweep and neutral calibration, on fewer poses: a resting mouth reads
the same with the head turned or nodded once the user has looked around, an open jaw still
reads open; the bridge's neutral calibration centres the eyes and the head."""
import numpy as np
import pytest

from vtb_eval.gaze_eval import DISTANCE, SIZE, _Runner, format_table, run_gaze_eval, run_pose_sweep
from vtb_eval.render import HeadRenderer, default_intrinsics
from vtb_pose.frames import rotation_from_ypr


@pytest.fixture(scope="module")
def rendered():
    renderer, k = HeadRenderer(), default_intrinsics(*SIZE)
    t = np.array([0.0, 0.0, DISTANCE])
    return _Runner(k), lambda head, **e: renderer.render(rotation_from_ypr(*head), t, k, SIZE, **e)


POSES = [(-30, 0, 0), (0, 0, 0), (30, 0, 0), (0, -20, 0), (0, 20, 0)]


def test_a_resting_mouth_reads_the_same_over_yaw_30_and_pitch_20(rendered):
    run, render = rendered
    r = run_pose_sweep(run, render, -1.0, POSES, echo=lambda m: None)
    rows = {tuple(row["head"]): row for row in r["rows"]}
    print({h: (round(row["cold"]["mouth_open"], 3), round(row["session"]["mouth_open"], 3)) for h, row in rows.items()})
    # cold, the face mesh opened a closed mouth at yaw -30 (0.24); the default Face Landmarker's
    # points do not (0.0), so only the learned rest is checked
    # after looking around: within 0.05 of the frontal value everywhere (before the fix: 0.24)
    assert r["mouth_open_max_deviation"]["session"] < 0.05, r["mouth_open_max_deviation"]
    for row in r["rows"]:
        rest, jaw = row["session"]["mouth_open"], row["session_jaw_open"]
        assert jaw["1.0"] - rest > 0.3, ("a wide-open jaw still reads open", row["head"], jaw, rest)
    assert r["eye_open_min"]["session"] > 0.8 and r["eye_open_min"]["cold"] > 0.8


def test_neutral_calibration_through_the_bridge_mapping():
    r = run_gaze_eval(heads=((0, 0, 0),), gaze_yaws=(0,), gaze_pitches=(0,), rest_jaws=(), neutral=True,
                      echo=lambda m: None)
    n = r["neutral"]
    # uncalibrated, the face mesh's straight eyes read 0.29 down; the Face Landmarker's read 0.01
    print("before calibration:", n["before"]["straight"])
    after = n["after"]
    assert abs(after["straight"]["ParamEyeBallX"]) < 0.05 and abs(after["straight_again"]["ParamEyeBallX"]) < 0.05
    assert abs(after["straight"]["ParamEyeBallY"]) < 0.05 and abs(after["straight"]["ParamAngleX"]) < 1.0
    ratios = after["angle_x_ratio"]
    assert all(0.8 < v < 1.1 for v in ratios.values()), ratios     # measured 0.86 / 0.95
    assert "bridge after calibrate_neutral" in format_table(r)
