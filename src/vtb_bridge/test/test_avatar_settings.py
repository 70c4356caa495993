"""The page's avatar settings (mirror, head and eye sensitivity, smoothing): checked, applied by
the bridge as its parameters, sent back to every page, kept in a 0600 file across restarts;
only a token-holding page can change them."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest
from vtb_msgs.msg import AvatarParameters, Face, FaceArray, FaceState, FaceStateArray, HeadPose, HeadPoseArray

from vtb_bridge import avatar_settings
from vtb_bridge.avatar_params import AvatarMapper, Inputs


def test_checks_and_file(tmp_path):
    assert avatar_settings.check("head_sensitivity", 2.5) is None
    for name, bad in (("head_sensitivity", 3.5), ("eye_sensitivity", -1), ("smoothing", float("nan")),
                      ("mirror", 1), ("smoothing", "x"), ("head_sensitivity", True), ("volume", 1.0)):
        assert avatar_settings.check(name, bad), (name, bad)
    good, bad = avatar_settings.validated({"mirror": False, "smoothing": 2, "eye_sensitivity": 9})
    assert good == {"mirror": False, "smoothing": 2.0} and len(bad) == 1
    path = tmp_path / "cfg" / "avatar_settings.json"
    (tmp_path / "cfg").mkdir()
    path.with_name(path.name + ".tmp").write_text("stale")
    os.chmod(path.with_name(path.name + ".tmp"), 0o644)
    avatar_settings.save(path, {"mirror": False, "head_sensitivity": 1.5, "junk": 1})
    assert (path.stat().st_mode & 0o777) == 0o600
    assert avatar_settings.load(path) == {"mirror": False, "head_sensitivity": 1.5}
    path.write_text("{not json")
    assert avatar_settings.load(path) == {}
    # kept aside, not silently overwritten by the next save
    assert not path.exists() and path.with_name(path.name + ".bad").read_text() == "{not json"
    # a number no float holds: one reason, no OverflowError
    path.write_text('{"smoothing": 1' + "0" * 400 + ', "mirror": false}')
    assert avatar_settings.load(path) == {"mirror": False}
    assert "finite" in avatar_settings.check("smoothing", 10 ** 400)
    path.write_text(json.dumps({"smoothing": 99, "eye_sensitivity": 0.5}))
    assert avatar_settings.load(path) == {"eye_sensitivity": 0.5}


def test_the_mapper_applies_sensitivity_and_smoothing():
    m = AvatarMapper({"mirror": False, "smoothing_s": 0.0})
    m.head_sensitivity, m.eye_sensitivity = 2.0, 0.5
    f = m.update(Inputs("f", 1.0, head=(10.0, 0.0, 0.0), gaze=(12.0, 0.0)))
    assert f.params["ParamAngleX"] == pytest.approx(20.0) and f.params["ParamEyeBallX"] == pytest.approx(0.2, abs=1e-3)
    m = AvatarMapper({"mirror": False, "smoothing_s": 0.1})
    m.update(Inputs("f", 1.0, head=(0.0, 0.0, 0.0)))
    m.smoothing = 0.0       # no smoothing: the target at once
    assert m.update(Inputs("f", 1.01, head=(10.0, 0.0, 0.0))).params["ParamAngleX"] == pytest.approx(10.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def perception(ros, yaw):
    stamp = ros.node.get_clock().now().to_msg()
    faces = FaceArray(faces=[Face(id="abcd")])
    faces.faces[0].bbox.width = faces.faces[0].bbox.height = 100.0
    poses = HeadPoseArray(poses=[HeadPose(face_id="abcd", valid=True, yaw_deg=yaw)])
    poses.poses[0].pose.position.z = 0.5
    states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=1.0, eye_right_open=1.0)])
    for m in (faces, poses, states):
        m.header.stamp, m.header.frame_id = stamp, "cam"
    return faces, poses, states


def test_page_settings_reach_the_bridge_and_survive_a_restart(ros, start_node, tmp_path):
    import socketio
    settings_file = tmp_path / "avatar_settings.json"
    port, token = free_port(), "s3ttings-t0ken"
    args = ["-r", "__ns:=/vtb_s", "-p", "server_enabled:=true", "-p", f"server_port:={port}",
            "-p", f"server_token:={token}", "-p", f"settings_file:={settings_file}", "-p", "lost_after_s:=10.0"]
    proc = start_node("vtb_bridge", "bridge_node", *args)
    params = []
    ros.node.create_subscription(AvatarParameters, "/vtb_s/avatar_parameters", params.append, 100)
    pubs = [ros.node.create_publisher(t, f"/vtb_s/{n}", 10) for t, n in
            ((FaceArray, "faces"), (HeadPoseArray, "head_poses"), (FaceStateArray, "face_state"))]
    ros.spin_until(lambda: all(p.get_subscription_count() for p in pubs), what="the bridge node")

    def angle_x(yaw=10.0, n=20):
        params.clear()
        for _ in range(n):
            for pub, msg in zip(pubs, perception(ros, yaw)):
                pub.publish(msg)
            ros.spin_for(1 / 30)
        ros.spin_until(lambda: params, what="avatar parameters")
        return dict(zip(params[-1].names, params[-1].values))["ParamAngleX"]

    assert angle_x() == pytest.approx(-10.0, abs=0.5), "mirror on by default: yaw +10 -> -10"

    received = []
    page = socketio.Client(reconnection=False)
    page.on("settings", received.append, namespace="/kizuna")
    page.connect(f"http://127.0.0.1:{port}", namespaces=["/kizuna"], transports=["websocket"],
                 auth={"token": token}, wait_timeout=5)
    try:
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received and received[0] == {"mirror": True, "head_sensitivity": 1.0, "eye_sensitivity": 1.0,
                                             "smoothing": 1.0}, "the page is told the settings on connect"
        answer = page.call("settings", {"mirror": False, "head_sensitivity": 2.0}, namespace="/kizuna", timeout=5)
        assert answer["success"], answer
        bad = page.call("settings", {"head_sensitivity": 30}, namespace="/kizuna", timeout=5)
        assert not bad["success"] and "0..3" in bad["message"]
        deadline = time.monotonic() + 5
        while received[-1].get("head_sensitivity") != 2.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received[-1] == {"mirror": False, "head_sensitivity": 2.0, "eye_sensitivity": 1.0, "smoothing": 1.0}
    finally:
        page.disconnect()
    assert angle_x() == pytest.approx(20.0, abs=0.5), "mirror off and twice the head's motion"
    got = ros.parameters_of("/vtb_s/vtb_bridge")
    assert (got["mirror"][0], got["head_sensitivity"][0]) == (False, 2.0)
    assert json.loads(settings_file.read_text())["head_sensitivity"] == 2.0
    assert (settings_file.stat().st_mode & 0o777) == 0o600

    # ros2 param set goes the same way (and into the file)
    assert ros.set_parameters("/vtb_s/vtb_bridge", eye_sensitivity=0.5)["eye_sensitivity"].successful
    assert json.loads(settings_file.read_text())["eye_sensitivity"] == 0.5
    assert proc.stop() == 0

    # a restart: the file's settings are in effect again
    proc = start_node("vtb_bridge", "bridge_node", *args)
    ros.spin_until(lambda: all(p.get_subscription_count() for p in pubs), what="the restarted bridge node")
    assert angle_x() == pytest.approx(20.0, abs=0.5)
    got = ros.parameters_of("/vtb_s/vtb_bridge")
    assert (got["mirror"][0], got["head_sensitivity"][0], got["eye_sensitivity"][0]) == (False, 2.0, 0.5)
    assert "Traceback" not in proc.output()
    assert proc.stop() == 0

    # a value given at start wins over the saved one, even the default (the launch file's mirror:=true)
    proc = start_node("vtb_bridge", "bridge_node", *args, "-p", "mirror:=true")
    ros.spin_until(lambda: all(p.get_subscription_count() for p in pubs), what="the bridge node, mirror given")
    got = ros.parameters_of("/vtb_s/vtb_bridge")
    assert (got["mirror"][0], got["head_sensitivity"][0]) == (True, 2.0)
    assert angle_x() == pytest.approx(-20.0, abs=0.5)
    assert proc.stop() == 0


def test_page_settings_that_cannot_be_saved_are_applied_and_the_page_is_told(ros, start_node, tmp_path):
    """settings_file names a folder: a change from the page is applied for this run, and its
    answer says it was not kept (kept: false and why), where before it said success as if saved."""
    import socketio
    port, token = free_port(), "s3ttings-t0ken"
    proc = start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_k", "-p", "server_enabled:=true",
                      "-p", f"server_port:={port}", "-p", f"server_token:={token}",
                      "-p", f"settings_file:={tmp_path}")
    page = socketio.Client(reconnection=False)
    deadline = time.monotonic() + 30
    while True:
        try:
            page.connect(f"http://127.0.0.1:{port}", namespaces=["/kizuna"], transports=["websocket"],
                         auth={"token": token}, wait_timeout=5)
            break
        except socketio.exceptions.ConnectionError:
            assert time.monotonic() < deadline, "the bridge's server did not come up:\n" + proc.output()
            time.sleep(0.2)
    try:
        answer = page.call("settings", {"head_sensitivity": 2.0}, namespace="/kizuna", timeout=5)
    finally:
        page.disconnect()
    assert answer["success"] and answer["kept"] is False, answer
    assert "not kept" in answer["message"] and str(tmp_path) in answer["message"]
    assert ros.parameters_of("/vtb_k/vtb_bridge")["head_sensitivity"][0] == 2.0, "applied all the same"
    assert proc.stop() == 0


def test_the_page_server_starts_with_its_commands_in_place(ros, tmp_path, monkeypatch):
    """A page that connects the moment the server is up can already send its commands: the
    server starts only after the node has connected them (it used to start first, and a
    "settings" sent in that moment was refused as an unknown event: a fresh-clone CI run)."""
    from rclpy.parameter import Parameter

    from vtb_bridge.avatar_server import AvatarServer
    from vtb_bridge.node import BridgeNode
    seen, start = [], AvatarServer.start

    def start_and_look(server, *args, **kwargs):
        seen.append(sorted(server.commands))
        return start(server, *args, **kwargs)
    monkeypatch.setattr(AvatarServer, "start", start_and_look)
    node = BridgeNode(context=ros.context, namespace="/vtb_cmds", parameter_overrides=[
        Parameter("server_enabled", value=True), Parameter("server_port", value=free_port()),
        Parameter("settings_file", value=str(tmp_path / "settings.json"))])
    try:
        assert seen == [["calibrate_neutral", "settings"]]
    finally:
        node.destroy_node()
