"""Socket.IO output: a client to a DeepVTB/OpenVtuber-compatible NodeServer. No rclpy here.

The NodeServer (OpenVtuber's `NodeServer/`, a socket.io server) takes the tracker's results in
namespace `/kizuna`, event `result_data`, and relays them to the avatar page (as
`result_download`). vtb sends exactly `AvatarFrame.result_data()`: the NodeServer's shape
`{"euler": [pitch, yaw, roll] deg, "eye": [theta, phi] rad, "mouth": 0..1, "blink": [left, right]}`
with `params` (Live2D standard names), `face_id` and `stamp` beside it.

Protocols. NodeServers exist in two incompatible generations: the original toolkit's pins
socket.io 2.5.0 (Socket.IO protocol v4 over Engine.IO 3), upstream OpenVtuber's uses socket.io
3.1 (Socket.IO v5 over Engine.IO 4, as socket.io 4.x). A client speaks one Engine.IO version
only, so there are two client libraries here:

- `v3` (socket.io 3.x and 4.x servers): python-socketio 5, the installed one;
- `v2` (socket.io 2.x servers): python-socketio 4.6.1 with python-engineio 3.14.2, the last
  releases that speak Engine.IO 3, vendored client-only in `vtb_bridge/_vendor/` because they
  cannot be installed next to python-socketio 5 under their own names (see _vendor/README.md);
- `auto` (default): `probe()` asks the server once which one it speaks (one Engine.IO 4
  handshake: a socket.io 2 server answers it the Engine.IO 3 way) and the matching client
  connects; after that the protocol that worked is tried first, and the server is asked again
  whenever a connection fails, so a server replaced by another version is followed.

When the server cannot be spoken to, the warning says why: "server speaks Socket.IO v2
(Engine.IO 3)" with `protocol="v3"`, nothing listening, not a Socket.IO server, the namespace
refused, ...

`SocketIOOutput.send(frame)` never blocks the caller: it puts the newest frame into a one-slot
buffer (a frame still waiting there is replaced and counted as dropped) and returns. A background
thread with its own asyncio loop owns the connection: it connects, emits whatever is in the slot,
and when the server goes away (restart, crash, not yet started) it reconnects by itself with a
capped backoff; frames sent meanwhile only ever replace the one in the slot.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import socketio

log = logging.getLogger("vtb_bridge.socketio_output")
# The vendored v2 client logs every packet at INFO to the logger it is given (its default ones,
# "socketio.client" and "engineio.client", are python-socketio 5's too): its own, quiet unless asked.
V2_LOG = logging.getLogger("vtb_bridge.socketio_output.v2")
if V2_LOG.level == logging.NOTSET:
    V2_LOG.setLevel(logging.WARNING)

PROTOCOLS = ("auto", "v2", "v3")
PROTOCOL_ALIASES = {"v4": "v3", "v5": "v3", "eio3": "v2", "eio4": "v3"}
NAMES = {"v2": "Socket.IO v2 (Engine.IO 3)", "v3": "Socket.IO v3/v4 (Engine.IO 4)"}
SPEAKS = {k: f"server speaks {v}" for k, v in NAMES.items()}


def normalise_protocol(protocol: str) -> str:
    """'auto', 'v2' or 'v3' ('v4' is an alias of 'v3': the same wire protocol)."""
    p = str(protocol or "auto").strip().lower()
    p = PROTOCOL_ALIASES.get(p, p)
    if p not in PROTOCOLS:
        raise ValueError(f"socketio protocol {protocol!r}: one of auto, v2 (socket.io 2.x servers), "
                         "v3 (socket.io 3.x/4.x servers)")
    return p


def _engineio_url(url: str, socketio_path: str, query: dict, websocket: bool = False) -> str:
    """The Engine.IO endpoint of `url` (http(s):// or ws(s)://, its own query kept)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme or "http")
    if websocket:
        scheme = {"http": "ws", "https": "wss"}[scheme]
    q = parse_qsl(parts.query) + list(query.items())
    return urlunsplit((scheme, parts.netloc, "/" + socketio_path.strip("/") + "/", urlencode(q), ""))


def _connection_failure(e: BaseException, url: str) -> str:
    where = urlsplit(url).netloc or url
    if isinstance(e, asyncio.TimeoutError):
        return f"no answer from {where} in time"
    if isinstance(e, aiohttp.ClientConnectorError):
        if isinstance(e.os_error, ConnectionRefusedError):
            return f"nothing listens at {where} (connection refused)"
        return f"cannot reach {where} ({e.os_error or e})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


async def probe(url: str, namespace: str = "/kizuna", socketio_path: str = "socket.io",
                timeout: float = 2.0) -> tuple:
    """Which Socket.IO protocol the server at `url` speaks: `("v2" | "v3" | None, reason)`.

    One Engine.IO 4 handshake over HTTP long-polling (`GET /socket.io/?EIO=4&transport=polling`):
    an Engine.IO 4 server (socket.io 3/4) answers with a bare open packet `0{"sid": ...}`, an
    Engine.IO 3 one (socket.io 2, which ignores EIO=4) with its own length-prefixed payload
    `97:0{"sid": ...}2:40`. The session is closed again at once; no namespace is joined. A server
    that allows only WebSocket (HTTP 400 "Transport unknown") is asked over a WebSocket instead:
    there, joining `namespace`, socket.io 2 answers `40` (its automatic join of "/") or a bare
    `40/kizuna`, socket.io 3/4 `40/kizuna,{"sid": ...}`. None with the reason when neither."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        return None, f"{url!r} is not an http(s):// or ws(s):// URL with a host"
    t = aiohttp.ClientTimeout(total=timeout)
    try:
        async with aiohttp.ClientSession(timeout=t) as http:
            poll = _engineio_url(url, socketio_path, {"EIO": "4", "transport": "polling"})
            async with http.get(poll) as r:
                body = await r.read()
                status = r.status
            text = body.decode("utf-8", "replace")
            if status == 200:
                m = re.match(r"^(\d+):0(\{.*)", text, re.S)
                if m or body[:1] in (b"\x00", b"\x01"):      # Engine.IO 3 payload (text or binary)
                    await _close_polling(http, url, socketio_path, "3", m.group(2) if m else "", m)
                    return "v2", SPEAKS["v2"]
                if text.startswith("0{"):
                    await _close_polling(http, url, socketio_path, "4", text[1:], None)
                    return "v3", SPEAKS["v3"]
                return None, f"not a Socket.IO server (HTTP 200 at /{socketio_path}/: {text[:40]!r})"
            try:
                err = json.loads(text)
            except ValueError:
                err = {}
            code, message = (err.get("code"), err.get("message")) if isinstance(err, dict) else (None, None)
            if status == 400 and code == 0:                  # polling not allowed: ask over WebSocket
                return await _probe_websocket(http, url, namespace, socketio_path, timeout)
            if status == 400 and code == 5:
                return None, ("server refuses Engine.IO 4 and is not a socket.io 2 server "
                              f"({message}): it speaks neither Socket.IO v2 nor v3/v4")
            if code is not None:
                return None, f"server refused the handshake (HTTP {status}: {message})"
            return None, f"not a Socket.IO server (HTTP {status} at /{socketio_path}/)"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        return None, _connection_failure(e, url)


async def _close_polling(http, url, socketio_path, eio, open_json, framed):
    """End the probe's Engine.IO session (best effort): a close packet, framed per version."""
    try:
        if framed is not None:                              # "97:0{...}": the first packet's length
            open_json = open_json[:int(framed.group(1)) - 1]
        sid = json.loads(open_json)["sid"]
        close = "1:1" if eio == "3" else "1"
        post = _engineio_url(url, socketio_path, {"EIO": eio, "transport": "polling", "sid": sid})
        async with http.post(post, data=close.encode(),
                             headers={"Content-Type": "text/plain;charset=UTF-8"}) as r:
            await r.read()
    except Exception:  # noqa: BLE001 - the server forgets the session after its ping timeout anyway
        pass


async def _probe_websocket(http, url, namespace, socketio_path, timeout):
    ws_url = _engineio_url(url, socketio_path, {"EIO": "4", "transport": "websocket"}, websocket=True)
    ns = "" if namespace in ("", "/") else namespace
    try:
        async with http.ws_connect(ws_url) as ws:
            opened = await ws.receive(timeout=timeout)
            if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0{"):
                return None, "not a Socket.IO server (no Engine.IO open packet on its WebSocket)"
            await ws.send_str(f"40{ns}," if ns else "40")
            for _ in range(4):
                msg = await ws.receive(timeout=timeout)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return None, f"server closed the WebSocket ({msg.type.name})"
                data = msg.data
                if data == "2":                             # Engine.IO 4: the server pings
                    await ws.send_str("3")
                    continue
                if data in ("40", "40,"):                   # socket.io 2 joins "/" by itself
                    return "v2", SPEAKS["v2"]
                for kind in ("0", "4"):                     # CONNECT or CONNECT_ERROR
                    head = f"4{kind}{ns}," if ns else f"4{kind}"
                    if data.startswith(head) or data == head.rstrip(","):
                        # v3/v4 answer with an object ({"sid"} or {"message"}), v2 bare or a string
                        return ("v3", SPEAKS["v3"]) if data[len(head):].startswith("{") else ("v2", SPEAKS["v2"])
            return None, "not a Socket.IO server (no answer to joining the namespace)"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        return None, _connection_failure(e, url)


def _vendored_v2_client():
    """python-socketio 4.6.1 (vendored): imported on first use only."""
    from ._vendor import engineio as eio3, socketio as sio4
    # These clients install a SIGINT handler when first used from the main thread; the process's
    # signals belong to its owner (rclpy), so mark theirs as already installed.
    if sio4.client.original_signal_handler is None:
        sio4.client.original_signal_handler = signal.getsignal(signal.SIGINT) or signal.SIG_DFL
    if eio3.client.original_signal_handler is None:
        eio3.client.original_signal_handler = signal.getsignal(signal.SIGINT) or signal.SIG_DFL
    eio3.asyncio_client.async_signal_handler_set = True
    return sio4


class _Session:
    """One connection to the server with one of the two libraries: `connect()`, `emit()`,
    `lost` (an asyncio.Event set when the server goes away), `close()`."""

    def __init__(self, owner: "SocketIOOutput", protocol: str):
        self.owner, self.protocol = owner, protocol
        self.lost = asyncio.Event()
        self.refused = None                 # the namespace's connect_error, when it sent one
        self.http = None
        ns = owner.namespace
        if protocol == "v3":
            self.sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        else:
            self.http = aiohttp.ClientSession()
            self.sio = _vendored_v2_client().AsyncClient(reconnection=False, logger=V2_LOG,
                                                         engineio_logger=V2_LOG, http_session=self.http)
            self.joined = asyncio.Event()
            self.sio.on("connect", self._on_join, namespace=ns)
            self.sio.on("connect_error", self._on_refused, namespace=ns)
            self.sio.on("disconnect", self._on_lost, namespace="/")
        self.sio.on("disconnect", self._on_lost, namespace=ns)

    async def _on_join(self, *_args):
        self.joined.set()

    async def _on_refused(self, *args):
        self.refused = args[0] if args else "refused"
        if isinstance(self.refused, dict):
            self.refused = self.refused.get("message", self.refused)
        self.joined.set()

    async def _on_lost(self, *_args):
        self.lost.set()

    async def connect(self):
        o = self.owner
        if self.protocol == "v3":
            await asyncio.wait_for(
                self.sio.connect(o.url, namespaces=[o.namespace], auth=o.auth, transports=o.transports,
                                 socketio_path=o.socketio_path, wait_timeout=o.connect_timeout),
                2 * o.connect_timeout)
            return
        # Socket.IO v2 has no CONNECT payload: auth, when given, goes into the query string
        url = o.url
        if isinstance(o.auth, dict) and o.auth:
            parts = urlsplit(url)
            url = urlunsplit(parts._replace(query=urlencode(parse_qsl(parts.query) + list(o.auth.items()))))
        deadline = time.monotonic() + o.connect_timeout
        await asyncio.wait_for(self.sio.connect(url, transports=o.transports, namespaces=[o.namespace],
                                                socketio_path=o.socketio_path), o.connect_timeout)
        await asyncio.wait_for(self.joined.wait(), max(0.05, deadline - time.monotonic()))
        if self.refused is not None:
            raise ConnectionRefusedError(f"namespace {o.namespace} refused: {self.refused}")

    async def emit(self, event, payload):
        await self.sio.emit(event, payload, namespace=self.owner.namespace)

    async def close(self):
        try:
            await asyncio.wait_for(self.sio.disconnect(), 1.0)
        except Exception:  # noqa: BLE001
            pass
        if self.http is not None:
            try:
                await self.http.close()
            except Exception:  # noqa: BLE001
                pass


class SocketIOOutput:
    """A Socket.IO client that emits AvatarFrames to `url` in `namespace` as `event`.

    `protocol`: "auto" (default: ask the server, see `probe`), "v2" (socket.io 2.x servers,
    Engine.IO 3) or "v3" (socket.io 3.x and 4.x, Engine.IO 4; "v4" means the same).

    Counters (read any time): `sent` (frames emitted), `dropped` (frames replaced in the slot
    before they could be emitted, or discarded while disconnected), `reconnects` (successful
    connections after the first), `connect_failures`. `connected` says whether the namespace is
    connected right now, `server_protocol` which protocol the current or last connection used,
    `last_error` why the last attempt failed (None once connected).
    """

    def __init__(self, url: str, namespace: str = "/kizuna", event: str = "result_data",
                 auth=None, reconnect_delay: float = 0.2, reconnect_delay_max: float = 2.0,
                 connect_timeout: float = 2.0, max_age: float = 1.0, transports=("websocket",),
                 protocol: str = "auto", socketio_path: str = "socket.io"):
        self.url = url
        self.namespace = namespace
        self.event = event
        self.auth = auth
        self.protocol = normalise_protocol(protocol)
        self.socketio_path = socketio_path
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.connect_timeout = connect_timeout
        self.max_age = max_age            # a frame older than this (s) when it could go out is dropped
        self.transports = list(transports)
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.connect_failures = 0
        self.server_protocol = None       # "v2" / "v3": what the current or last connection spoke
        self.last_error = None
        self._connections = 0
        self._warned = None               # the reason last warned about
        self._lock = threading.Lock()
        self._slot = None                 # the newest payload not yet emitted
        self._slot_time = 0.0
        self._closing = False
        self._connected = False
        self._loop = asyncio.new_event_loop()
        self._wake = None                 # asyncio.Event, created in the loop
        self._thread = threading.Thread(target=self._run, name="vtb-socketio-output", daemon=True)
        self._thread.start()

    # ---- the caller's side: never blocks -------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def send(self, frame) -> None:
        """Queue `frame` (an AvatarFrame, or an already built result_data dict) for emitting.
        Returns at once; a frame still waiting is replaced (counted in `dropped`)."""
        payload = frame if isinstance(frame, dict) else frame.result_data()
        from .avatar_server import _all_finite
        if not _all_finite(payload):      # only finite numbers go out (JSON a browser can parse)
            self.not_finite = getattr(self, "not_finite", 0) + 1
            return
        with self._lock:
            if self._closing:
                return
            if self._slot is not None:
                self.dropped += 1
            self._slot = payload
            self._slot_time = time.monotonic()
        try:
            self._loop.call_soon_threadsafe(self._poke)
        except RuntimeError:              # loop already closed
            pass

    def close(self, timeout: float = 3.0) -> None:
        """Disconnect and stop the background thread."""
        with self._lock:
            self._closing = True
        try:
            self._loop.call_soon_threadsafe(self._poke)
        except RuntimeError:
            pass
        self._thread.join(timeout)

    def stats(self) -> dict:
        return {"connected": self._connected, "sent": self.sent, "dropped": self.dropped,
                "reconnects": self.reconnects, "connect_failures": self.connect_failures,
                "protocol": self.protocol, "server_protocol": self.server_protocol,
                "last_error": self.last_error}

    # ---- the background thread -----------------------------------------------------------
    def _poke(self):
        if self._wake is not None:
            self._wake.set()

    def _take(self):
        with self._lock:
            payload, self._slot = self._slot, None
            if payload is not None and time.monotonic() - self._slot_time > self.max_age:
                self.dropped += 1            # waited out a disconnection: stale, not worth sending
                payload = None
        return payload

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            rest = asyncio.all_tasks(self._loop)
            for t in rest:
                t.cancel()
            if rest:
                self._loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            self._loop.close()

    async def _main(self):
        self._wake = asyncio.Event()
        delay = self.reconnect_delay
        known = None                      # auto: the protocol that last worked, tried first
        while not self._closing:
            if self.protocol != "auto":
                proto = self.protocol
            elif known is not None:
                proto = known
            else:
                proto, why = await self._probe()
                if proto is None:
                    self._failed(why)
                    await self._sleep(delay)
                    delay = min(delay * 2, self.reconnect_delay_max)
                    continue
            session = None
            try:
                session = _Session(self, proto)
                await session.connect()
            except Exception as e:  # noqa: BLE001 - any failure means: find out why, try again later
                if session is not None:
                    await session.close()
                known = None
                self._failed(await self._explain(proto, e))
                await self._sleep(delay)
                delay = min(delay * 2, self.reconnect_delay_max)
                continue
            delay = self.reconnect_delay
            known = proto
            self.server_protocol = proto
            self._connections += 1
            if self._connections > 1:
                self.reconnects += 1
            if self._connections > 1 or self._warned is not None:
                log.info("connected to %s%s (%s)", self.url, self.namespace, NAMES[proto])
            self.last_error = self._warned = None
            self._connected = True
            try:
                await self._stream(session)
            finally:
                self._connected = False
                await session.close()

    async def _stream(self, session):
        """Emit the slot's frames until the connection is lost or the output closes."""
        while not self._closing and not session.lost.is_set():
            payload = self._take()
            if payload is None:
                self._wake.clear()
                if self._slot is not None:     # raced with send()
                    continue
                waiter = asyncio.ensure_future(self._wake.wait())
                lost_w = asyncio.ensure_future(session.lost.wait())
                await asyncio.wait({waiter, lost_w}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                lost_w.cancel()
                continue
            try:
                await session.emit(self.event, payload)
                self.sent += 1
            except Exception as e:  # noqa: BLE001 - connection went away mid-emit
                self.dropped += 1
                log.info("emit failed (%s); reconnecting", e)
                return

    async def _explain(self, proto, error) -> str:
        """Why connecting with `proto` failed, in words: asks the server what it speaks."""
        found, why = await self._probe()
        if found is None:
            return why
        if found != proto:
            if self.protocol == "auto":
                return f"{why} (the {NAMES[proto]} client failed: {_connection_failure(error, self.url)})"
            return (f"{why}, but socketio_protocol is {self.protocol!r}: set it to 'auto' or "
                    f"{found!r}")
        return f"{why}, but connecting failed: {_connection_failure(error, self.url)}"

    async def _probe(self):
        try:
            return await probe(self.url, self.namespace, self.socketio_path, self.connect_timeout)
        except Exception as e:  # noqa: BLE001 - e.g. a URL that is not http(s)/ws(s)
            return None, f"cannot ask {self.url!r} what it speaks ({type(e).__name__}: {e})"

    def _failed(self, why):
        self.connect_failures += 1
        self.last_error = why
        if why != self._warned or self.connect_failures % 50 == 0:
            log.warning("cannot connect to %s%s: %s; retrying", self.url.rstrip("/"), self.namespace, why)
            self._warned = why

    async def _sleep(self, seconds):
        # wake early only to close
        end = time.monotonic() + seconds
        while not self._closing and time.monotonic() < end:
            await asyncio.sleep(min(0.05, end - time.monotonic()))
