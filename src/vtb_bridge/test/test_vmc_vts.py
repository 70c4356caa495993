"""VMC (OSC/UDP) and VTube Studio (WebSocket plugin API) outputs against real receivers: the
PyPI package `vmcp` (a VMC protocol implementation) parsing vtb's stream, and a websockets server
answering like VTube Studio's plugin API (test/peers.py; VTS itself cannot run here)."""
from __future__ import annotations

import importlib.util
import logging
import math
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.vmc_output import VMCOutput, unity_quaternion, unity_rotation
from vtb_bridge.vtube_studio_output import PLUGIN_DEVELOPER, PLUGIN_NAME, VTubeStudioOutput, vts_parameters


def _peers():
    name = "vtb_bridge_test_peers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("peers.py"))
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


peers = _peers()
FakeVTS, VMCReceiver = peers.FakeVTS, peers.VMCReceiver


def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def frame(**kw):
    base = dict(face_id="f3a9", stamp=1.0, euler=(0.0, 0.0, 0.0), eye=(0.0, 0.0), mouth=0.0,
                blink=(1.0, 1.0), params={})
    base.update(kw)
    return AvatarFrame(**base)


# --------------------------------------------------------------------------------------------
# VMC: the coordinate conversion


def quat_about(axis, deg):
    """Unity (qx, qy, qz, qw) of a rotation by deg about a Unity axis (0 x, 1 y, 2 z)."""
    q = [0.0, 0.0, 0.0, math.cos(math.radians(deg) / 2)]
    q[axis] = math.sin(math.radians(deg) / 2)
    return q


def test_head_angles_become_unity_rotations():
    """The frame's angles are the avatar's own motion (the bridge already chose the mirroring):
    yaw > 0, the avatar turns to its own left, is -y in Unity (+y turns a Unity character to its
    own right); pitch > 0 (looks down) is +x; roll > 0 (its right shoulder) is -z (+z tilts a
    Unity character to its LEFT shoulder)."""
    assert np.allclose(unity_quaternion(30, 0, 0), quat_about(1, -30), atol=1e-9)
    assert np.allclose(unity_quaternion(0, 20, 0), quat_about(0, 20), atol=1e-9)
    assert np.allclose(unity_quaternion(0, 0, 15), quat_about(2, -15), atol=1e-9)

    # The same by what happens to the avatar's axes (Unity: x its own right, y up, z forward).
    assert (unity_rotation(30, 0, 0) @ [0, 0, 1])[0] < -0.3     # nose towards -x, its own left
    assert (unity_rotation(0, 20, 0) @ [0, 0, 1])[1] < -0.3     # nose goes down
    assert (unity_rotation(0, 0, 15) @ [0, 1, 0])[0] > 0.2      # crown towards its own right


def test_combined_rotation_is_a_proper_rotation_in_vtb_order():
    r = unity_rotation(25, -10, 8)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    # yaw first, then pitch about the turned head's own (left-right) axis: the nose keeps the
    # yaw's direction in the horizontal plane and rises by the pitch.
    fwd = r @ [0, 0, 1]
    assert np.isclose(math.degrees(math.asin(fwd[1])), 10.0)                  # pitch -10: up
    assert np.isclose(math.degrees(math.atan2(-fwd[0], fwd[2])), 25.0)         # to its left
    q = unity_quaternion(25, -10, 8)
    assert np.isclose(np.linalg.norm(q), 1.0) and q[3] >= 0


# --------------------------------------------------------------------------------------------
# VMC parsed by vmcp


NAMES = {"vrm0": ["Blink_L", "Blink_R", "A", "I", "U", "E", "O", "LookUp", "LookDown", "LookLeft", "LookRight"],
         "vrm1": ["blinkLeft", "blinkRight", "aa", "ih", "ou", "ee", "oh", "lookUp", "lookDown", "lookLeft",
                  "lookRight"]}


def received_frames(out, frames, receiver, apply_count=None):
    for f in frames:
        assert out.send(f)
        time.sleep(0.02)
    n = apply_count or len(frames)
    wait_for(lambda: len(receiver.of("BlendShapeApplyEvent")) >= n, what="the VMC bundles")
    time.sleep(0.05)


@pytest.mark.parametrize("expressions", ["vrm0", "vrm1"])
def test_vmc_stream_parsed_by_vmcp(expressions):
    from vmcp.typing import CalibrationMode, CalibrationState, ModelState, TrackingState
    f = frame(euler=(0.0, 30.0, 0.0), eye=(0.2, 0.1), blink=(0.25, 0.9),
              params={"ParamA": 0.8, "ParamI": 0.1, "ParamU": 0.0, "ParamE": 0.05, "ParamO": 1.4,
                      "ParamEyeBallX": 0.5, "ParamEyeBallY": -0.3})
    with VMCReceiver.shared() as rx, VMCOutput("127.0.0.1", rx.port, expressions=expressions) as out:
        received_frames(out, [f, f], rx)
        assert out.counters()["sent"] == 2 and out.counters()["errors"] == 0
    assert rx.messages == len(rx.events) == 2 * 17, "vmcp parsed every message"
    one = rx.events[:17]
    kinds = [type(e).__name__ for e in one]
    assert kinds == (["StateEvent", "RelativeTimeEvent"] + ["BoneTransformEvent"] * 3
                     + ["BlendShapeEvent"] * 11 + ["BlendShapeApplyEvent"])

    ok = one[0]   # /VMC/Ext/OK: loaded, calibrated, normal mode, tracking
    assert (ok.model_state, ok.calibration_state, ok.calibration_mode, ok.tracking_state) == (
        ModelState.LOADED, CalibrationState.CALIBRATED, CalibrationMode.NORMAL, TrackingState.OK)
    t1, t2 = (e.delta for e in rx.of("RelativeTimeEvent"))
    assert 0 <= t1 < t2 < 5, "/VMC/Ext/T: seconds since the output started"

    blends = {e.key: e.value for e in one if type(e).__name__ == "BlendShapeEvent"}
    assert list(blends) == NAMES[expressions]
    bl, br, a, i, u, e, o, up, down, left, right = NAMES[expressions]
    # blink (screen-left 0.25 open, screen-right 0.9): the avatar's own left eye is on the
    # screen's right; VRM's blink is 1 when closed
    assert blends[bl] == pytest.approx(0.1, abs=1e-6) and blends[br] == pytest.approx(0.75, abs=1e-6)
    assert [blends[k] for k in (a, i, u, e, o)] == pytest.approx([0.8, 0.1, 0.0, 0.05, 1.0], abs=1e-6)
    # ParamEyeBallX 0.5: looking to the screen's right, the avatar's own left; -0.3: down
    assert (blends[left], blends[right], blends[up], blends[down]) == pytest.approx((0.5, 0, 0, 0.3), abs=1e-6)

    bones = {e.joint.value: e for e in one if type(e).__name__ == "BoneTransformEvent"}
    assert list(bones) == ["Head", "LeftEye", "RightEye"]
    # rotations only by default: the mandatory position is a placeholder 0 (see vmc_output.py)
    assert all((b.position.x, b.position.y, b.position.z) == (0, 0, 0) for b in bones.values())
    rot = lambda b: [b.rotation.x, b.rotation.y, b.rotation.z, b.rotation.w]  # noqa: E731
    # yaw +30 in the frame: the avatar turns to its own left, -30 about Unity's y, not mirrored again
    assert rot(bones["Head"]) == pytest.approx(quat_about(1, -30), abs=1e-6)
    eye_q = unity_quaternion(math.degrees(0.2), math.degrees(0.1), 0.0)
    assert rot(bones["LeftEye"]) == pytest.approx(eye_q, abs=1e-6) and eye_q[1] < 0
    assert rot(bones["RightEye"]) == pytest.approx(eye_q, abs=1e-6)


def test_vmc_does_not_mirror_what_the_bridge_decided():
    """The frame holds the avatar's motion after the bridge's mirror choice; VMC has no mirror of
    its own (it used to mirror a mirrored frame back into a copy)."""
    with pytest.raises(TypeError):
        VMCOutput("127.0.0.1", 39539, mirror=True)
    out = VMCOutput("127.0.0.1", 39539)
    try:
        q = dict((b, q) for b, _, q in out.bone_poses(frame(euler=(0.0, -20.0, 10.0))))["Head"]
        # yaw -20 (to its own right: +y), roll +10 (its right shoulder: -z)
        assert q[1] > 0.1 and q[2] < -0.05
    finally:
        out.close()


def test_vmc_bone_positions_only_when_configured_and_tracking_state():
    from vmcp.typing import TrackingState
    f = frame(euler=(10.0, 0.0, 0.0), eye=(0.0, 0.0), tracked=False)
    head = (0.0, 0.0871, -0.0123)
    with pytest.raises(ValueError):
        VMCOutput("127.0.0.1", 39539, bone_positions={"Nose": (0, 0, 0)})
    with pytest.raises(ValueError):
        VMCOutput("127.0.0.1", 39539, expressions="vrm2")
    with VMCReceiver.shared() as rx, VMCOutput("127.0.0.1", rx.port, bone_positions={"Head": head}) as out:
        received_frames(out, [f], rx)
    assert rx.messages == len(rx.events)
    bones = rx.of("BoneTransformEvent")
    # only the configured bone, at the model's own rest position: a receiver that synchronises
    # positions keeps the model's shape, and the eyes (not configured) are not displaced
    assert [b.joint.value for b in bones] == ["Head"]
    assert (bones[0].position.x, bones[0].position.y, bones[0].position.z) == pytest.approx(head, abs=1e-6)
    assert [b.rotation.x for b in bones] == pytest.approx([quat_about(0, 10)[0]], abs=1e-6)
    assert rx.of("StateEvent")[0].tracking_state == TrackingState.BAD, "face lost: tracking status 0"
    blends = {e.key: e.value for e in rx.of("BlendShapeEvent")}
    assert {"LookLeft", "LookRight", "LookUp", "LookDown"} <= set(blends), "the gaze still goes"


def test_vmc_look_blendshapes_from_the_raw_gaze():
    out = VMCOutput("127.0.0.1", 39539, look_range_deg=20.0)
    try:
        v = dict(out.blend_values(frame(eye=(math.radians(-10.0), math.radians(-30.0)))))
        # theta -10 deg: to the avatar's own right, half of 20; phi -30: up, clipped to 1
        assert (v["LookRight"], v["LookLeft"], v["LookUp"], v["LookDown"]) == pytest.approx((0.5, 0, 1, 0))
    finally:
        out.close()
    out = VMCOutput("127.0.0.1", 39539, look_blendshapes=False)
    try:
        assert not any(n.startswith("Look") for n, _ in out.blend_values(frame()))
    finally:
        out.close()


def test_vmc_sends_one_bundle_per_frame():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    with VMCOutput("127.0.0.1", rx.getsockname()[1]) as out:
        for i in range(3):
            out.send(frame(euler=(i * 5.0, 0.0, 0.0)))
        datagrams = [rx.recv(65536) for _ in range(3)]
    rx.close()
    for d in datagrams:
        assert OscBundle.dgram_is_bundle(d)
        assert OscBundle(d).num_contents == 17


def test_vmc_send_without_a_receiver_neither_blocks_nor_raises():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                               # nobody listens there now
    with VMCOutput("127.0.0.1", port) as out:
        t0 = time.perf_counter()
        for _ in range(500):
            out.send(frame())
        elapsed = time.perf_counter() - t0
        c = out.counters()
    assert c["sent"] + c["errors"] == 500
    assert elapsed < 1.0, f"500 sends took {elapsed:.3f} s"


# --------------------------------------------------------------------------------------------
# VTube Studio: parameter mapping


def test_vts_parameters_from_live2d_params_and_from_raw_fields():
    p = vts_parameters(frame(params={"ParamAngleX": -12.0, "ParamAngleY": 5.0, "ParamAngleZ": 3.0,
                                     "ParamEyeLOpen": 0.2, "ParamEyeROpen": 0.9,
                                     "ParamEyeBallX": 0.4, "ParamEyeBallY": -0.3,
                                     "ParamMouthOpenY": 0.6, "ParamMouthForm": 0.5,
                                     "ParamBrowLY": -1.0, "ParamBrowRY": 0.0}))
    assert p == pytest.approx(dict(FaceAngleX=-12.0, FaceAngleY=5.0, FaceAngleZ=3.0,
                                   EyeOpenLeft=0.2, EyeOpenRight=0.9, EyeLeftX=0.4, EyeRightX=0.4,
                                   EyeLeftY=-0.3, EyeRightY=-0.3, MouthOpen=0.6, MouthSmile=0.75,
                                   BrowLeftY=0.0, BrowRightY=0.5, Brows=0.25))

    # without the Live2D parameters: from the raw fields, which already hold the avatar's motion
    # after the bridge's mirror choice (no mirroring here): yaw 20 (its own left) is the screen's
    # right, roll 5 (its right shoulder) the screen's left; blink is (screen-left, screen-right)
    # and EyeOpenLeft the model's own left eye, on the screen's right
    raw = frame(euler=(10.0, 20.0, 5.0), eye=(math.radians(12.5), math.radians(-25.0)),
                blink=(0.3, 0.8), mouth=0.4)
    m = vts_parameters(raw, eye_range_deg=25.0)
    assert m["FaceAngleX"] == pytest.approx(20.0)
    assert m["FaceAngleY"] == pytest.approx(-10.0)    # pitch > 0 looks down; ParamAngleY > 0 is up
    assert m["FaceAngleZ"] == pytest.approx(-5.0)
    assert (m["EyeOpenLeft"], m["EyeOpenRight"]) == pytest.approx((0.8, 0.3))
    assert m["EyeLeftX"] == pytest.approx(0.5) and m["EyeLeftY"] == pytest.approx(1.0)
    assert m["MouthOpen"] == pytest.approx(0.4)
    assert "MouthSmile" not in m and "Brows" not in m
    with pytest.raises(TypeError):
        vts_parameters(raw, mirror=True)
    with pytest.raises(TypeError):
        VTubeStudioOutput("ws://127.0.0.1:1", mirror=True, start=False)
    with pytest.raises(ValueError):      # VTS refuses names under 3 characters
        VTubeStudioOutput("ws://127.0.0.1:1", plugin_name="vt", start=False)
    # ranges: 0..1 and -1..1 clamped, head angles kept (VTS's mapping clamps) up to +-90
    c = vts_parameters(frame(params={"ParamAngleX": 45.0, "ParamMouthOpenY": 1.7, "ParamEyeBallX": -3.0}))
    assert (c["FaceAngleX"], c["MouthOpen"], c["EyeLeftX"]) == (45.0, 1.0, -1.0)


# --------------------------------------------------------------------------------------------
# VTube Studio against a fake VTS


@pytest.fixture
def vts():
    server = FakeVTS().start()
    yield server
    server.shutdown()


def make_output(url, token_path, **kw):
    kw.setdefault("resend_interval", 0.3)
    kw.setdefault("reconnect_min", 0.05)
    kw.setdefault("reconnect_max", 0.3)
    return VTubeStudioOutput(url, token_path=token_path, **kw)


def test_vts_token_flow_injection_and_resend(vts, tmp_path):
    token_file = tmp_path / "cfg" / "vtube_studio_token"
    out = make_output(vts.url, token_file)
    try:
        t0 = time.perf_counter()
        out.send(frame(params={"ParamAngleX": 12.5, "ParamEyeLOpen": 0.25, "ParamMouthOpenY": 0.5,
                               "ParamMouthForm": 0.2, "ParamBrowLY": 0.4, "ParamBrowRY": 0.0}))
        assert time.perf_counter() - t0 < 0.1
        wait_for(lambda: vts.injections, what="an injection")
        # a name VTS accepts (3 to 32 characters) that says what the plugin is, not the minimum
        assert vts.token_requests == [{"pluginName": PLUGIN_NAME, "pluginDeveloper": PLUGIN_DEVELOPER}]
        assert len(PLUGIN_NAME) > 3 and len(PLUGIN_DEVELOPER) > 3
        token = token_file.read_text().strip()
        assert token == "token-1"
        assert (token_file.stat().st_mode & 0o777) == 0o600
        assert vts.auth_requests == [(token, True)]

        data = vts.injections[0][1]
        assert data["mode"] == "set" and data["faceFound"] is True
        values = {p["id"]: p["value"] for p in data["parameterValues"]}
        assert values["FaceAngleX"] == pytest.approx(12.5)
        assert values["EyeOpenLeft"] == pytest.approx(0.25)
        assert values["MouthOpen"] == pytest.approx(0.5)
        assert values["MouthSmile"] == pytest.approx(0.6)
        assert values["BrowLeftY"] == pytest.approx(0.7) and values["Brows"] == pytest.approx(0.6)
        assert {"FaceAngleY", "FaceAngleZ", "EyeOpenRight", "EyeLeftX", "EyeLeftY",
                "EyeRightX", "EyeRightY"} <= set(values)

        # no new frames: the newest one is re-sent at least once a second
        n0, t_start = len(vts.injections), time.monotonic()
        time.sleep(2.2)
        times = [t_start] + [t for t, _ in vts.injections[n0:]]
        assert len(times) - 1 >= 3, f"only {len(times) - 1} re-sends in 2.2 s"
        assert max(np.diff(times)) < 1.0
        assert all(d == data for _, d in vts.injections[n0:])

        # a new frame goes out at once and replaces the old values
        n1 = len(vts.injections)
        out.send(frame(params={"ParamAngleX": -7.0}))
        wait_for(lambda: len(vts.injections) > n1, what="the new frame")
        newest = vts.injections[-1][1]
        assert {p["id"]: p["value"] for p in newest["parameterValues"]}["FaceAngleX"] == -7.0
        assert newest["faceFound"] is True
        c = out.counters()
        assert c["state"] == "streaming" and c["token_requests"] == 1 and c["auth_ok"] == 1
        wait_for(lambda: out.counters()["injection_ok"] == len(vts.injections), what="answers")
        assert vts.bad_messages == []
    finally:
        out.close()

    # the next connection reuses the stored token: no new token request
    out2 = make_output(vts.url, token_file)
    try:
        out2.send(frame())
        wait_for(lambda: out2.counters()["injections"] > 0 and len(vts.auth_requests) == 2,
                 what="the second session")
        assert vts.auth_requests[1] == (token, True)
        assert len(vts.token_requests) == 1 and out2.counters()["token_requests"] == 0
    finally:
        out2.close()


def test_vts_revoked_token_gets_a_new_one(vts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("revoked-token\n")
    out = make_output(vts.url, token_file)
    try:
        out.send(frame())
        wait_for(lambda: vts.injections, what="an injection")
        assert vts.auth_requests == [("revoked-token", False), ("token-1", True)]
        assert token_file.read_text().strip() == "token-1"
        c = out.counters()
        assert (c["auth_rejected"], c["token_requests"], c["auth_ok"]) == (1, 1, 1)
    finally:
        out.close()


def test_vts_denied_token_waits_before_asking_again(vts, tmp_path):
    vts.deny_tokens = True
    out = make_output(vts.url, tmp_path / "token", denied_retry_s=30.0)
    try:
        out.send(frame())
        wait_for(lambda: "denied" in out.counters()["last_error"], what="the denial")
        time.sleep(0.5)
        assert len(vts.token_requests) == 1          # no popup storm
        assert out.counters()["state"] == "waiting" and not (tmp_path / "token").exists()
    finally:
        t0 = time.perf_counter()
        out.close()                                  # close() interrupts the long wait
        assert time.perf_counter() - t0 < 2.0


def test_vts_token_path_that_is_a_directory_asks_once(vts, tmp_path, caplog):
    """A token path that cannot be written (a directory) made vtb ask VTS for a new token at
    every reconnect: an "allow plugin" pop-up every few seconds. Now: one ERROR line saying why,
    the token is kept for this run, and a reconnect authenticates with it without asking."""
    token_dir = tmp_path / "a_directory"
    token_dir.mkdir()
    out = make_output(vts.url, token_dir)
    try:
        out.send(frame(params={"ParamAngleX": 3.0}))
        wait_for(lambda: vts.injections, what="an injection")
        vts.stop()                                   # VTS restarts: vtb reconnects
        wait_for(lambda: out.counters()["state"] != "streaming", what="the drop to be noticed")
        n = len(vts.injections)
        vts.start()
        out.send(frame(params={"ParamAngleX": 4.0}))
        wait_for(lambda: len(vts.injections) > n, timeout=5.0, what="injections after the restart")
        assert len(vts.token_requests) == 1, "asked once, not at every reconnect"
        assert vts.auth_requests[-1] == ("token-1", True)
        c = out.counters()
        assert c["token_save_errors"] == 1 and c["tokens_saved"] == 0
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "cannot save the plugin token" in errors[0] and str(token_dir) in errors[0]
    finally:
        out.close()


def test_vts_api_switched_off_keeps_the_token_and_retries(vts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("token-1\n")
    vts.add_token("token-1", PLUGIN_NAME, PLUGIN_DEVELOPER)
    vts.api_active = False
    out = make_output(vts.url, token_file)
    try:
        out.send(frame())
        wait_for(lambda: vts.connections >= 3, what="retries")
        assert token_file.read_text().strip() == "token-1"   # not a verdict on the token
        assert vts.token_requests == [] and vts.injections == []
        vts.api_active = True                                     # the user switches it on
        wait_for(lambda: vts.injections, what="an injection")
        assert vts.auth_requests[-1] == ("token-1", True) and vts.token_requests == []
    finally:
        out.close()


def test_vts_reconnects_after_vts_restarts(vts, tmp_path):
    token_file = tmp_path / "token"
    out = make_output(vts.url, token_file)
    try:
        out.send(frame(params={"ParamAngleX": 3.0}))
        wait_for(lambda: vts.injections, what="an injection")
        vts.stop()                                   # VTS quits
        wait_for(lambda: out.counters()["state"] != "streaming", what="the drop to be noticed")
        for i in range(20):                          # frames while VTS is away: no blocking
            t0 = time.perf_counter()
            out.send(frame(params={"ParamAngleX": float(i)}))
            assert time.perf_counter() - t0 < 0.1
        time.sleep(0.5)                              # a few failed reconnects
        assert out.counters()["failures"] >= 2
        n = len(vts.injections)
        vts.start()                                  # VTS is back, same port
        wait_for(lambda: len(vts.injections) > n, timeout=5.0, what="injections after the restart")
        assert vts.connections >= 2
        assert len(vts.token_requests) == 1          # re-authenticated with the stored token
        assert vts.auth_requests[-1] == ("token-1", True)
        values = {p["id"]: p["value"] for p in vts.injections[-1][1]["parameterValues"]}
        assert values["FaceAngleX"] == 19.0          # the newest frame
        assert out.counters()["state"] == "streaming"
    finally:
        out.close()


def test_vts_without_vts_never_blocks(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = make_output(f"ws://127.0.0.1:{port}", tmp_path / "token")
    try:
        t0 = time.perf_counter()
        for _ in range(1000):
            out.send(frame())
        assert time.perf_counter() - t0 < 0.5
        wait_for(lambda: out.counters()["failures"] >= 2, what="failed connection attempts")
        c = out.counters()
        assert c["frames"] == 1000 and c["injections"] == 0 and c["last_error"]
    finally:
        t0 = time.perf_counter()
        out.close()
        assert time.perf_counter() - t0 < 2.0
    assert not (tmp_path / "token").exists()


def test_vts_stops_injecting_when_the_face_is_lost(vts, tmp_path):
    """Frames of a lost face (tracked=False, the bridge easing back to neutral) are not injected
    and the re-sending stops, so VTS takes its parameters back; the next tracked frame resumes."""
    out = make_output(vts.url, tmp_path / "token", resend_interval=0.2)
    try:
        out.send(frame(params={"ParamAngleX": 10.0}))
        wait_for(lambda: len(vts.injections) >= 2, what="injections and a re-send")
        for i in range(10):                               # the bridge eases back to neutral
            out.send(frame(params={"ParamAngleX": 10.0 - i}, tracked=False))
            time.sleep(1 / 30)
        time.sleep(0.3)                                   # what was in flight
        n = len(vts.injections)
        time.sleep(1.5)                                   # VTS forgets after about 1 s
        assert len(vts.injections) == n, "no injections, no re-sends once the face is lost"
        assert all(d["faceFound"] for _, d in vts.injections)
        assert all(vts.values(i)["FaceAngleX"] == 10.0 for i in range(n))
        assert out.counters()["untracked"] >= 1
        out.send(frame(params={"ParamAngleX": 4.0}))      # the face is back
        wait_for(lambda: len(vts.injections) > n, what="injections again")
        assert vts.values()["FaceAngleX"] == 4.0
    finally:
        out.close()


def test_vts_close_is_a_normal_closure(vts, tmp_path):
    out = make_output(vts.url, tmp_path / "token")
    try:
        out.send(frame())
        wait_for(lambda: vts.injections, what="an injection")
    finally:
        out.close()
    wait_for(lambda: vts.closes, what="the connection to end")
    assert vts.closes[-1][0] == 1000, f"closed with {vts.closes[-1]}"


def test_vts_backs_off_when_injections_are_refused(vts, tmp_path):
    """APIError 454 (a parameter is controlled by another plugin) to every injection: vtb pauses
    (1 s, doubling) instead of sending 30 frames a second into it, and resumes once it passes."""
    vts.inject_error = 454
    out = make_output(vts.url, tmp_path / "token", error_backoff_min=0.4, error_backoff_max=1.6)
    stop = False

    def stream():
        i = 0
        while not stop:
            out.send(frame(params={"ParamAngleX": float(i % 20)}))
            i += 1
            time.sleep(1 / 30)
    import threading
    t = threading.Thread(target=stream, daemon=True)
    t.start()
    try:
        wait_for(lambda: vts.injection_errors, what="a refused injection")
        t0 = vts.injection_errors[0][0]
        time.sleep(3.0)                       # 90 frames sent
        refused = [t for t, _ in vts.injection_errors]
        # pauses of 0.4, 0.8, 1.6 s: a handful of tries in 3 s, not 90
        assert len(refused) <= 8, f"{len(refused)} injections into errors in 3 s"
        tries = sorted({round(t - t0, 1) for t in refused})
        assert tries[-1] > 1.0, f"still trying: {tries}"
        c = out.counters()
        assert c["backoffs"] >= 3 and c["state"] == "streaming" and "454" in c["last_error"]
        vts.inject_error = None               # the other plugin let go
        wait_for(lambda: len(vts.injections) >= 10, timeout=4.0, what="injections to resume")
        assert out.counters()["connects"] == 1, "no reconnect needed"
    finally:
        stop = True
        t.join(2)
        out.close()


def test_the_token_file_is_private_even_over_a_stale_temporary_file(tmp_path):
    """A stale token.tmp left readable by everyone (0644) used to keep its mode through the
    rename: the token is always written 0600."""
    import os
    import stat
    from vtb_bridge.vtube_studio_output import VTubeStudioOutput
    token = tmp_path / "cfg" / "vtube_studio_token"
    token.parent.mkdir()
    stale = token.with_name(token.name + ".tmp")
    stale.write_text("old\n")
    os.chmod(stale, 0o644)
    out = VTubeStudioOutput(url="ws://127.0.0.1:9", token_path=token)
    try:
        out._save_token("secret")
    finally:
        out.close()
    assert token.read_text() == "secret\n"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


# --------------------------------------------------------------------------------------------
# perfect sync: the 52 ARKit blendshapes

ARKIT = {"eyeBlinkLeft": 0.9, "eyeBlinkRight": 0.1, "jawOpen": 0.45, "mouthSmileLeft": 0.7,
         "mouthLowerDownRight": 0.3, "browInnerUp": 0.2, "tongueOut": 0.0}


def test_vmc_perfect_sync_blendshapes_parsed_by_vmcp():
    """vmcp (a VMC parser library) receives the ARKit names after the presets, with the frame's
    values, and then Apply; without perfect_sync only the presets."""
    moving = [frame(blendshapes=dict(ARKIT, jawOpen=j)) for j in (0.1, 0.5, 0.9)]
    with VMCReceiver.shared() as rx, VMCOutput("127.0.0.1", rx.port) as out:
        received_frames(out, moving, rx)
    per_bundle = 17 + len(ARKIT)
    assert rx.messages == len(rx.events) == 3 * per_bundle
    for k, j in enumerate((0.1, 0.5, 0.9)):
        one = rx.events[k * per_bundle:(k + 1) * per_bundle]
        assert type(one[-1]).__name__ == "BlendShapeApplyEvent"
        blends = [(e.key, e.value) for e in one if type(e).__name__ == "BlendShapeEvent"]
        assert [name for name, _ in blends[11:]] == list(ARKIT), "the ARKit names, after the presets"
        got = dict(blends[11:])
        assert got == pytest.approx(dict(ARKIT, jawOpen=j), abs=1e-6)
    with VMCReceiver.shared() as rx, VMCOutput("127.0.0.1", rx.port, perfect_sync=False) as out:
        received_frames(out, moving[:1], rx)
    assert rx.messages == 17


def test_vts_perfect_sync_custom_parameters(vts, tmp_path):
    """The blendshapes become custom parameters vtb<Name>, created once per connection with
    ParameterCreationRequest (0..1), then injected with the rest; the VTS stand-in answers 453
    to an injection naming a parameter that does not exist, so none goes out before it is."""
    from vtb_bridge.vtube_studio_output import custom_parameter
    out = make_output(vts.url, tmp_path / "token")
    try:
        for j in (0.2, 0.6):
            out.send(frame(blendshapes=dict(ARKIT, jawOpen=j)))
            wait_for(lambda: vts.injections and vts.values().get("vtbJawOpen") == pytest.approx(j, abs=1e-6),
                     what=f"jawOpen {j} injected")
        assert set(vts.custom_parameters) == {custom_parameter(n) for n in ARKIT}
        c = vts.custom_parameters["vtbEyeBlinkLeft"]
        assert (c["min"], c["max"], c["defaultValue"]) == (0, 1, 0) and "eyeBlinkLeft" in c["explanation"]
        values = vts.values()
        assert values["vtbEyeBlinkLeft"] == pytest.approx(0.9) and values["vtbMouthLowerDownRight"] == pytest.approx(0.3)
        assert "FaceAngleX" in values, "the default parameters still go with them"
        assert vts.unknown_injected == [] and out.counters()["parameters_created"] == len(ARKIT)
        assert out.counters()["backoffs"] == 0 and vts.bad_messages == []
    finally:
        out.close()
