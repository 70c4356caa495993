"""The mirroring table (src/vtb_bridge/README.md) through the real bridge node.

The bridge node runs in its own process with every output on; this process publishes vtb's
perception (FaceArray, HeadPoseArray, GazeArray, FaceStateArray) for each user motion of the
table, with mirroring on and off, and reads what each output sends, each from a real peer:

- Socket.IO result_data and the built-in page's Live2D parameters: a python-socketio client
  connected to the node's built-in server (the payload the Socket.IO output sends as well);
- VMC: the PyPI package `vmcp` parsing the node's UDP stream (test/peers.py);
- VTube Studio: a websockets server answering like VTS's plugin API receives the injections;
- JointState: the node's joint_states topic.

Then the face goes away (VTube Studio is no longer injected) and the node is stopped with Ctrl-C
(VTube Studio's connection closes with 1000).
"""
from __future__ import annotations

import importlib.util
import math
import socket
import threading
import sys
import time
from pathlib import Path

import pytest
from sensor_msgs.msg import JointState
from vtb_msgs.msg import Face, FaceArray, FaceState, FaceStateArray, Gaze, GazeArray, HeadPose, HeadPoseArray


def _peers():
    name = "vtb_bridge_test_peers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("peers.py"))
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


peers = _peers()
R = math.radians

# user motions, in vtb's own perception (HeadPose / Gaze / FaceState: the user's own left/right)
MOTIONS = {
    "turn to own left": dict(yaw=20.0),
    "nod down": dict(pitch=10.0),
    "tilt to own right shoulder": dict(roll=10.0),
    "close own left eye": dict(left_open=0.0),
    "look to own left": dict(gaze_yaw=15.0),
}


def expected(motion, mirror):
    """The README's table: what every output sends, as {output: {field: value}}. VMC's head and
    eye rotations are signs of the Unity quaternion's components; its blend shapes values."""
    s = -1.0 if mirror else 1.0      # mirroring negates the sideways motions
    rest = {
        "euler": [0.0, 0.0, 0.0], "eye": [0.0, 0.0], "blink": [1.0, 1.0],
        "ParamAngleX": 0.0, "ParamAngleY": 0.0, "ParamAngleZ": 0.0,
        "ParamEyeLOpen": 1.0, "ParamEyeROpen": 1.0, "ParamEyeBallX": 0.0,
        "vmc_head": (0, 0, 0), "vmc_eyes": 0, "Blink_L": 0.0, "Blink_R": 0.0, "LookLeft": 0.0, "LookRight": 0.0,
        "FaceAngleX": 0.0, "FaceAngleY": 0.0, "FaceAngleZ": 0.0, "EyeOpenLeft": 1.0, "EyeOpenRight": 1.0,
        "EyeLeftX": 0.0,
        "neck_yaw": 0.0, "neck_pitch": 0.0, "neck_roll": 0.0, "eye_pan": 0.0,
    }
    e = dict(rest)
    if motion == "turn to own left":
        e.update(euler=[0.0, s * 20, 0.0], ParamAngleX=s * 20, vmc_head=(0, -s, 0), FaceAngleX=s * 20,
                 neck_yaw=s * R(20))
    elif motion == "nod down":
        e.update(euler=[10.0, 0.0, 0.0], ParamAngleY=-10.0, vmc_head=(1, 0, 0), FaceAngleY=-10.0,
                 neck_pitch=R(10))
    elif motion == "tilt to own right shoulder":
        e.update(euler=[0.0, 0.0, s * 10], ParamAngleZ=-s * 10, vmc_head=(0, 0, -s), FaceAngleZ=-s * 10,
                 neck_roll=s * R(10))
    elif motion == "close own left eye":
        if mirror:   # a mirror image closes the eye on the screen's left: the model's right eye
            e.update(blink=[0.0, 1.0], ParamEyeROpen=0.0, Blink_R=1.0, EyeOpenRight=0.0)
        else:        # a camera's view: the user's left eye is on the screen's right
            e.update(blink=[1.0, 0.0], ParamEyeLOpen=0.0, Blink_L=1.0, EyeOpenLeft=0.0)
    elif motion == "look to own left":
        x = 15 * 0.0333               # avatar.yaml's ParamEyeBallX gain
        e.update(eye=[s * R(15), 0.0], ParamEyeBallX=s * x, vmc_eyes=-s, EyeLeftX=s * x,
                 eye_pan=s * R(15), **({"LookRight": x} if mirror else {"LookLeft": x}))
    return e


def perception(stamp, yaw=0.0, pitch=0.0, roll=0.0, gaze_yaw=0.0, left_open=1.0):
    faces = FaceArray(faces=[Face(id="m1rr")])
    faces.faces[0].bbox.width = faces.faces[0].bbox.height = 120.0
    poses = HeadPoseArray(poses=[HeadPose(face_id="m1rr", valid=True, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)])
    gazes = GazeArray(gazes=[Gaze(face_id="m1rr", combined_yaw_deg=gaze_yaw, combined_pitch_deg=0.0,
                                  left_valid=True, right_valid=True)])
    states = FaceStateArray(states=[FaceState(face_id="m1rr", eye_left_open=left_open, eye_right_open=1.0,
                                              mouth_open=0.0)])
    for m in (faces, poses, gazes, states):
        m.header.stamp = stamp
        m.header.frame_id = "cam"
    return faces, poses, gazes, states


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SocketIOPeer:
    """python-socketio's client on the built-in server: namespace /kizuna, event result_data."""

    def __init__(self, url):
        import socketio
        self.received = []
        self.sio = socketio.Client(reconnection=True, logger=False, engineio_logger=False)
        self.sio.on("result_data", self.received.append, namespace="/kizuna")
        self.url = url

    def connect(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sio.connect(self.url, namespaces=["/kizuna"], transports=["websocket"], wait_timeout=3)
                return
            except Exception:  # noqa: BLE001 - the node's server is not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self):
        self.sio.disconnect()


def sign(v, tol=0.02):
    return 0 if abs(v) < tol else (1 if v > 0 else -1)


@pytest.fixture
def vts():
    server = peers.FakeVTS().start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("mirror", [True, False], ids=["mirror_on", "mirror_off"])
def test_every_output_follows_the_mirroring_table(ros, start_node, vts, tmp_path, monkeypatch, mirror):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))   # the node's VTS token file
    rx = peers.VMCReceiver.shared()
    rx.clear()
    port = free_tcp_port()
    ns = f"/vtb_mirror_{'on' if mirror else 'off'}"
    proc = start_node("vtb_bridge", "bridge_node", "-r", f"__ns:={ns}", "-p", f"mirror:={str(mirror).lower()}",
                      "-p", "joint_states_enabled:=true", "-p", "server_enabled:=true", "-p", f"server_port:={port}",
                      "-p", "vmc_enabled:=true", "-p", f"vmc_port:={rx.port}",
                      "-p", "vtube_studio_enabled:=true", "-p", f"vtube_studio_url:={vts.url}",
                      "-p", "lost_after_s:=0.6")
    joints = []
    ros.node.create_subscription(JointState, f"{ns}/joint_states", joints.append, 100)
    types = (FaceArray, HeadPoseArray, GazeArray, FaceStateArray)
    pubs = [ros.node.create_publisher(t, f"{ns}/{n}", 10) for t, n in zip(types, ("faces", "head_poses", "gaze", "face_state"))]
    ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                   and ros.node.count_publishers(f"{ns}/joint_states") > 0, what="the bridge node")
    page = SocketIOPeer(f"http://127.0.0.1:{port}")
    page.connect()
    try:
        failures = []
        for motion, kw in MOTIONS.items():
            for _ in range(24):                                   # held for 0.8 s
                stamp = ros.node.get_clock().now().to_msg()
                for pub, msg in zip(pubs, perception(stamp, **kw)):
                    pub.publish(msg)
                ros.spin_for(1 / 30)
            t = stamp.sec + 1e-9 * stamp.nanosec                  # the last frame through every output
            ros.spin_until(lambda: page.received and abs(page.received[-1]["stamp"] - t) < 1e-6
                           and joints and joints[-1].header.stamp == stamp, what=f"the last frame of {motion!r}")
            ros.spin_for(0.2)                                     # VMC and VTube Studio got it with them
            assert abs(page.received[-1]["stamp"] - t) < 1e-6, "not easing to neutral yet"
            assert page.received and vts.injections and rx.events and joints, "every output sends"
            got = observe(page.received[-1], rx, vts.values(), joints[-1])
            want = expected(motion, mirror)
            for key, value in want.items():
                ok = got[key] == value if key in ("vmc_head", "vmc_eyes") else got[key] == pytest.approx(value, abs=0.02)
                if not ok:
                    failures.append(f"{motion}: {key} = {got[key]}, the table says {value}")
        assert not failures, "\n".join(failures)
        assert rx.messages == len(rx.events), "vmcp parsed every VMC message"

        # the face is gone: the node eases back to neutral, and VTube Studio is no longer injected
        ros.spin_for(1.0)
        n = len(vts.injections)
        ros.spin_for(1.2)
        assert len(vts.injections) == n, "VTube Studio gets its parameters back once the face is lost"
        assert all(d["faceFound"] for _, d in vts.injections)
        assert page.received[-1]["params"]["ParamAngleX"] == pytest.approx(0, abs=0.1), "the page eases to neutral"
    finally:
        page.close()
    assert proc.stop() == 0, proc.output()
    assert vts.closes and vts.closes[-1][0] == 1000, f"VTube Studio's connection closed with {vts.closes}"


def observe(data, rx, vts_values, joint_state):
    """Every output's current values, under the table's keys."""
    got = {k: data[k] for k in ("euler", "eye", "blink")}
    got.update({k: data["params"][k] for k in ("ParamAngleX", "ParamAngleY", "ParamAngleZ", "ParamEyeLOpen",
                                               "ParamEyeROpen", "ParamEyeBallX")})
    bones = {}
    for e in rx.of("BoneTransformEvent"):
        bones[e.joint.value] = e.rotation
    head, eye = bones["Head"], bones["LeftEye"]
    got["vmc_head"] = (sign(head.x), sign(head.y), sign(head.z))
    got["vmc_eyes"] = sign(eye.y)
    blends = {}
    for e in rx.of("BlendShapeEvent"):
        blends[e.key] = e.value
    got.update({k: blends.get(k) for k in ("Blink_L", "Blink_R", "LookLeft", "LookRight")})  # None: not sent
    got.update({k: vts_values[k] for k in ("FaceAngleX", "FaceAngleY", "FaceAngleZ", "EyeOpenLeft", "EyeOpenRight",
                                           "EyeLeftX")})
    got.update(dict(zip(joint_state.name, joint_state.position)))
    return got


@pytest.mark.parametrize("page", ["2d", "3d"])
def test_the_builtin_page_tilts_the_head_the_way_live2d_does(start_process, tmp_path, page):
    """ParamAngleZ > 0 (Live2D, VTube Studio): the top of the head towards the screen's right,
    clockwise on screen. Headless Chromium draws the page (test/js/screenshot.js); on the 2D page
    (/2d) the hair, above the face's centre, moves to the right of the face's centre for +20 and
    to its left for -20; on the 3D page (/) the head bone turns clockwise as the viewer sees it
    (a negative rotation about the axis towards the viewer, three.js's +z)."""
    import json
    import os
    import shutil

    import numpy as np
    from PIL import Image

    from vtb_bridge.avatar_frame import AvatarFrame
    from vtb_bridge.avatar_server import AvatarServer

    js = Path(__file__).resolve().parent / "js"
    node = shutil.which("node")
    chromium = os.environ.get("VTB_CHROMIUM", "/usr/bin/chromium")
    if node is None or not (js / "node_modules" / "playwright-core").is_dir() or not os.access(chromium, os.X_OK):
        pytest.fail("needs node, `npm ci --prefix src/vtb_bridge/test/js` and Debian's chromium (./vtb sets them up)")
    server = AvatarServer(port=0)
    url = server.start()
    angle = {"z": 20.0}
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            server.send(AvatarFrame("t1lt", time.time(), {"ParamAngleZ": angle["z"]}))
            time.sleep(1 / 30)
    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        shots = start_process([node, js / "screenshot.js", url + ("2d" if page == "2d" else ""), tmp_path,
                               "right:ParamAngleZ=20",
                               "left:ParamAngleZ=-20"], name="screenshot")
        deadline = time.monotonic() + 90
        while '"shot":"right"' not in shots.output().replace(" ", ""):
            assert time.monotonic() < deadline and shots.alive(), shots.output()
            time.sleep(0.05)
        angle["z"] = -20.0
        while '"done":true' not in shots.output().replace(" ", ""):
            assert time.monotonic() < deadline and shots.alive(), shots.output()
            time.sleep(0.05)
    finally:
        stop.set()
        streamer.join(2)
        server.stop()

    states = [json.loads(line)["state"] for line in shots.output().splitlines() if line.startswith('{"shot"')]
    assert [s["params"]["ParamAngleZ"] for s in states] == [20, -20]
    if page == "3d":
        assert states[0]["head"]["z"] < -5 and states[1]["head"]["z"] > 5, [s["head"] for s in states]
        return

    def hair_right_of_face(path):
        img = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)[:, :560]   # the panel is right
        near = lambda rgb: (np.abs(img - np.array(rgb)).sum(axis=2) < 30)               # noqa: E731
        hair, face = near((0x3b, 0x2a, 0x22)), near((0xf6, 0xd5, 0xb8))
        assert hair.sum() > 2000 and face.sum() > 2000, "the page drew the character"
        return np.nonzero(hair)[1].mean() - np.nonzero(face)[1].mean()

    right, left = hair_right_of_face(tmp_path / "right.png"), hair_right_of_face(tmp_path / "left.png")
    assert right > 8 and left < -8, f"hair minus face centre, x: {right:.1f} px at +20, {left:.1f} px at -20"
