"""The built-in server under abuse: a client that never reads keeps a bounded queue (the oldest
frames go), bad events and wrong tokens give a few throttled log lines, wrong tokens are
rate-limited per client address, and frames holding NaN never go out. Real python-socketio
clients and a hand-made Engine.IO polling client."""
import asyncio
import json
import logging
import math
import time
import urllib.error
import urllib.request

import pytest
import socketio

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.avatar_server import AvatarServer

LOGGER = "vtb_bridge.avatar_server"


def frame(i, value=0.25):
    return AvatarFrame(face_id="f3a9", stamp=1000.0 + i / 30,
                       params={f"Param{k}": value + k * 1e-3 for k in range(20)})


def warnings(caplog):
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def poll_client_that_never_reads(url):
    """Engine.IO 4 over long-polling by hand: open, join /kizuna, read the answer once, then
    never poll again. Returns its Engine.IO sid."""
    base = url.rstrip("/") + "/socket.io/?EIO=4&transport=polling"
    with urllib.request.urlopen(base, timeout=5) as r:
        opened = r.read().decode()
    sid = json.loads(opened[opened.index("{"):])["sid"]
    req = urllib.request.Request(f"{base}&sid={sid}", data=b"40/kizuna,", method="POST",
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.read().lower() == b"ok"
    with urllib.request.urlopen(f"{base}&sid={sid}", timeout=5) as r:
        assert b"40/kizuna," in r.read()
    return sid


def queued(server, eio_sid):
    sock = server._sio.eio.sockets.get(eio_sid)
    items = list(sock.queue._queue) if sock is not None else []
    return len(items), sum(len(p.data) for p in items if p is not None and isinstance(p.data, str))


def test_a_client_that_never_reads_keeps_a_bounded_queue():
    """500 frames while one client never reads: its queue stays at max_client_queue frames
    (the oldest dropped; before: every frame kept, 1000 packets, ~0.9 MB), and a reading client
    still gets the newest frames."""
    server = AvatarServer(port=0, max_client_queue=4)
    url = server.start()
    try:
        eio_sid = poll_client_that_never_reads(url)
        assert server.clients, "the polling client joined"
        got = []

        async def reader():
            sio = socketio.AsyncClient()
            sio.on("result_data", lambda data: got.append(data), namespace="/kizuna")
            await sio.connect(url, namespaces=["/kizuna"], transports=["websocket"])
            peak = (0, 0)
            for i in range(500):
                server.send(frame(i))
                await asyncio.sleep(0.004)
                peak = max(peak, queued(server, eio_sid))
            await asyncio.sleep(0.3)
            await sio.disconnect()
            return peak

        peak_packets, peak_bytes = asyncio.run(reader())
        assert server.sent > 300
        per_frame = 2                                    # result_data and result_download
        assert peak_packets <= 4 * per_frame + 2, peak_packets     # + a ping or two
        assert peak_bytes < 4 * per_frame * 1500, peak_bytes
        assert server.dropped_slow >= server.sent - 4 - 5
        assert len(got) > 300 and got[-1]["stamp"] == pytest.approx(frame(499).stamp), \
            "the reading client is not held back"
    finally:
        server.stop()


def test_bad_events_are_logged_a_few_times_not_each(caplog):
    """2000 unknown events from a real client: all rejected and counted, a few warning lines
    (before: 2000 in ~3 s)."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    server = AvatarServer(port=0, log_every_s=5.0)
    url = server.start()
    try:
        async def go():
            sio = socketio.AsyncClient()
            await sio.connect(url, namespaces=["/kizuna"], transports=["websocket"])
            for i in range(2000):
                await sio.emit("shutdown", {"now": i}, namespace="/kizuna")
            deadline = time.monotonic() + 20
            while server.rejected < 2000 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await sio.disconnect()

        asyncio.run(go())
        assert server.rejected == 2000
        assert len(warnings(caplog)) <= 2, [r.getMessage() for r in warnings(caplog)]
    finally:
        server.stop()


def test_wrong_tokens_are_slowed_per_client_but_the_right_token_always_connects():
    """After 5 wrong tokens from an address its further wrong tokens are answered late (so
    guessing is slow), but the right token connects at once all along: every local client is
    127.0.0.1, and a lockout that refused the address unchecked let any local process keep the
    real page out. Each failure logs at most a few lines."""
    server = AvatarServer(port=0, token="s3cret-token", max_token_failures=5, token_window_s=60.0,
                          token_lockout_s=30.0, token_delay_s=0.5)
    url = server.start()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        async def connect(token):
            sio = socketio.AsyncClient(reconnection=False)
            t0 = time.monotonic()
            try:
                await sio.connect(url, namespaces=["/kizuna"], transports=["websocket"], auth={"token": token},
                                  wait_timeout=5)
            except socketio.exceptions.ConnectionError:
                return False, time.monotonic() - t0
            await sio.disconnect()
            return True, time.monotonic() - t0

        async def go():
            first = [await connect(f"wrong-{i}") for i in range(5)]
            # an attacker keeps 20 wrong tokens going while the real page connects
            attack = asyncio.gather(*(connect(f"wrong-more-{i}") for i in range(20)))
            await asyncio.sleep(0.05)
            page = await connect("s3cret-token")
            return first, await attack, page

        first, attack, page = asyncio.run(go())
        assert not any(ok for ok, _ in first + attack)
        assert max(t for _, t in first) < 0.4, "the first 5 wrong tokens are answered at once"
        assert min(t for _, t in attack) >= 0.45, "then wrong tokens from that address are answered late"
        assert server.locked_out == 20 and server.token_failures == 25
        assert page[0] and page[1] < 0.4, f"the right token connects at once while slowed: {page}"
        lines = [r for r in records if r.levelno >= logging.WARNING]
        assert len(lines) <= 5, [r.getMessage() for r in lines]
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)
        server.stop()


def test_malformed_engineio_packets_give_one_line_not_a_traceback_each(caplog, capfd):
    """Empty and unknown-type (8, 9) polling POSTs and a JSONP form POST, 50 each round: each
    made Engine.IO log a full traceback, unthrottled and before any token check (50 packets:
    1800 lines in 0.2 s). Now one throttled line, counted in `rejected`; the server still serves."""
    server = AvatarServer(port=0, token="s3cret-token")
    url = server.start()
    base = url + "socket.io/?EIO=4&transport=polling"

    def post(body, query="", content_type="text/plain;charset=UTF-8"):
        with urllib.request.urlopen(base, timeout=5) as r:
            opened = r.read().decode()
        sid = json.loads(opened[opened.index("{"):])["sid"]
        req = urllib.request.Request(f"{base}&sid={sid}{query}", data=body, method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        caplog.set_level(logging.DEBUG)
        for _ in range(13):
            post(b"")
            post(b"8")
            post(b"9")
            post(b"d=%2240%22", "&j=0", "application/x-www-form-urlencoded")
        time.sleep(0.3)
        assert server.rejected >= 13
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert 1 <= len(loud) <= 2, [r.getMessage() for r in loud]
        assert not any(r.exc_info for r in caplog.records), "no traceback logged"
        assert "Traceback" not in capfd.readouterr().err
        with urllib.request.urlopen(url, timeout=5) as r:      # and the page is still served
            assert r.status == 200
    finally:
        server.stop()


def test_a_frame_holding_nan_is_not_sent():
    server = AvatarServer(port=0)
    url = server.start()
    try:
        got = []

        async def go():
            sio = socketio.AsyncClient()
            sio.on("result_data", lambda data: got.append(data), namespace="/kizuna")
            await sio.connect(url, namespaces=["/kizuna"], transports=["websocket"])
            for i in range(20):
                server.send(frame(i, value=math.nan if i % 2 else 0.25))
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            await sio.disconnect()

        asyncio.run(go())
        assert server.not_finite == 10 and got
        assert all(math.isfinite(v) for d in got for v in d["params"].values())
    finally:
        server.stop()
