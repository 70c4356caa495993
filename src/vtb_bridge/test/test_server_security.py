"""The built-in server and other websites: DNS rebinding (a Host that is not this server) is
refused on every route, the WebSocket upgrade included, while the page at 127.0.0.1/localhost
still works; cross-site Origins stay refused; oversized headers give one throttled line, not
a traceback each. Real HTTP requests (raw sockets, aiohttp's client) against the running server."""
import asyncio
import json
import logging
import socket

import aiohttp
import pytest

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.avatar_server import AvatarServer, parse_allowed_hosts

LOGGER = "vtb_bridge.avatar_server"


def frame(i):
    return AvatarFrame(face_id="f3a9", stamp=1000.0 + i / 30, params={"ParamAngleX": 10.0 + i})


def http_get(port, path, host, origin=None, extra=b""):
    """One raw HTTP/1.1 GET to 127.0.0.1:port with the given Host header; returns (status, body)."""
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if origin:
        head += f"Origin: {origin}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(head.encode() + extra + b"\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def ws_face_frames(server, host, origin, seconds=1.0):
    """Engine.IO 4 over a WebSocket to 127.0.0.1 with the given Host and Origin headers: join
    /kizuna, then count the result_data frames received while the server sends some.
    Returns ("refused", status) or ("frames", n)."""
    async def go():
        url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as session:
            try:
                ws = await session.ws_connect(url, headers={"Host": host, "Origin": origin})
            except aiohttp.WSServerHandshakeError as e:
                return "refused", e.status
            async with ws:
                opened = await asyncio.wait_for(ws.receive_str(), 5)
                assert opened.startswith("0{"), opened
                await ws.send_str("40/kizuna,")
                n, loop = 0, asyncio.get_running_loop()
                end = loop.time() + seconds
                i = 0
                while loop.time() < end:
                    server.send(frame(i))
                    i += 1
                    try:
                        msg = await asyncio.wait_for(ws.receive(), 0.05)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    if msg.data == "2":
                        await ws.send_str("3")
                    elif msg.data.startswith('42/kizuna,["result_data"'):
                        n += 1
                return "frames", n
    return asyncio.run(go())


@pytest.fixture
def server(tmp_path):
    (tmp_path / "init.js").write_text("window.x = 1;\n")
    s = AvatarServer(port=0, live2d_dir=tmp_path)
    s.start()
    yield s
    s.stop()


ROUTES = ("/", "/index.html", "/socket.io.min.js", "/config.json", "/live2d/init.js",
          "/socket.io/?EIO=4&transport=polling")


def test_a_rebinding_host_is_refused_on_every_route_and_localhost_still_works(server, caplog):
    """Host and Origin rebind.example:PORT (before: 200 everywhere, the page and its data) get
    403 on every route, with one log line; 127.0.0.1, localhost and [::1] with the port get 200."""
    caplog.set_level(logging.INFO)
    port = server.port
    for path in ROUTES:
        status, _ = http_get(port, path, f"rebind.example:{port}", f"http://rebind.example:{port}")
        assert status == 403, (path, status)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST.:{port}"):
            status, body = http_get(port, path, host)
            assert status == 200, (path, host, status)
    # the wrong port, no port, an empty or malformed Host: not this server either
    for host in ("127.0.0.1:1", "localhost", "", "127.0.0.1:99999", "a b:80", f"[::1:{port}"):
        assert http_get(port, "/", host)[0] == 403, host
    status, body = http_get(port, "/", f"127.0.0.1:{port}")
    assert b"<canvas" in body, "the page itself"
    assert server.refused_host == len(ROUTES) + 6
    lines = [r for r in caplog.records if r.name == LOGGER and "Host" in r.getMessage()]
    assert len(lines) == 1 and "rebind.example" in lines[0].getMessage(), [r.getMessage() for r in lines]


def test_a_websocket_upgrade_with_a_rebinding_host_gets_no_face_data(server):
    """The attack of the issue (53 frames in 2 s before): the upgrade is refused (403) and not a
    frame arrives; the same client with Host 127.0.0.1:PORT does get the frames."""
    port = server.port
    assert ws_face_frames(server, f"rebind.example:{port}", f"http://rebind.example:{port}") == ("refused", 403)
    kind, n = ws_face_frames(server, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")
    assert kind == "frames" and n >= 3, (kind, n)


def test_a_cross_site_origin_is_still_refused(server):
    """A page of another website (Origin evil.example, Host this server): no face data."""
    port = server.port
    kind, n = ws_face_frames(server, f"127.0.0.1:{port}", "http://evil.example")
    assert kind == "refused" or n == 0, (kind, n)


def test_allowed_hosts_are_accepted_and_can_change_while_serving():
    server = AvatarServer(port=0, allowed_hosts=["vtb.example", "other.example:8443"])
    server.start()
    try:
        port = server.port
        assert http_get(port, "/config.json", f"vtb.example:{port}")[0] == 200
        assert http_get(port, "/config.json", "other.example:8443")[0] == 200
        assert http_get(port, "/config.json", "vtb.example:1")[0] == 403
        assert http_get(port, "/config.json", f"rebind.example:{port}")[0] == 403
        server.allowed_hosts = "rebind.example"          # live; one comma-separated string too
        assert http_get(port, "/config.json", f"rebind.example:{port}")[0] == 200
        assert http_get(port, "/config.json", f"vtb.example:{port}")[0] == 403
        server.allowed_hosts = ["*"]                     # the check off (behind a proxy)
        assert http_get(port, "/config.json", "anything.example")[0] == 200
    finally:
        server.stop()
    assert parse_allowed_hosts(" a.example, [::1]:80 ,") == {("a.example", None), ("::1", 80)}
    for bad in ("a b", "x:99999", "x:y", "[::1", "http://x/"):
        with pytest.raises(ValueError, match="is not host"):
            parse_allowed_hosts([bad])


def test_bound_to_all_addresses_it_answers_to_this_machine_and_not_to_other_names():
    server = AvatarServer(host="0.0.0.0", port=0)
    server.start()
    try:
        port = server.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"{socket.gethostname()}:{port}"):
            assert http_get(port, "/config.json", host)[0] == 200, host
        assert http_get(port, "/config.json", f"rebind.example:{port}")[0] == 403
    finally:
        server.stop()


def test_oversized_headers_give_one_throttled_line_not_a_traceback_each(server, caplog):
    """9 requests with a 20 KB header (before: 9 ERROR records with a full traceback): 400 each,
    no traceback, at most a couple of lines; the page still works after."""
    caplog.set_level(logging.DEBUG)
    port = server.port
    for _ in range(9):
        status, _ = http_get(port, "/", f"127.0.0.1:{port}", extra=b"X-Big: " + b"a" * 20000 + b"\r\n")
        assert status == 400
    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "vtb_bridge"))
               and r.levelno >= logging.INFO and "avatar page at" not in r.getMessage()]
    assert not [r for r in records if r.exc_info], "a traceback in the log"
    assert 1 <= len(records) <= 2, [r.getMessage() for r in records]
    assert "malformed HTTP request" in records[0].getMessage()
    assert http_get(port, "/", f"127.0.0.1:{port}")[0] == 200
