"""Avatar parameters: signs, ranges, mirroring, blinks kept, easing to neutral, robot joints."""
import math
from pathlib import Path

import pytest

from vtb_bridge.avatar_params import AvatarMapper, Inputs, RobotHead, load_config

# the mapping as measured: without the learned gaze rest (test_neutral.py tests it)
CONFIG = dict(load_config(Path(__file__).resolve().parent.parent / "config" / "avatar.yaml"), gaze_neutral_learn_s=0)
OPEN = {"eye_left_open": 1.0, "eye_right_open": 1.0, "mouth_open": 0.0, "mouth_form": 0.0,
        "brow_left_raise": 0.0, "brow_right_raise": 0.0}


def run(mapper, n=30, head=(0, 0, 0), gaze=(0, 0), state=None, t0=0.0):
    frame = None
    for i in range(n):
        frame = mapper.update(Inputs("abcd", t0 + i / 30, head, gaze, state or OPEN))
    return frame


def test_signs_ranges_and_the_nodeserver_fields():
    m = AvatarMapper(dict(CONFIG, mirror=False))
    f = run(m, head=(20, 10, -5), gaze=(15, -6))
    p = f.params
    assert p["ParamAngleX"] == pytest.approx(20, abs=0.1) and p["ParamAngleY"] == pytest.approx(-10, abs=0.1)
    # roll -5 (towards the user's own left shoulder): the screen's right as a camera shows it
    assert p["ParamAngleZ"] == pytest.approx(5, abs=0.1) and p["ParamBodyAngleX"] == pytest.approx(6, abs=0.2)
    assert p["ParamBodyAngleZ"] == pytest.approx(1.5, abs=0.2)
    assert p["ParamEyeBallX"] == pytest.approx(0.5, abs=0.01) and p["ParamEyeBallY"] == pytest.approx(0.2, abs=0.01)
    f = run(m, head=(80, -70, 0))
    assert f.params["ParamAngleX"] == pytest.approx(30, abs=1e-3) and f.params["ParamAngleY"] == pytest.approx(30, abs=1e-3), \
        "clipped to the Live2D range"
    assert f.euler[1] == pytest.approx(30) and len(f.result_data()["euler"]) == 3
    data = f.result_data()
    assert set(data) >= {"euler", "eye", "mouth", "blink", "params", "face_id", "stamp"}


def test_mirror_swaps_sides_and_sideways_motion():
    state = dict(OPEN, eye_left_open=0.1)
    plain = run(AvatarMapper(dict(CONFIG, mirror=False)), head=(20, 0, 10), gaze=(10, 0), state=state).params
    mirrored = run(AvatarMapper(dict(CONFIG, mirror=True)), head=(20, 0, 10), gaze=(10, 0), state=state).params
    assert mirrored["ParamAngleX"] == pytest.approx(-plain["ParamAngleX"], abs=1e-6)
    assert mirrored["ParamAngleZ"] == pytest.approx(-plain["ParamAngleZ"], abs=1e-6)
    assert mirrored["ParamEyeBallX"] == pytest.approx(-plain["ParamEyeBallX"], abs=1e-6)
    assert plain["ParamEyeLOpen"] < 0.2 and mirrored["ParamEyeROpen"] < 0.2 and mirrored["ParamEyeLOpen"] > 0.9
    # Live2D: ParamAngleZ > 0 tilts towards the screen's right. The user tilts to their own right
    # shoulder (roll > 0): a mirror image tilts to the screen's right, a camera's view to its left,
    # the same way the turn goes (yaw > 0, own left: mirror to the screen's left, ParamAngleX < 0).
    assert mirrored["ParamAngleZ"] > 5 and plain["ParamAngleZ"] < -5
    assert mirrored["ParamAngleX"] < -5 and plain["ParamAngleX"] > 5


@pytest.mark.parametrize("mirror", [False, True])
def test_nodeserver_fields_after_the_mirror_choice(mirror):
    """result_data: euler (pitch, yaw, roll) deg and eye (theta, phi) rad in the original sender's
    signs (HeadPose's); mirror off reproduces them exactly, mirror on negates the sideways ones.
    blink is (screen-left eye, screen-right eye): the user's own left eye closes on the screen's
    right as a camera shows it, on the screen's left in a mirror."""
    state = dict(OPEN, eye_left_open=0.0, eye_right_open=0.8)
    f = run(AvatarMapper(dict(CONFIG, mirror=mirror)), n=60, head=(20, 10, 8), gaze=(15, -6), state=state)
    s = -1 if mirror else 1
    assert f.euler == pytest.approx((10, s * 20, s * 8), abs=1e-3)
    assert f.eye == pytest.approx((math.radians(s * 15), math.radians(-6)), abs=1e-4)
    assert f.blink == pytest.approx((0.0, 0.8) if mirror else (0.8, 0.0), abs=1e-6)
    assert f.result_data()["blink"] == pytest.approx(list(f.blink))


def test_a_one_frame_blink_reaches_the_avatar():
    m = AvatarMapper(CONFIG)
    run(m)
    f = m.update(Inputs("abcd", 1.1, (0, 0, 0), (0, 0), dict(OPEN, eye_left_open=0.0, eye_right_open=0.0)))
    assert f.params["ParamEyeLOpen"] < 0.05 and f.params["ParamEyeROpen"] < 0.05 and f.blink == (f.params["ParamEyeROpen"], f.params["ParamEyeLOpen"])


def test_smoothing_follows_with_its_time_constant():
    m = AvatarMapper(dict(CONFIG, mirror=False))
    run(m)
    f = m.update(Inputs("abcd", 1.0 + 1 / 30, (30, 0, 0), (0, 0), OPEN))
    assert 0 < f.params["ParamAngleX"] < 30, "a jump is followed, not copied"
    f = run(m, n=15, head=(30, 0, 0), t0=1.1)
    assert f.params["ParamAngleX"] == pytest.approx(30, abs=0.5)


def test_lost_face_eases_back_to_neutral():
    m = AvatarMapper(dict(CONFIG, mirror=False))
    run(m, head=(25, 15, 10), state=dict(OPEN, mouth_open=0.8))
    t = 1.0
    frames = []
    while not m.at_neutral() and t < 5:
        t += 1 / 30
        frames.append(m.ease_to_neutral(t))
    assert m.at_neutral() and 0.3 < t - 1.0 < 3.0, f"neutral after {t - 1.0:.2f} s"
    xs = [f.params["ParamAngleX"] for f in frames]
    assert all(a >= b for a, b in zip(xs, xs[1:])), "eases monotonically"
    assert not frames[-1].tracked and frames[-1].params["ParamEyeLOpen"] == pytest.approx(1.0, abs=1e-3)


def test_robot_head_joints_limits_and_rate_limit():
    head = RobotHead(CONFIG["robot_head"])
    j = head.update({"head_yaw": 0, "head_pitch": 0, "head_roll": 0, "gaze_yaw": 0, "gaze_pitch": 0}, 0.0)
    assert set(j) == {"neck_yaw", "neck_pitch", "neck_roll", "eye_pan", "eye_tilt"}
    j = head.update({"head_yaw": 90, "head_pitch": 0, "head_roll": 0}, 1 / 30)
    assert j["neck_yaw"] == pytest.approx(3.0 / 30), "rate-limited to 3 rad/s"
    for i in range(2, 60):
        j = head.update({"head_yaw": 90}, i / 30)
    assert j["neck_yaw"] == pytest.approx(1.2), "held at its limit"


BAD_HEADS = [(math.nan, 0, 0), (0, math.inf, 0), (0, 0, -math.inf), (1e6, 0, 0)]


@pytest.mark.parametrize("bad", BAD_HEADS + ["gaze", "state"])
def test_one_bad_input_does_not_poison_the_state(bad):
    """One non-finite (or absurd) head pose, gaze or eye openness is dropped: the next good
    inputs give finite, correct values (before: NaN for good)."""
    m = AvatarMapper(dict(CONFIG, mirror=False))
    run(m, n=10, head=(20, 10, -5), gaze=(15, -6))
    head, gaze, state = (20, 10, -5), (15, -6), dict(OPEN)
    if bad == "gaze":
        gaze = (math.nan, 0.0)
    elif bad == "state":
        state["eye_left_open"] = math.nan
    else:
        head = bad
    f = m.update(Inputs("abcd", 10 / 30, head, gaze, state))
    assert all(math.isfinite(v) for v in f.params.values()) and m.rejected == 1
    f = run(m, n=30, head=(20, 10, -5), gaze=(15, -6), t0=11 / 30)
    p = f.params
    assert all(math.isfinite(v) for v in p.values())
    assert all(math.isfinite(v) for v in (*f.euler, *f.eye, f.mouth, *f.blink))
    assert p["ParamAngleX"] == pytest.approx(20, abs=0.1) and p["ParamAngleY"] == pytest.approx(-10, abs=0.1)
    assert p["ParamEyeBallX"] == pytest.approx(0.5, abs=0.01) and p["ParamEyeLOpen"] == pytest.approx(1.0, abs=0.01)
    import json
    json.dumps(f.result_data(), allow_nan=False)      # what a browser can parse
    assert m.calibrate_neutral()[0] and all(math.isfinite(v) for v in m.neutral_head_ypr), \
        "the bad pose is not in the neutral's window either"


def test_the_filter_never_takes_a_non_finite_value():
    assert AvatarMapper._follow(1.0, math.nan, 0.05, 0.03) == 1.0
    assert AvatarMapper._follow(math.nan, 2.0, 0.05, 0.03) == 2.0
    m = AvatarMapper(dict(CONFIG, mirror=False))
    m.values["ParamAngleX"] = math.nan            # however it got there: the frame is finite
    assert all(math.isfinite(v) for v in m.ease_to_neutral(1.0).params.values())


def test_blendshapes_pass_through_mirrored_and_clean():
    """The ARKit blendshapes reach the frame (0..1), Left/Right swapped with mirror on (as the
    eyes), a bad one dropped without touching the others, eased to 0 when the face is lost."""
    shapes = {"eyeBlinkLeft": 0.9, "eyeBlinkRight": 0.1, "jawOpen": 0.5, "mouthLeft": 0.3, "cheekPuff": 1.004}
    for mirror in (False, True):
        m = AvatarMapper({"mirror": mirror, "blendshape_smoothing_s": 0.0, "smoothing_s": 0.0})
        f = m.update(Inputs("f", 1.0, state={"eye_left_open": 0.1, "eye_right_open": 0.9}, blendshapes=shapes))
        left, right = ("Right", "Left") if mirror else ("Left", "Right")
        assert f.blendshapes["eyeBlink" + left] == 0.9 and f.blendshapes["eyeBlink" + right] == 0.1
        assert f.blendshapes["mouth" + left] == 0.3 and f.blendshapes["jawOpen"] == 0.5
        assert f.blendshapes["cheekPuff"] == 1.0, "clipped to 0..1"
        # the avatar's closed eye: the same side as ParamEye*Open says
        closed = "ParamEyeLOpen" if left == "Left" else "ParamEyeROpen"
        assert f.params[closed] == pytest.approx(0.1)
        assert f.result_data()["blendshapes"] == f.blendshapes

    m = AvatarMapper({"mirror": False, "blendshape_smoothing_s": 0.0})
    m.update(Inputs("f", 1.0, blendshapes=shapes))
    for bad in (math.nan, math.inf, -5.0, 7.0, "x"):
        f = m.update(Inputs("f", 1.1, blendshapes={"jawOpen": bad, "eyeBlinkLeft": 0.4}))
        assert f.blendshapes["jawOpen"] == 0.5 and f.blendshapes["eyeBlinkLeft"] == 0.4
        assert all(math.isfinite(v) for v in f.blendshapes.values())
    assert m.rejected == 5
    for k in range(40):
        f = m.ease_to_neutral(2.0 + 0.05 * k)
    assert max(f.blendshapes.values()) < 1e-3 and m.at_neutral()
