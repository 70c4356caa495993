"""VMC (OSC/UDP) and VTube Studio (WebSocket plugin API) outputs against local receivers:
a python-osc server for VMC, and a small asyncio `websockets` server that answers like
VTube Studio (token request, authentication, InjectParameterDataRequest)."""
from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_server import BlockingOSCUDPServer

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.vmc_output import VMCOutput, unity_quaternion, unity_rotation
from vtb_bridge.vtube_studio_output import VTubeStudioOutput, vts_parameters


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


@pytest.mark.parametrize("mirror", [False, True])
def test_head_angles_become_unity_rotations(mirror):
    s = 1.0 if mirror else -1.0
    # yaw > 0 (the user turns to their own left): the avatar turns to its own left (about -y,
    # since +y turns a Unity character to its own right), or mirrored to its own right.
    assert np.allclose(unity_quaternion(30, 0, 0, mirror), quat_about(1, s * 30), atol=1e-9)
    # pitch > 0 (looks down) is +x in Unity either way
    assert np.allclose(unity_quaternion(0, 20, 0, mirror), quat_about(0, 20), atol=1e-9)
    # roll > 0 (tilts to the right shoulder): +z tilts a Unity character to its LEFT shoulder
    assert np.allclose(unity_quaternion(0, 0, 15, mirror), quat_about(2, s * 15), atol=1e-9)

    # The same by what happens to the avatar's axes (Unity: x its own right, y up, z forward).
    fwd = unity_rotation(30, 0, 0, mirror) @ [0, 0, 1]
    assert np.sign(fwd[0]) == s            # nose towards -x (own left), or +x mirrored
    assert (unity_rotation(0, 20, 0, mirror) @ [0, 0, 1])[1] < -0.3   # nose goes down
    up = unity_rotation(0, 0, 15, mirror) @ [0, 1, 0]
    assert np.sign(up[0]) == -s            # crown towards +x (own right shoulder) unmirrored


def test_combined_rotation_is_a_proper_rotation_in_vtb_order():
    r = unity_rotation(25, -10, 8, mirror=False)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    # yaw first, then pitch about the turned head's own (left-right) axis: the nose keeps the
    # yaw's direction in the horizontal plane and rises by the pitch.
    fwd = r @ [0, 0, 1]
    assert np.isclose(math.degrees(math.asin(fwd[1])), 10.0)                  # pitch -10: up
    assert np.isclose(math.degrees(math.atan2(-fwd[0], fwd[2])), 25.0)         # to its left
    q = unity_quaternion(25, -10, 8, mirror=False)
    assert np.isclose(np.linalg.norm(q), 1.0) and q[3] >= 0


# --------------------------------------------------------------------------------------------
# VMC over a python-osc server


@pytest.fixture
def osc_server():
    received = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, args)))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()
    thread.join(2)


@pytest.mark.parametrize("mirror", [False, True])
def test_vmc_bundle_reaches_an_osc_server(osc_server, mirror):
    port, received = osc_server
    f = frame(euler=(0.0, 30.0, 0.0), eye=(0.2, 0.1), blink=(0.25, 0.9),
              params={"ParamA": 0.8, "ParamI": 0.1, "ParamU": 0.0, "ParamE": 0.05, "ParamO": 1.4})
    with VMCOutput("127.0.0.1", port, mirror=mirror) as out:
        assert out.send(f)
        wait_for(lambda: len(received) >= 11, what="the VMC messages")
        assert out.counters()["sent"] == 1 and out.counters()["errors"] == 0

    addresses = [a for a, _ in received]
    assert addresses == ["/VMC/Ext/Blend/Val"] * 7 + ["/VMC/Ext/Blend/Apply"] + ["/VMC/Ext/Bone/Pos"] * 3
    blends = {args[0]: args[1] for a, args in received if a == "/VMC/Ext/Blend/Val"}
    assert [args[0] for a, args in received[:7]] == ["Blink_L", "Blink_R", "A", "I", "U", "E", "O"]
    left, right = (0.9, 0.25) if mirror else (0.25, 0.9)   # mirrored: avatar's left = user's right
    assert blends["Blink_L"] == pytest.approx(1 - left, abs=1e-6)     # VRM blink: 1 = closed
    assert blends["Blink_R"] == pytest.approx(1 - right, abs=1e-6)
    assert [blends[v] for v in "AIUEO"] == pytest.approx([0.8, 0.1, 0.0, 0.05, 1.0], abs=1e-6)
    assert received[7][1] == ()

    bones = {args[0]: args[1:] for a, args in received if a == "/VMC/Ext/Bone/Pos"}
    assert [args[0] for a, args in received[8:]] == ["Head", "LeftEye", "RightEye"]
    assert all(len(v) == 7 for v in bones.values())
    # yaw +30: -30 about Unity y (the avatar turns to its own left), mirrored +30
    expected = quat_about(1, 30 if mirror else -30)
    assert bones["Head"][3:] == pytest.approx(expected, abs=1e-6)
    eye_q = unity_quaternion(math.degrees(0.2), math.degrees(0.1), 0.0, mirror)
    assert bones["LeftEye"][3:] == pytest.approx(eye_q, abs=1e-6)
    assert bones["RightEye"][3:] == pytest.approx(eye_q, abs=1e-6)


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
        assert OscBundle(d).num_contents == 11


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

    raw = frame(euler=(10.0, 20.0, 5.0), eye=(math.radians(12.5), math.radians(-25.0)),
                blink=(0.3, 0.8), mouth=0.4)
    m = vts_parameters(raw, mirror=True, eye_range_deg=25.0)
    assert m["FaceAngleX"] == pytest.approx(-20.0)    # mirrored: turns to the screen side the user turns to
    assert m["FaceAngleY"] == pytest.approx(-10.0)    # pitch > 0 looks down; ParamAngleY > 0 is up
    assert m["FaceAngleZ"] == pytest.approx(5.0)
    assert (m["EyeOpenLeft"], m["EyeOpenRight"]) == pytest.approx((0.8, 0.3))
    assert m["EyeLeftX"] == pytest.approx(-0.5) and m["EyeLeftY"] == pytest.approx(1.0)
    assert m["MouthOpen"] == pytest.approx(0.4)
    assert "MouthSmile" not in m and "Brows" not in m
    u = vts_parameters(raw, mirror=False)
    assert (u["FaceAngleX"], u["FaceAngleZ"], u["EyeOpenLeft"]) == pytest.approx((20.0, -5.0, 0.3))
    # ranges: 0..1 and -1..1 clamped, head angles kept (VTS's mapping clamps) up to +-90
    c = vts_parameters(frame(params={"ParamAngleX": 45.0, "ParamMouthOpenY": 1.7, "ParamEyeBallX": -3.0}))
    assert (c["FaceAngleX"], c["MouthOpen"], c["EyeLeftX"]) == (45.0, 1.0, -1.0)


# --------------------------------------------------------------------------------------------
# VTube Studio against a fake VTS


class FakeVTS:
    """A WebSocket server on 127.0.0.1 answering like VTube Studio's plugin API. Tokens it issued
    stay valid across restart() (like VTS's stored plugin list) unless revoked."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.port = 0
        self.valid_tokens = set()
        self.token_requests = []         # data of each AuthenticationTokenRequest
        self.auth_requests = []          # (token, accepted)
        self.injections = []             # (monotonic time, data)
        self.connections = 0
        self.bad_messages = []
        self.api_active = True           # False: every request gets APIError 1, as with the API off
        self.deny_tokens = False         # True: the user clicks Deny (APIError 50)

    def _run(self, coro, timeout=5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        from websockets.asyncio.server import serve

        async def _start():
            self.server = await serve(self._handler, "127.0.0.1", self.port)
            self.port = self.server.sockets[0].getsockname()[1]
        self._run(_start())
        return self

    def stop(self):
        async def _stop():
            self.server.close()
            await self.server.wait_closed()
        self._run(_stop())

    def shutdown(self):
        if self.server is not None:
            try:
                self.stop()
            except Exception:
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, ws):
        self.connections += 1
        authenticated = False
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("apiName") != "VTubeStudioPublicAPI" or msg.get("apiVersion") != "1.0" \
                    or "requestID" not in msg:
                self.bad_messages.append(msg)
            kind, data = msg.get("messageType"), msg.get("data") or {}
            reply = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0",
                     "timestamp": int(time.time() * 1000), "requestID": msg.get("requestID")}
            if not self.api_active:
                reply.update(messageType="APIError",
                             data={"errorID": 1, "message": "API access deactivated."})
            elif kind == "AuthenticationTokenRequest" and self.deny_tokens:
                self.token_requests.append(data)
                reply.update(messageType="APIError", data={
                    "errorID": 50, "message": "User has denied API access for your plugin."})
            elif kind == "AuthenticationTokenRequest":
                self.token_requests.append(data)
                token = f"token-{len(self.token_requests)}-{data.get('pluginName')}"
                self.valid_tokens.add(token)
                reply.update(messageType="AuthenticationTokenResponse",
                             data={"authenticationToken": token})
            elif kind == "AuthenticationRequest":
                token = data.get("authenticationToken")
                ok = (token in self.valid_tokens and data.get("pluginName") == "vtb"
                      and data.get("pluginDeveloper") == "vtb")
                self.auth_requests.append((token, ok))
                authenticated = ok
                reply.update(messageType="AuthenticationResponse", data={
                    "authenticated": ok, "reason": "Token valid." if ok else "Token invalid."})
            elif kind == "InjectParameterDataRequest":
                if not authenticated:
                    reply.update(messageType="APIError",
                                 data={"errorID": 8, "message": "Requires authentication."})
                else:
                    self.injections.append((time.monotonic(), data))
                    reply.update(messageType="InjectParameterDataResponse", data={})
            else:
                reply.update(messageType="APIError", data={"errorID": 7, "message": "unknown"})
            await ws.send(json.dumps(reply))


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
        assert vts.token_requests == [{"pluginName": "vtb", "pluginDeveloper": "vtb"}]
        token = token_file.read_text().strip()
        assert token == "token-1-vtb"
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
        out.send(frame(params={"ParamAngleX": -7.0}, tracked=False))
        wait_for(lambda: len(vts.injections) > n1, what="the new frame")
        newest = vts.injections[-1][1]
        assert {p["id"]: p["value"] for p in newest["parameterValues"]}["FaceAngleX"] == -7.0
        assert newest["faceFound"] is False
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
        assert vts.auth_requests == [("revoked-token", False), ("token-1-vtb", True)]
        assert token_file.read_text().strip() == "token-1-vtb"
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


def test_vts_api_switched_off_keeps_the_token_and_retries(vts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("token-1-vtb\n")
    vts.valid_tokens.add("token-1-vtb")
    vts.api_active = False
    out = make_output(vts.url, token_file)
    try:
        out.send(frame())
        wait_for(lambda: vts.connections >= 3, what="retries")
        assert token_file.read_text().strip() == "token-1-vtb"   # not a verdict on the token
        assert vts.token_requests == [] and vts.injections == []
        vts.api_active = True                                     # the user switches it on
        wait_for(lambda: vts.injections, what="an injection")
        assert vts.auth_requests[-1] == ("token-1-vtb", True) and vts.token_requests == []
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
        assert vts.auth_requests[-1] == ("token-1-vtb", True)
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
