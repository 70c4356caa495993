"""vtb_bridge's Socket.IO outputs against real Socket.IO peers (Node.js) and a real browser.

- SocketIOOutput (client) -> a NodeServer-shaped socket.io server (test/js/nodeserver.js) of each
  generation: socket.io 2.5.0 (Engine.IO 3, the original toolkit's NodeServer), 3.1 (upstream
  OpenVtuber's) and 4.8, from npm (the first two as the aliases socket-io-v2, socket-io-v3);
- AvatarServer (built-in server) -> socket.io-client (test/js/client.js) and headless Chromium
  (test/js/screenshot.js, playwright-core driving Debian's /usr/bin/chromium).

Needs Node.js, the npm packages of test/js (npm ci --prefix src/vtb_bridge/test/js) and Debian's
chromium; without them these tests fail and say how to set them up (they never skip).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import statistics
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.avatar_server import SOCKETIO_JS, WEB_DIR, AvatarServer
from vtb_bridge.socketio_output import SocketIOOutput, probe

JS = Path(__file__).resolve().parent / "js"
CHROMIUM = os.environ.get("VTB_CHROMIUM", "/usr/bin/chromium")
SETUP = ("set it up with ./vtb (its setup runs `npm ci --prefix src/vtb_bridge/test/js` and "
         "installs Debian's chromium), or by hand: `npm ci --prefix src/vtb_bridge/test/js` and "
         "`apt-get install -y chromium`")
NODESERVER_KEYS = {"euler": 3, "eye": 2, "mouth": None, "blink": 2}   # list lengths, None: a number


def need_node():
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node (Node.js) is not on PATH: {SETUP}")
    for pkg in ("socket.io", "socket-io-v2", "socket-io-v3", "socket.io-client", "playwright-core"):
        if not (JS / "node_modules" / pkg / "package.json").is_file():
            pytest.fail(f"{JS / 'node_modules' / pkg} is missing: {SETUP}")
    return node


def need_chromium():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {SETUP}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def json_lines(proc):
    out = []
    for line in proc.output().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_for(predicate, timeout=20.0, what="condition", proc=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            extra = f"\n--- process output ---\n{proc.output()}" if proc is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(0.02)


def received(proc):
    return [o["result_data"] for o in json_lines(proc) if "result_data" in o]


def start_nodeserver(start_process, port, version="v4", *options):
    """nodeserver.js on `port`: socket.io `version` v2 (2.5.0), v3 (3.1) or v4 (4.8)."""
    proc = start_process([need_node(), JS / "nodeserver.js", port, version, *options],
                         name=f"nodeserver-{version}")
    wait_for(lambda: any("listening" in o for o in json_lines(proc)), 15, "nodeserver.js to listen", proc)
    want = {"v2": "2.", "v3": "3.1.", "v4": "4."}[version]
    listening = next(o for o in json_lines(proc) if "listening" in o)
    assert listening["socketio"].startswith(want), listening
    return proc


# (server generation, the output's protocol setting) -> what the connection must have spoken
SERVERS = ["v2", "v3", "v4"]
SPOKEN = {"v2": "v2", "v3": "v3", "v4": "v3"}


EXPRESSIVE = {"ParamAngleX": 0.0, "ParamAngleY": 0.0, "ParamAngleZ": 15.0, "ParamEyeLOpen": 0.0,
              "ParamEyeROpen": 1.0, "ParamEyeBallX": 1.0, "ParamEyeBallY": 0.5, "ParamBrowLY": 1.0,
              "ParamBrowRY": -1.0, "ParamMouthOpenY": 1.0, "ParamMouthForm": 1.0}


def frame(i, angle_x=0.0):
    """A frame whose every value is distinct and not an integer (so types survive JSON);
    angle_x="expressive": a tilted head, a wink, a wide smile."""
    if angle_x == "expressive":
        return AvatarFrame(face_id="f3a9", stamp=1000.0 + i * 0.033 + 0.0005, params=EXPRESSIVE)
    return AvatarFrame(
        face_id="f3a9", stamp=1000.0 + i * 0.033 + 0.0005,
        params={"ParamAngleX": angle_x + 0.25, "ParamAngleY": -4.5, "ParamEyeLOpen": 0.75,
                "ParamMouthOpenY": 0.125 + i * 1e-3},
        euler=(5.5, -12.25, 3.75), eye=(0.125, -0.0625), mouth=0.375 + i * 1e-3, blink=(0.5, 0.875),
        blendshapes={"eyeBlinkLeft": 0.0625, "jawOpen": 0.25 + i * 1e-3, "mouthSmileRight": 0.875, "tongueOut": 0.0})


class Streamer:
    """Sends frames from a thread at `hz`, timing every send() call."""

    def __init__(self, sink, hz=100.0, make=frame):
        self.sink, self.period, self.make = sink, 1.0 / hz, make
        self.durations, self.sent = [], {}
        self._stop = threading.Event()
        self.angle_x = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        i = 0
        while not self._stop.is_set():
            f = self.make(i, self.angle_x)
            t0 = time.perf_counter()
            self.sink.send(f)
            self.durations.append(time.perf_counter() - t0)
            self.sent[f.stamp] = f.result_data()
            i += 1
            time.sleep(self.period)

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def check_payload(got, want):
    assert set(got) == set(want) == set(NODESERVER_KEYS) | {"params", "face_id", "stamp", "blendshapes"}
    assert set(got["blendshapes"]) == {"eyeBlinkLeft", "jawOpen", "mouthSmileRight", "tongueOut"}
    for key, n in NODESERVER_KEYS.items():
        if n is None:
            assert isinstance(got[key], (int, float)) and not isinstance(got[key], bool), key
        else:
            assert isinstance(got[key], list) and len(got[key]) == n, key
            assert all(isinstance(v, (int, float)) for v in got[key]), key
    assert isinstance(got["params"], dict) and isinstance(got["face_id"], str)
    assert isinstance(got["stamp"], (int, float))
    assert got == want            # JSON numbers: 0.5 == 0.5, exactly what was sent


# ---- the Socket.IO client output against a NodeServer -------------------------------------------

@pytest.mark.parametrize("version,protocol", [("v2", "auto"), ("v2", "v2"), ("v3", "auto"), ("v3", "v3"),
                                              ("v4", "auto"), ("v4", "v4")])
def test_nodeserver_receives_result_data_with_the_nodeserver_shape(start_process, version, protocol):
    """Every NodeServer generation receives every field as sent, in order, over one connection
    that outlives several heartbeats (300 ms: client -> server pings in Engine.IO 3, the other
    way in Engine.IO 4; a missed one makes the server drop the connection)."""
    port = free_port()
    server = start_nodeserver(start_process, port, version, "--ping", "300")
    out = SocketIOOutput(f"http://127.0.0.1:{port}", protocol=protocol)
    streamer = Streamer(out, hz=50)
    try:
        wait_for(lambda: len(received(server)) >= 20, 15, "20 result_data at the NodeServer", server)
        time.sleep(1.5)                                     # 5 heartbeats
        wait_for(lambda: len(received(server)) >= 60, 15, "60 result_data at the NodeServer", server)
    finally:
        streamer.stop()
        out.close()
    got = received(server)
    for payload in got:
        check_payload(payload, streamer.sent[payload["stamp"]])
    stamps = [p["stamp"] for p in got]
    assert stamps == sorted(stamps), "frames arrive in order"
    assert out.sent >= len(got) and out.reconnects == 0 and out.connect_failures == 0, out.stats()
    assert out.server_protocol == SPOKEN[version]
    assert len([o for o in json_lines(server) if "connection" in o]) == 1, server.output()
    print(f"socket.io {version}, protocol {protocol}: {len(got)} result_data received")


@pytest.mark.parametrize("version", SERVERS)
def test_output_reconnects_after_the_nodeserver_restarts_and_never_blocks(start_process, version):
    port = free_port()
    first = start_nodeserver(start_process, port, version)
    out = SocketIOOutput(f"http://127.0.0.1:{port}", reconnect_delay=0.2, reconnect_delay_max=0.5)
    streamer = Streamer(out, hz=100)
    try:
        wait_for(lambda: len(received(first)) >= 10, 15, "frames before the restart", first)
        os.killpg(first.proc.pid, signal.SIGKILL)          # the server crashes
        first.proc.wait(5)
        wait_for(lambda: not out.connected, 10, "the output to notice the server is gone")
        down_from = len(streamer.durations)
        time.sleep(1.5)                                     # server down; frames keep coming
        down_durations = streamer.durations[down_from:]
        down_error = out.last_error
        second = start_nodeserver(start_process, port, version)   # restarted on the same port
        wait_for(lambda: len(received(second)) >= 10, 20, "frames after the restart", second)
    finally:
        streamer.stop()
        out.close()
    assert out.reconnects >= 1
    assert "connection refused" in down_error, down_error
    assert len(down_durations) > 50, "the streamer kept sending while the server was down"
    # send() only swaps a slot under a lock. A single call can still wait a GIL switch interval
    # (5 ms) or more on a busy 2-core machine, so the typical call is held to 1 ms and the worst
    # to 100 ms: a send() that waited for the network would take at least a reconnect delay.
    median_down = statistics.median(down_durations)
    worst = max(streamer.durations)
    assert median_down < 0.001, f"send() took {median_down * 1e3:.2f} ms (median) while down"
    assert worst < 0.1, f"send() took {worst * 1e3:.2f} ms"
    for payload in received(second):
        check_payload(payload, streamer.sent[payload["stamp"]])
    # nothing stale: the first frame after the restart was sent (by the caller) after the crash
    assert received(second)[0]["stamp"] > received(first)[-1]["stamp"]
    assert out.dropped > 0, "frames sent while the server was down are dropped, not queued"
    assert out.server_protocol == SPOKEN[version]
    print(f"socket.io {version}: {len(received(first))} result_data before the kill, "
          f"{len(received(second))} after the restart; down: {down_error}")


def test_auto_follows_a_server_replaced_by_another_generation(start_process):
    """socket.io 2 killed, socket.io 4 started on its port, then socket.io 2 again: auto asks
    the server again after every failed connection and streams to each."""
    port = free_port()
    out = SocketIOOutput(f"http://127.0.0.1:{port}", reconnect_delay=0.1, reconnect_delay_max=0.3)
    streamer = Streamer(out, hz=100)
    spoken = []
    try:
        for version in ("v2", "v4", "v2"):
            server = start_nodeserver(start_process, port, version)
            wait_for(lambda: len(received(server)) >= 10, 20, f"frames at socket.io {version}", server)
            spoken.append(out.server_protocol)
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(5)
            wait_for(lambda: not out.connected, 10, "the output to notice the server is gone")
    finally:
        streamer.stop()
        out.close()
    assert spoken == ["v2", "v3", "v2"]
    assert out.reconnects == 2


@pytest.mark.parametrize("version,protocol,reason", [
    ("v2", "v3", "server speaks Socket.IO v2 (Engine.IO 3), but socketio_protocol is 'v3'"),
    ("v4", "v2", "server speaks Socket.IO v3/v4 (Engine.IO 4), but socketio_protocol is 'v2'"),
])
def test_a_server_of_the_other_protocol_is_named_in_the_warning(start_process, caplog, version,
                                                                 protocol, reason):
    """A protocol set by hand that the server does not speak: nothing arrives, the warning says
    what the server speaks (once, not at every retry), the output keeps retrying."""
    port = free_port()
    server = start_nodeserver(start_process, port, version)
    caplog.set_level(logging.WARNING, logger="vtb_bridge.socketio_output")
    out = SocketIOOutput(f"http://127.0.0.1:{port}", protocol=protocol, connect_timeout=0.5,
                         reconnect_delay=0.1, reconnect_delay_max=0.2)
    streamer = Streamer(out, hz=50)
    try:
        wait_for(lambda: out.connect_failures >= 3, 20, "three failed attempts")
    finally:
        streamer.stop()
        out.close()
    assert received(server) == [] and not out.connected and out.sent == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "vtb_bridge.socketio_output"]
    assert len(warnings) == 1 and reason in warnings[0], warnings
    assert reason in out.last_error


@pytest.mark.parametrize("version", ["v2", "v4"])
def test_probe_and_output_with_a_websocket_only_server(start_process, version):
    """A server without HTTP long-polling: the probe asks over a WebSocket instead."""
    port = free_port()
    server = start_nodeserver(start_process, port, version, "--websocket-only")
    assert asyncio.run(probe(f"http://127.0.0.1:{port}"))[0] == SPOKEN[version]
    out = SocketIOOutput(f"http://127.0.0.1:{port}")
    streamer = Streamer(out, hz=50)
    try:
        wait_for(lambda: len(received(server)) >= 10, 15, "frames at the server", server)
    finally:
        streamer.stop()
        out.close()
    assert out.server_protocol == SPOKEN[version]
    for payload in received(server):
        check_payload(payload, streamer.sent[payload["stamp"]])


def test_probe_names_what_is_not_a_socketio_server(start_process):
    async def go(not_socketio_port, closed_port):
        from aiohttp import web
        app = web.Application()
        async def hello(request):
            return web.Response(text="hello")
        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", not_socketio_port).start()
        try:
            return (await probe(f"http://127.0.0.1:{not_socketio_port}"),
                    await probe(f"http://127.0.0.1:{closed_port}"))
        finally:
            await runner.cleanup()

    (proto_http, why_http), (proto_closed, why_closed) = asyncio.run(go(free_port(), free_port()))
    assert proto_http is None and why_http.startswith("not a Socket.IO server (HTTP 404"), why_http
    assert proto_closed is None and "connection refused" in why_closed, why_closed
    # and a v2 server is told from a v4 one
    port = free_port()
    start_nodeserver(start_process, port, "v2")
    assert asyncio.run(probe(f"http://127.0.0.1:{port}")) == ("v2", "server speaks Socket.IO v2 (Engine.IO 3)")


def test_vendored_v2_client_is_upstream_but_for_the_documented_rewrite():
    """vtb_bridge/_vendor holds python-socketio 4.6.1's and python-engineio 3.14.2's client
    modules as released (UPSTREAM.sha256: the sdists' files), but for the one documented
    rewrite `import engineio` -> `from .. import engineio`, and the client-only __init__.py."""
    import vtb_bridge._vendor as vendor
    from vtb_bridge._vendor import engineio, socketio
    root = Path(vendor.__file__).resolve().parent
    assert (socketio.__version__, engineio.__version__) == ("4.6.1", "3.14.2")
    listed = {}
    for line in (root / "UPSTREAM.sha256").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest
    shipped = {str(f.relative_to(root)) for f in root.glob("*/*") if f.suffix in (".py", "")
               and f.name != "__init__.py" and f.is_file()}
    assert shipped == set(listed), "every vendored file (but __init__.py) is listed, and only those"
    for name, digest in listed.items():
        text = (root / name).read_bytes().replace(b"\nfrom .. import engineio\n", b"\nimport engineio\n")
        assert hashlib.sha256(text).hexdigest() == digest, f"{name} differs from upstream"
    # vtb's code keeps the vendored client away from the process's SIGINT handler
    import signal as signal_module
    before = signal_module.getsignal(signal_module.SIGINT)
    from vtb_bridge.socketio_output import _vendored_v2_client
    sio4 = _vendored_v2_client()
    sio4.AsyncClient()                       # would install its handler from the main thread
    assert signal_module.getsignal(signal_module.SIGINT) is before


# ---- the built-in server ----------------------------------------------------------------------

def node_client(*args, timeout=30):
    node = need_node()
    r = subprocess.run([node, JS / "client.js", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return r.returncode, lines, r.stdout + r.stderr


def test_vendored_socketio_client_is_the_pinned_npm_one_and_the_page_loads_nothing_from_outside():
    need_node()
    npm_copy = JS / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
    assert SOCKETIO_JS.read_bytes() == npm_copy.read_bytes(), \
        f"copy {npm_copy} to {SOCKETIO_JS} (see web/vendor/README.md)"
    html = (WEB_DIR / "avatar.html").read_text()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_socketio_client_receives_parameters_from_the_builtin_server():
    server = AvatarServer(port=0)
    url = server.start()
    assert url.startswith("http://127.0.0.1:")
    streamer = Streamer(server, hz=50)
    try:
        rc, lines, output = node_client(url, 5)
    finally:
        streamer.stop()
        server.stop()
    assert rc == 0, output
    got = [o["result_data"] for o in lines if "result_data" in o]
    assert len(got) == 5
    for payload in got:
        check_payload(payload, streamer.sent[payload["stamp"]])
    assert statistics.median(streamer.durations) < 0.001 and max(streamer.durations) < 0.1


def test_builtin_server_also_emits_result_download_for_the_original_avatar_page():
    """The original three.js page listens for result_download (the NodeServer relays
    result_data under that name): the built-in server emits it too, the same payload."""
    server = AvatarServer(port=0)
    url = server.start()
    streamer = Streamer(server, hz=50)
    try:
        rc, lines, output = node_client(url, 5, "--event", "result_download")
    finally:
        streamer.stop()
        server.stop()
    assert rc == 0, output
    downloads = [o["result_download"] for o in lines if "result_download" in o]
    datas = {o["result_data"]["stamp"]: o["result_data"] for o in lines if "result_data" in o}
    assert len(downloads) == 5
    for payload in downloads:
        check_payload(payload, streamer.sent[payload["stamp"]])
        if payload["stamp"] in datas:
            assert datas[payload["stamp"]] == payload
    assert set(datas) & {p["stamp"] for p in downloads}, "both events carry each frame"


def test_builtin_server_refuses_clients_without_the_token_and_rejects_bad_messages():
    server = AvatarServer(port=0, token="s3cret-token")
    url = server.start()
    streamer = Streamer(server, hz=50)
    try:
        rc, lines, output = node_client(url, 2)                        # no token
        assert rc == 2 and lines[-1] == {"connect_error": "unauthorized"}, output
        rc, lines, output = node_client(url, 2, "--token", "wrong")
        assert rc == 2, output
        assert server.refused == 2
        rc, lines, output = node_client(url, 2, "--token", "s3cret-token")
        assert rc == 0, output
        rc, lines, output = node_client(url, 2, "--query-token", "s3cret-token")
        assert rc == 0, output

        # an unknown event: rejected and logged, the client keeps receiving
        rc, lines, output = node_client(url, 3, "--token", "s3cret-token", "--emit", "shutdown", '{"now": true}')
        assert rc == 0, output
        wait_for(lambda: server.rejected == 1, 5, "the unknown event to be rejected")

        # an oversized message (64 KiB > 16 KiB): the engine closes that connection
        rc, lines, output = node_client(url, 10**6, "--token", "s3cret-token", "--emit-big", "hello", 64)
        assert {"disconnect": "transport close"} in lines, output
        assert rc == 4, output

        # malformed packets over a raw WebSocket: rejected, that client disconnected
        # (Engine.IO message "4" + Socket.IO packet: broken JSON, a binary event, an unknown type)
        bad_packets = ('42/kizuna,["hello", {"unterminated": ',
                       '451-/kizuna,["hello",{"_placeholder":true,"num":0}]', '49garbage')
        for bad in bad_packets:
            assert raw_ws_send_after_connect(url, "s3cret-token", bad), bad
        wait_for(lambda: server.rejected == 1 + len(bad_packets), 5, "the malformed packets to be rejected")

        # and the server keeps serving
        rc, lines, output = node_client(url, 3, "--token", "s3cret-token")
        assert rc == 0, output
        assert len([o for o in lines if "result_data" in o]) == 3
    finally:
        streamer.stop()
        server.stop()


def raw_ws_send_after_connect(url, token, packet):
    """Speak Engine.IO/Socket.IO by hand: connect to /kizuna with the token, send `packet`, and
    return True when the server then closes the connection."""
    import asyncio

    import aiohttp

    async def go():
        ws_url = url.replace("http://", "ws://").rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url) as ws:
                opened = await ws.receive(timeout=5)
                assert opened.data.startswith("0{"), opened
                await ws.send_str("40/kizuna," + json.dumps({"token": token}))
                while True:
                    msg = await ws.receive(timeout=5)
                    if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith("40/kizuna,"):
                        break
                await ws.send_str(packet)
                while True:
                    msg = await ws.receive(timeout=5)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.CLOSING):
                        return True
                    if msg.type == aiohttp.WSMsgType.ERROR:
                        return True

    return asyncio.run(go())


# ---- the page in a real browser ---------------------------------------------------------------

def head_crop(path):
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    # the 800x600 page draws the head around x=336, y=270 (radius 138); the panel is at x > 570
    return img[60:370, 100:560]


def test_headless_chromium_shows_the_head_turning_left_and_right(start_process, tmp_path):
    need_node()
    need_chromium()
    server = AvatarServer(port=0)
    url = server.start()
    streamer = Streamer(server, hz=30)
    streamer.angle_x = -30.0 - 0.25        # frame() adds 0.25: ParamAngleX == -30 exactly
    try:
        shots = start_process([shutil.which("node"), JS / "screenshot.js", url + "2d", tmp_path,   # the 2D page
                               "left:ParamAngleX=-30", "right:ParamAngleX=30",
                               "expressive:ParamMouthForm=1"], name="screenshot")
        taken = lambda: [o["shot"] for o in json_lines(shots) if "shot" in o]  # noqa: E731
        wait_for(lambda: "left" in taken(), 60, "the left screenshot", shots)
        streamer.angle_x = 30.0 - 0.25
        wait_for(lambda: "right" in taken(), 30, "the right screenshot", shots)
        streamer.angle_x = "expressive"
        wait_for(lambda: any(o.get("done") for o in json_lines(shots)), 30, "the last screenshot", shots)
    finally:
        streamer.stop()
        server.stop()
    lines = json_lines(shots)
    assert not [o for o in lines if "pageerror" in o or "requestfailed" in o or "error" in o
                or o.get("console") == "error"], lines
    requests = [o["request"] for o in lines if "request" in o]
    assert requests and all(r.startswith(url.rstrip("/")) for r in requests), requests
    states = {o["shot"]: o["state"] for o in lines if "shot" in o}
    assert states["left"]["params"]["ParamAngleX"] == -30 and states["right"]["params"]["ParamAngleX"] == 30
    assert states["left"]["connected"] and states["right"]["frames"] > states["left"]["frames"]
    # the page keeps the ARKit blendshapes (perfect sync) of the frame
    assert states["right"]["blendshapes"]["eyeBlinkLeft"] == 0.0625 and states["right"]["blendshapes"]["tongueOut"] == 0

    left, right = head_crop(tmp_path / "left.png"), head_crop(tmp_path / "right.png")
    diff = np.abs(left - right).sum(axis=2) > 60
    assert diff.mean() > 0.05, f"only {diff.mean():.1%} of the head region changed"

    background = np.array([0xd9, 0xec, 0xf2])
    skin = np.array([0xf6, 0xd5, 0xb8])

    def centre_x(img, colour):
        mask = np.abs(img - colour).sum(axis=2) < 30
        assert mask.sum() > 1000
        return np.nonzero(mask)[1].mean()

    def drawn_centre_x(img):
        mask = np.abs(img - background).sum(axis=2) > 40
        return np.nonzero(mask)[1].mean()

    # ParamAngleX > 0 turns the face to the screen's right: the face (skin) and everything drawn
    # in the head region move right
    shift_face = centre_x(right, skin) - centre_x(left, skin)
    shift_all = drawn_centre_x(right) - drawn_centre_x(left)
    assert shift_face > 40, shift_face
    assert shift_all > 20, shift_all
    # the expressive frame: the mouth opens wide (dark mouth pixels), one eye closes
    expressive = head_crop(tmp_path / "expressive.png")
    mouth_dark = lambda img: (np.abs(img - np.array([0x8a, 0x2b, 0x35])).sum(axis=2) < 30).sum()  # noqa: E731
    eye_white = lambda img: (img.min(axis=2) > 250).sum()  # noqa: E731
    assert mouth_dark(expressive) > 4 * max(mouth_dark(right), 50), (mouth_dark(expressive), mouth_dark(right))
    assert eye_white(expressive) < 0.75 * eye_white(right), (eye_white(expressive), eye_white(right))
    print(f"head region changed {diff.mean():.1%}; face centre moved {shift_face:+.1f} px, "
          f"drawn centre {shift_all:+.1f} px")
