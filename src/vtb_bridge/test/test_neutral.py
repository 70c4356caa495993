"""Neutral-pose calibration: the user's rest pose and gaze become the avatar's rest.

AvatarMapper.calibrate_neutral() on its own; the bridge node's calibrate_neutral / reset_neutral
services called over rclpy from this process; the built-in page's "calibrate neutral" button
clicked in headless Chromium (test/js/calibrate.js), which asks the bridge over the page's own
token-checked Socket.IO connection; a client without the token cannot ask.
"""
from __future__ import annotations

import json
import math
import shutil
import socket
import time
from pathlib import Path

import pytest
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from vtb_msgs.msg import (AvatarParameters, Face, FaceArray, FaceState, FaceStateArray, Gaze, GazeArray, HeadPose,
                          HeadPoseArray)

from vtb_bridge.avatar_params import AvatarMapper, Inputs, load_config

# the explicit calibration's tests: without the learned gaze rest (tested on its own below)
CONFIG = dict(load_config(Path(__file__).resolve().parent.parent / "config" / "avatar.yaml"), gaze_neutral_learn_s=0)
JS = Path(__file__).resolve().parent / "js"
STATE = {"eye_left_open": 1.0, "eye_right_open": 1.0, "mouth_open": 0.0}


def feed(mapper, n=20, head=(0, 0, 0), gaze=(0, 0), t0=0.0):
    frame = None
    for i in range(n):
        frame = mapper.update(Inputs("abcd", t0 + i / 30, head, gaze, STATE))
    return frame.params


# ---- AvatarMapper ---------------------------------------------------------------------------
def test_the_rest_pose_and_gaze_become_the_avatars_rest():
    m = AvatarMapper(dict(CONFIG, mirror=False))
    assert m.calibrate_neutral()[0] is False, "nothing seen yet: nothing to calibrate"
    p = feed(m, head=(6, -4, 2), gaze=(-7, 5))
    assert p["ParamAngleX"] == pytest.approx(6, abs=0.1) and p["ParamEyeBallX"] == pytest.approx(-7 / 30, abs=0.01)
    ok, message = m.calibrate_neutral()
    assert ok and "6.0/-4.0/2.0" in message, message
    p = feed(m, head=(6, -4, 2), gaze=(-7, 5), t0=1)
    for name in ("ParamAngleX", "ParamAngleY", "ParamAngleZ", "ParamEyeBallX", "ParamEyeBallY"):
        assert abs(p[name]) < 1e-3, (name, p[name])
    # turning from the rest pose: the turn, not the camera's angle
    p = feed(m, head=(31, -4, 2), gaze=(3, 5), t0=2)
    assert p["ParamAngleX"] == pytest.approx(25, abs=0.3) and abs(p["ParamAngleY"]) < 0.5
    assert p["ParamEyeBallX"] == pytest.approx(10 / 30, abs=0.01)
    assert m.reset_neutral()[0]
    p = feed(m, head=(6, -4, 2), gaze=(-7, 5), t0=3)
    assert p["ParamAngleX"] == pytest.approx(6, abs=0.1), "reset: as measured again"


def test_a_pitched_rest_pose_turns_about_the_users_own_axis():
    """Camera below the screen: the user's rest reads 20 degrees up. Turning the head from there
    (about the head's own up axis) must read as a pure turn, which subtracting angles does not give."""
    from transforms3d.euler import euler2mat, mat2euler
    m = AvatarMapper(dict(CONFIG, mirror=False))
    feed(m, head=(0, -20, 0))
    m.calibrate_neutral()
    turned = euler2mat(0, math.radians(-20), 0, axes="rzyx") @ euler2mat(math.radians(30), 0, 0, axes="rzyx")
    p = feed(m, head=tuple(math.degrees(a) for a in mat2euler(turned, axes="rzyx")), t0=1)
    assert p["ParamAngleX"] == pytest.approx(30, abs=0.2) and abs(p["ParamAngleY"]) < 0.2 and abs(p["ParamAngleZ"]) < 0.2


def test_the_neutral_is_the_median_of_the_last_moments_and_mirroring_comes_after():
    m = AvatarMapper(dict(CONFIG, mirror=True, neutral_window_s=0.5))
    feed(m, n=30, head=(40, 0, 0), t0=0)            # long ago: outside the window
    feed(m, n=14, head=(10, 0, 0), t0=2)            # the last half second
    m.update(Inputs("abcd", 2.5, (-30, 0, 0), (0, 0), STATE))   # one outlier frame
    ok, message = m.calibrate_neutral()
    assert ok and m.neutral_head_ypr[0] == pytest.approx(10), message
    p = feed(m, head=(20, 0, 0), t0=3)
    assert p["ParamAngleX"] == pytest.approx(-10, abs=0.2), "10 degrees past the rest, mirrored"


def test_before_any_calibration_the_gaze_rest_is_learned():
    """The eye model reads this user's straight look 9 degrees down: within the first second the
    avatar looks ahead without a click; a look aside stays a look aside; an explicit
    calibration wins, and a reset goes back to the learned rest."""
    m = AvatarMapper(dict(load_config(Path(__file__).resolve().parent.parent / "config" / "avatar.yaml"), mirror=False))
    assert m.gaze_learn_s == 60
    p = feed(m, n=30, gaze=(1.0, -9.0))                  # the first second
    assert abs(p["ParamEyeBallX"]) < 0.01 and abs(p["ParamEyeBallY"]) < 0.01, p
    assert m.learned_gaze() == pytest.approx((1.0, -9.0))
    feed(m, n=30, gaze=(1.0, -9.0), t0=1.0)
    p = feed(m, n=30, gaze=(16.0, -9.0), t0=2.0)          # a one-second look to the side
    assert p["ParamEyeBallX"] == pytest.approx(15 / 30, abs=0.01)
    p = feed(m, n=60, gaze=(1.0, -9.0), t0=3.0)          # straight again
    assert abs(p["ParamEyeBallX"]) < 0.01
    ok, _ = m.calibrate_neutral()                         # explicit: the last half second
    assert ok and m.neutral_gaze == pytest.approx((1.0, -9.0))
    p = feed(m, n=30, gaze=(1.0, -4.0), t0=5.0)
    assert p["ParamEyeBallY"] == pytest.approx(-5 / 30, abs=0.01), "the explicit rest, not a learned one"
    m.reset_neutral()
    assert m.learned_gaze() is not None
    # off: the gaze as measured
    off = AvatarMapper(dict(CONFIG, mirror=False))
    assert feed(off, n=30, gaze=(1.0, -9.0))["ParamEyeBallY"] == pytest.approx(9 / 30, abs=0.01)


def test_only_the_head_and_gaze_move_the_rest():
    m = AvatarMapper(dict(CONFIG, mirror=False))
    for i in range(10):                              # a face state with no pose and no gaze
        m.update(Inputs("abcd", i / 30, None, None, STATE))
    assert m.calibrate_neutral()[0] is False


# ---- the bridge node --------------------------------------------------------------------------
def perception(stamp, yaw, pitch=-3.0, roll=2.0, gaze_yaw=7.0, gaze_pitch=-4.0):
    faces = FaceArray(faces=[Face(id="abcd")])
    faces.faces[0].bbox.width = faces.faces[0].bbox.height = 100.0
    poses = HeadPoseArray(poses=[HeadPose(face_id="abcd", valid=True, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)])
    gazes = GazeArray(gazes=[Gaze(face_id="abcd", combined_yaw_deg=gaze_yaw, combined_pitch_deg=gaze_pitch,
                                  left_valid=True, right_valid=True)])
    states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=1.0, eye_right_open=1.0)])
    for msg in (faces, poses, gazes, states):
        msg.header.stamp = stamp
    return faces, poses, gazes, states


class Feeder:
    def __init__(self, ros, ns):
        self.ros = ros
        self.params, self.joints = [], []
        ros.node.create_subscription(AvatarParameters, f"/{ns}/avatar_parameters", self.params.append, 100)
        ros.node.create_subscription(JointState, f"/{ns}/joint_states", self.joints.append, 100)
        types = (FaceArray, HeadPoseArray, GazeArray, FaceStateArray)
        self.pubs = [ros.node.create_publisher(t, f"/{ns}/{n}", 10)
                     for t, n in zip(types, ("faces", "head_poses", "gaze", "face_state"))]
        ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in self.pubs)
                       and ros.node.count_publishers(f"/{ns}/avatar_parameters") > 0, what="the bridge node")

    def send(self, yaw, n=15, **kw):
        for _ in range(n):
            for pub, msg in zip(self.pubs, perception(self.ros.node.get_clock().now().to_msg(), yaw, **kw)):
                pub.publish(msg)
            self.ros.spin_for(1 / 30)
        self.ros.spin_for(0.15)
        return self.last()

    def last(self):
        return dict(zip(self.params[-1].names, self.params[-1].values))


def test_calibrate_neutral_service_on_the_bridge_node(ros, start_node, fixed_gaze_config):
    proc = start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_n", "-p", "mirror:=false",
                      "-p", f"config_file:={fixed_gaze_config}",
                      "-p", "joint_states_enabled:=true")
    feed = Feeder(ros, "vtb_n")
    p = feed.send(yaw=5.0)
    assert p["ParamAngleX"] == pytest.approx(5, abs=0.3) and p["ParamEyeBallX"] == pytest.approx(7 / 30, abs=0.02)

    answer = ros.call(Trigger, "/vtb_n/calibrate_neutral", Trigger.Request())
    assert answer.success and "5.0/-3.0/2.0" in answer.message and "7.0/-4.0" in answer.message, answer.message
    p = feed.send(yaw=5.0)
    for name in ("ParamAngleX", "ParamAngleY", "ParamAngleZ", "ParamEyeBallX", "ParamEyeBallY"):
        assert abs(p[name]) < 0.05, (name, p[name])
    p = feed.send(yaw=30.0, n=30, gaze_yaw=22.0)
    assert p["ParamAngleX"] == pytest.approx(25, abs=0.5) and p["ParamEyeBallX"] == pytest.approx(0.5, abs=0.02)
    j = dict(zip(feed.joints[-1].name, feed.joints[-1].position))
    assert j["neck_yaw"] == pytest.approx(math.radians(25), abs=0.02), "the robot head turns from the rest too"
    assert j["eye_pan"] == pytest.approx(math.radians(15), abs=0.02)

    answer = ros.call(Trigger, "/vtb_n/reset_neutral", Trigger.Request())
    assert answer.success
    p = feed.send(yaw=5.0, n=30)
    assert p["ParamAngleX"] == pytest.approx(5, abs=0.3), "after reset_neutral: as measured"
    assert "calibrate_neutral (service): neutral: head" in proc.output()
    assert proc.alive()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_pages_calibrate_button_asks_the_bridge_over_its_socket(ros, start_node, start_process, tmp_path):
    node = shutil.which("node")
    assert node and (JS / "node_modules" / "playwright-core" / "package.json").is_file(), \
        "Node.js and playwright-core are needed: npm ci --prefix src/vtb_bridge/test/js"
    assert Path("/usr/bin/chromium").is_file(), "Debian's chromium is needed: apt-get install -y chromium"
    port, token = free_port(), "n3utral-t0ken"
    start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_p", "-p", "mirror:=false",
               "-p", "server_enabled:=true", "-p", f"server_port:={port}", "-p", f"server_token:={token}")
    feed = Feeder(ros, "vtb_p")
    assert feed.send(yaw=-8.0)["ParamAngleX"] == pytest.approx(-8, abs=0.3)

    # a client without the token is refused: it cannot calibrate
    import socketio
    intruder = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        intruder.connect(f"http://127.0.0.1:{port}", namespaces=["/kizuna"], transports=["websocket"],
                         wait_timeout=5)
    intruder.disconnect()

    page = start_process([node, JS / "calibrate.js", f"http://127.0.0.1:{port}/?token={token}",
                          tmp_path / "calibrated.png"], name="calibrate")

    def lines():
        out = []
        for line in page.output().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    deadline = time.monotonic() + 90
    while not any("done" in o or "error" in o for o in lines()):
        assert time.monotonic() < deadline, "the page did not answer:\n" + page.output()
        feed.send(yaw=-8.0, n=3)                    # the page needs frames to show
    got = lines()
    assert not [o for o in got if "error" in o or "pageerror" in o], got
    answer = next(o for o in got if "calibration" in o)
    assert answer["calibration"]["success"] is True and "-8.0/-3.0/2.0" in answer["calibration"]["message"], answer
    assert answer["panel"].startswith("ok: neutral"), answer
    p = feed.send(yaw=-8.0, n=20)
    assert abs(p["ParamAngleX"]) < 0.05 and abs(p["ParamEyeBallX"]) < 0.01, p
    assert feed.send(yaw=12.0, n=30)["ParamAngleX"] == pytest.approx(20, abs=0.5)


def test_the_server_answers_commands_only_to_token_holders_and_only_well_formed():
    import socketio

    from vtb_bridge.avatar_server import AvatarServer
    calls = []
    server = AvatarServer(port=0, token="t0ken-for-commands")
    server.commands["calibrate_neutral"] = lambda data: (calls.append(data), (True, "neutral: test"))[1]
    url = server.start()
    try:
        client = socketio.Client(reconnection=False)
        client.connect(url, namespaces=["/kizuna"], transports=["websocket"], auth={"token": "t0ken-for-commands"},
                       wait_timeout=5)
        assert client.call("calibrate_neutral", {}, namespace="/kizuna", timeout=5) == \
            {"success": True, "message": "neutral: test"}
        rejected = server.rejected
        assert client.call("calibrate_neutral", "not a dict", namespace="/kizuna", timeout=5)["success"] is False
        assert server.rejected == rejected + 1 and len(calls) == 1
        client.disconnect()
        server.commands.clear()                      # a server without the command: rejected as any event
        client = socketio.Client(reconnection=False)
        client.connect(url, namespaces=["/kizuna"], transports=["websocket"], auth={"token": "t0ken-for-commands"},
                       wait_timeout=5)
        client.emit("calibrate_neutral", {}, namespace="/kizuna")
        deadline = time.monotonic() + 5
        while server.rejected == rejected + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.rejected == rejected + 2 and len(calls) == 1
        client.disconnect()
    finally:
        server.stop()


def test_vtb_calibrate_from_a_terminal_finds_the_bridge_and_calls_it(ros, start_node):
    """`./vtb calibrate` (vtb_bringup's CLI, as a NodeServer, VMC or VTube Studio user runs it):
    refused with the bridge's reason before any face, then the current pose becomes neutral,
    then --reset; the bridge found on the ROS graph in its namespace, no name given."""
    import subprocess
    import sys

    def vtb_calibrate(*args):
        return subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "calibrate", "--timeout", "20", *args],
                              capture_output=True, text=True, timeout=120)

    proc = start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_cal", "-p", "mirror:=false",
                      "-p", "server_enabled:=false")
    feed = Feeder(ros, "vtb_cal")
    r = vtb_calibrate()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "/vtb_cal/calibrate_neutral: refused: no face seen yet" in r.stderr

    assert feed.send(yaw=5.0)["ParamAngleX"] == pytest.approx(5, abs=0.3)
    r = vtb_calibrate()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/vtb_cal/calibrate_neutral: neutral: head" in r.stdout and "5.0/-3.0/2.0" in r.stdout
    p = feed.send(yaw=5.0)
    assert abs(p["ParamAngleX"]) < 0.05 and abs(p["ParamEyeBallX"]) < 0.05

    r = vtb_calibrate("--reset")
    assert r.returncode == 0 and "/vtb_cal/reset_neutral: neutral cleared" in r.stdout, r.stdout + r.stderr
    assert feed.send(yaw=5.0, n=30)["ParamAngleX"] == pytest.approx(5, abs=0.3)
    assert "calibrate_neutral (service): neutral: head" in proc.output() and proc.alive()

    assert proc.stop() == 0
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "calibrate", "--timeout", "2",
                        "--service", "/vtb_cal/nothing_here"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "/vtb_cal/nothing_here: no answer: not available" in r.stderr, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "calibrate", "--timeout", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no vtb bridge found" in r.stderr, r.stdout + r.stderr
