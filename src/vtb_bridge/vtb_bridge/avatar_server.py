"""The built-in avatar page: a Socket.IO server that serves a 3D (VRM) or 2D avatar and drives it. No rclpy.

`AvatarServer` runs python-socketio's AsyncServer on aiohttp in its own thread with its own
asyncio loop. It serves

- `/`                  the avatar page (`web/vrm.html`, modules in `web/vrm/`): a three.js scene
                       with vtb's own 3D character, or the user's VRM 0.x/1.0 (`vrm_file`, served
                       as `/model.vrm`, or a .vrm dropped on the page), driven by the same
                       parameters (head/neck/chest bones, lookAt, blinks, vowels, ARKit-named
                       expressions), with `?bg=transparent|#rrggbb` and `?panel=0` for streaming
                       and a panel for calibration and settings; with `live2d_dir`, `/` is the 2D
                       page below (Live2D mode);
- `/2d`                the 2D page (`web/avatar.html`, also where the 3D page goes without WebGL):
                       a 2D character drawn on a canvas whose
                       head (ParamAngleX/Y/Z), eyes (ParamEyeLOpen/ROpen), pupils
                       (ParamEyeBallX/Y), brows (ParamBrowLY/RY) and mouth (ParamMouthOpenY,
                       ParamMouthForm) follow the Live2D parameters, with a panel of fps and values;
- `/vendor/...`        the vendored three.js and @pixiv/three-vrm ES modules (MIT, unmodified
                       copies of the pinned npm packages, checked by the tests), as static files:
                       no index, no symlinks followed, behind the same Host check;
- `/model.vrm`         only with `vrm_file`: the user's model (404 without);
- `/socket.io.min.js`  the Socket.IO browser client, a vendored copy of `socket.io-client`'s
                       `dist/socket.io.min.js` (MIT) kept in `web/vendor/`, so the page loads
                       nothing from outside (no CDN); its version matches the pinned npm package
                       of the tests, which check that the copy is byte-identical;
- `/config.json`       what the page needs to know (namespace, event, whether Live2D mode is on,
                       `vrm_url`: "/model.vrm" or null, the current settings);
- `/live2d/...`        only with `live2d_dir`: the user's own files (see "Live2D mode" below);
- `/socket.io/`        Socket.IO itself: namespace `/kizuna`, event `result_data`, the same payload
                       as the Socket.IO output (`AvatarFrame.result_data()`: the DeepVTB/OpenVtuber
                       NodeServer's `euler`/`eye`/`mouth`/`blink` plus `params`, `face_id`, `stamp`),
                       and the same payload again as `result_download` (`also_emit`): the event the
                       original three.js avatar page listens for, which the NodeServer relays
                       result_data as, so that page can connect to vtb directly, no NodeServer
                       between (it needs a Socket.IO v3/v4 client: python-socketio 5 serves
                       Engine.IO 4 only).

`send(frame)` never blocks: the newest frame goes into a one-slot buffer and the server's loop
broadcasts it to every connected page (a frame still waiting is replaced: `dropped`). Only
finite numbers go out: a frame holding NaN or infinity is not sent (`not_finite`), so the
payload is always JSON a browser can parse. Each client's queue of packets not yet sent is
bounded (`max_client_queue` frames, default 4): for a client that reads slowly or not at all
the oldest frames are dropped (`dropped_slow`), so its memory stays flat until the engine's
ping timeout disconnects it.

Safety. It binds 127.0.0.1 unless told otherwise. Every request (the page, its files, Socket.IO,
the WebSocket upgrade) must name this server in its `Host` header, or it gets 403 (counted in
`refused_host`, one throttled log line): DNS rebinding (a website whose name is made to resolve
to 127.0.0.1, so that the browser deems the page and its Socket.IO requests same-origin, Host
and Origin `rebind.example:PORT`) is refused this way. Accepted: the bound address with the port;
bound to a loopback address or to all (0.0.0.0, ::), also 127.0.0.1, localhost and [::1]; bound
to all, also the address the connection came in on and this machine's host name; and
`allowed_hosts` (`host` for the server's port, `host:port`, `[v6]:port`; `*` turns the check off,
e.g. behind a reverse proxy that checks Host itself). Malformed requests (an oversized header,
a bad request line) get aiohttp's 400 and one throttled log line, not a traceback each. With
`token` set, a Socket.IO client must give
it, as `auth: {token}` (socket.io-client's `auth` option) or as the `token` query parameter
(the page passes `?token=...` of its own URL on), or its connection is refused. The page
mostly listens: the client->server events accepted are `hello` (a small dict the page sends
once) and the commands in `commands` (name -> a callable returning (success, message) or
(success, message, {more fields}), set by the bridge node: `calibrate_neutral`, the page's
"calibrate neutral" button, and `settings`, its sliders), which only a connected, so
token-checked, page can send; the callable's answer goes back as the event's acknowledgement
`{success, message, ...}` (`settings` adds `kept: false` when the file could not be written). Any other event, an oversized one (over
`max_message_bytes`, default 16 KiB: the engine closes that connection), a binary or malformed
packet is rejected, logged and counted in `rejected`, and the server goes on serving everyone
else. Browsers from another origin are refused
(python-socketio's same-origin check). Warnings about clients are throttled: the first of a
kind, then at most one every `log_every_s` (5 s) saying how many were not logged. Wrong tokens
are rate-limited per client address: after `max_token_failures` (5) within `token_window_s`
(60 s), for `token_lockout_s` (30 s) each further wrong token from that address is answered
only after `token_delay_s` (1 s; counted in `locked_out`), so guessing is slow. The right token
is always checked and always connects at once: every local client is 127.0.0.1, so refusing an
address unchecked would let any local process keep the real page out. (The delay is per
attempt, not per address: a guesser with many connections at once gets that many tries a
second, so a token you choose should be long and random.)

Live2D mode (optional, bring your own model and runtime). vtb ships no Cubism runtime (Live2D's
Cubism Core is not redistributable and not on npm). To drive your own Cubism model instead of the
built-in 2D character, put in one directory:

- `live2dcubismcore.min.js` (from Live2D's Cubism SDK for Web, under its license),
- `pixi.min.js` (pixi.js 6.x) and `pixi-live2d-display`'s `cubism4.min.js` (npm packages),
- your model (`*.model3.json` with its moc3, textures, physics),
- an `init.js` that the page loads last; it must define `window.vtbLive2D = {update(params)}`.

and start `AvatarServer(live2d_dir=THAT_DIR)`. The page then loads `/live2d/live2dcubismcore.min.js`,
`/live2d/pixi.min.js`, `/live2d/cubism4.min.js` and `/live2d/init.js` (in that order, any missing
one is skipped), and when `window.vtbLive2D` exists it hides the built-in character and calls
`window.vtbLive2D.update(params)` with every frame's Live2D parameters. A minimal `init.js`:

    (async () => {
      const app = new PIXI.Application({ view: document.getElementById("live2d"),
                                         autoStart: true, backgroundAlpha: 0, resizeTo: window });
      const model = await PIXI.live2d.Live2DModel.from("/live2d/hiyori.model3.json",
                                                       { autoInteract: false });
      model.scale.set(0.25); app.stage.addChild(model);
      const core = model.internalModel.coreModel;
      window.vtbLive2D = { update(params) {
        for (const [name, value] of Object.entries(params)) core.setParameterValueById(name, value);
      } };
    })();

(The page also accepts a `window.Live2DModel`-style hook set by any other script: whatever
defines `window.vtbLive2D.update` takes over.)
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import math
from collections import deque

import socketio
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from engineio import packet as eio_packet

log = logging.getLogger("vtb_bridge.avatar_server")


class _Throttled:
    """Warnings by kind: the first, then at most one every `every_s`, with the count left out."""

    def __init__(self, logger, every_s: float = 5.0):
        self.logger, self.every_s = logger, float(every_s)
        self.last, self.skipped = {}, {}

    def warning(self, kind, msg, *args):
        now = time.monotonic()
        if now - self.last.get(kind, -math.inf) < self.every_s:
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
            return
        skipped = self.skipped.pop(kind, 0)
        self.last[kind] = now
        if skipped:
            msg += " (%d more like it not logged in the last %.0f s)"
            args = (*args, skipped, self.every_s)
        self.logger.warning(msg, *args)


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("", "0.0.0.0", "::")


def split_host(value):
    """A Host header value (or an allowed_hosts entry) as (name, port), lowercase, the IPv6
    brackets and a trailing dot dropped; port None when absent; None when malformed."""
    value = str(value).strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            return None
        name, port = value[1:end], value[end + 2:] or None
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:                                   # a bare name, or an IPv6 address without brackets
        name, port = value, None
    name = name.rstrip(".")
    if not name or any(c.isspace() or c in "/@?#" for c in name):
        return None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        port = int(port)
    return name, port


def parse_allowed_hosts(entries) -> frozenset:
    """allowed_hosts (an iterable of strings, or one comma-separated string) as a set of
    (name, port or None); "*" stays "*". Raises ValueError naming a malformed entry."""
    if isinstance(entries, str):
        entries = entries.split(",")
    out = set()
    for entry in entries:
        entry = str(entry).strip()
        if not entry:
            continue
        if entry == "*":
            out.add("*")
            continue
        parsed = split_host(entry)
        if parsed is None:
            raise ValueError(f"{entry!r} is not host, host:port or [ipv6]:port")
        out.add(parsed)
    return frozenset(out)


class _ServerLog:
    """aiohttp's server logger, for its RequestHandler: a malformed request (an oversized
    header, a bad request line: HttpProcessingError) is one throttled warning line instead of
    an ERROR with a full traceback per request; anything else (a bug in a handler) keeps its
    traceback."""

    def __init__(self, throttled, logger):
        self.throttled, self.logger = throttled, logger

    def debug(self, *args, **kwargs):
        kwargs.pop("exc_info", None)
        self.logger.debug(*args, **kwargs)

    def exception(self, msg, *args, exc_info=None, **kwargs):
        if isinstance(exc_info, HttpProcessingError):
            why = (str(exc_info.message or exc_info).splitlines() or [""])[0][:60]
            self.throttled.warning("bad_http", "refused a malformed HTTP request from %s (%d: %s)",
                                   args[0] if args else "?", exc_info.code or 400, why)
        else:
            self.logger.error(msg, *args, exc_info=exc_info or True, **kwargs)

    def __getattr__(self, name):            # info, warning, ... as the module's logger
        return getattr(self.logger, name)


class _EngineLog:
    """Engine.IO's and Socket.IO's logger: what a client's malformed packet makes them log (an
    empty or unknown-type polling POST, a JSONP form: `logger.exception` with a full traceback,
    each time, before any token check) is one throttled warning line, counted in `rejected`."""

    def __init__(self, throttled, logger, on_rejected):
        self.throttled, self.logger, self.on_rejected = throttled, logger, on_rejected

    def exception(self, msg, *args, **kwargs):
        error = sys.exc_info()[1]
        self.on_rejected()
        self.throttled.warning("engineio", "rejected a malformed Engine.IO request (%s: %s: %s)",
                               str(msg % args if args else msg)[:60], type(error).__name__, str(error)[:80])

    def error(self, msg, *args, **kwargs):
        self.throttled.warning("engineio", "Engine.IO: " + str(msg % args if args else msg)[:200])

    warning = error

    def info(self, msg, *args, **kwargs):
        self.logger.debug(msg, *args)

    debug = info

    def __getattr__(self, name):            # isEnabledFor, level, ... as the module's logger
        return getattr(self.logger, name)


def _all_finite(payload) -> bool:
    if isinstance(payload, float):
        return math.isfinite(payload)
    if isinstance(payload, dict):
        return all(_all_finite(v) for v in payload.values())
    if isinstance(payload, (list, tuple)):
        return all(_all_finite(v) for v in payload)
    return True

WEB_DIR = Path(__file__).resolve().parent / "web"
SOCKETIO_JS = WEB_DIR / "vendor" / "socket.io.min.js"
VRM_PAGE = WEB_DIR / "vrm.html"


def _importmap_hash() -> str:
    """The CSP source ('sha256-...') of vrm.html's inline import map, so no other inline script runs."""
    import base64
    import hashlib
    import re
    m = re.search(r'<script type="importmap">(.*?)</script>', VRM_PAGE.read_text(), re.S)
    return "sha256-" + base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode()


LIVE2D_SCRIPTS = ("live2dcubismcore.min.js", "pixi.min.js", "cubism4.min.js", "init.js")


class _GuardedServer(socketio.AsyncServer):
    """AsyncServer that rejects (logs, counts, disconnects) packets it cannot or should not parse:
    malformed packets and binary packets (the page never sends binary data)."""

    owner = None

    async def _handle_eio_message(self, eio_sid, data):
        if not isinstance(data, str):
            return await self._reject(eio_sid, "binary data")
        if data[:1] in ("5", "6"):            # BINARY_EVENT / BINARY_ACK
            return await self._reject(eio_sid, "binary packet")
        try:
            return await super()._handle_eio_message(eio_sid, data)
        except Exception as e:  # noqa: BLE001 - malformed packet from a client
            return await self._reject(eio_sid, f"malformed packet ({type(e).__name__}: {e})")

    async def _reject(self, eio_sid, why):
        if self.owner is not None:
            self.owner.rejected += 1
            self.owner._warn.warning("packet", "rejected a message from client %s: %s; disconnecting it",
                                     eio_sid, why[:200])
        sock = self.eio.sockets.get(eio_sid)
        try:
            await self.eio.disconnect(eio_sid)       # sends Engine.IO's close packet
            if sock is not None:
                await sock.queue.put(None)           # and ends the writer: the WebSocket closes now
        except Exception:  # noqa: BLE001
            pass


class AvatarServer:
    """Serves the avatar page and broadcasts AvatarFrames to the browsers showing it."""

    ALLOWED_EVENTS = {"hello"}           # client -> server; everything else is rejected

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 namespace: str = "/kizuna", event: str = "result_data",
                 max_message_bytes: int = 16 * 1024, live2d_dir: str | Path | None = None,
                 also_emit=("result_download",), max_client_queue: int = 4,
                 max_token_failures: int = 5, token_window_s: float = 60.0, token_lockout_s: float = 30.0,
                 token_delay_s: float = 1.0,
                 log_every_s: float = 5.0, allowed_hosts=(), vrm_file: str | Path | None = None):
        self.host = host
        self.port = port
        self.token = token or None
        self.namespace = namespace
        self.event = event
        self.also_emit = tuple(e for e in also_emit if e != event)   # the same payload, other names
        self.max_message_bytes = int(max_message_bytes)
        self.live2d_dir = Path(live2d_dir).resolve() if live2d_dir else None
        # the user's own VRM model, served as /model.vrm (the page loads it instead of the default avatar)
        self.vrm_file = Path(vrm_file).expanduser().resolve() if vrm_file else None
        self.url = None
        # counters
        self.sent = 0            # frames broadcast
        self.dropped = 0         # frames replaced in the slot before they went out
        self.refused = 0         # connections refused (token)
        self.rejected = 0        # client messages rejected
        self.dropped_slow = 0    # frames dropped from a slow client's queue (oldest first)
        self.not_finite = 0      # frames not sent: NaN or infinity in them
        self.token_failures = 0  # wrong or missing tokens checked
        self.locked_out = 0      # wrong tokens answered late: too many wrong tokens from that address
        self.refused_host = 0    # requests refused: their Host is not this server (DNS rebinding)
        self.allowed_hosts = allowed_hosts     # parsed by the setter; may be set while serving
        self._own_hosts = frozenset()          # the bound address's names, set once the port is known
        self.max_client_queue = max(1, int(max_client_queue))
        self.max_token_failures = max(1, int(max_token_failures))
        self.token_window_s, self.token_lockout_s = float(token_window_s), float(token_lockout_s)
        self.token_delay_s = float(token_delay_s)
        self._failures = {}      # address -> deque of monotonic times of its wrong tokens
        self._locked = {}        # address -> monotonic time its lockout ends
        self._warn = _Throttled(log, log_every_s)
        self.clients = set()     # connected sids in the namespace
        # client command name -> callable(data: dict) -> (success, message); set by the bridge
        self.commands = {}
        # the avatar settings the page shows and may change (`settings` command, set by the
        # bridge); sent to every page on connect and whenever publish_settings() is called
        self.settings = {}
        self._lock = threading.Lock()
        self._slot = None
        self._loop = None
        self._wake = None
        self._thread = None
        self._ready = threading.Event()
        self._error = None
        self._stopping = None
        self._sio = None
        self._runner = None

    # ---- the caller's side -----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> str:
        """Start serving in a background thread; returns the page's URL (with the real port)."""
        if self._thread is not None:
            return self.url
        if not SOCKETIO_JS.is_file():
            raise FileNotFoundError(f"{SOCKETIO_JS} is missing (the vendored socket.io browser client)")
        if self.vrm_file is not None and not self.vrm_file.is_file():
            raise FileNotFoundError(f"vrm_file {self.vrm_file} is not a file")
        self._thread = threading.Thread(target=self._run, name="vtb-avatar-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the avatar server did not start")
        if self._error is not None:
            raise self._error
        return self.url

    def send(self, frame) -> None:
        """Queue `frame` (an AvatarFrame or a result_data dict) for the pages. Never blocks."""
        payload = frame if isinstance(frame, dict) else frame.result_data()
        if not _all_finite(payload):
            self.not_finite += 1
            self._warn.warning("not_finite", "a frame holding NaN or infinity was not sent (%d so far)",
                               self.not_finite)
            return
        with self._lock:
            if self._slot is not None:
                self.dropped += 1
            self._slot = payload
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._poke)
            except RuntimeError:          # loop closed
                pass

    @property
    def allowed_hosts(self) -> frozenset:
        return self._allowed_hosts

    @allowed_hosts.setter
    def allowed_hosts(self, entries) -> None:
        self._allowed_hosts = parse_allowed_hosts(entries)   # one assignment: safe across threads

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        loop = self._loop
        if loop is not None and self._stopping is not None:
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        self._thread = None

    def stats(self) -> dict:
        return {"url": self.url, "clients": len(self.clients), "sent": self.sent,
                "dropped": self.dropped, "refused": self.refused, "rejected": self.rejected,
                "dropped_slow": self.dropped_slow, "not_finite": self.not_finite,
                "token_failures": self.token_failures, "locked_out": self.locked_out,
                "refused_host": self.refused_host}

    # ---- the server's thread ---------------------------------------------------------------
    def _poke(self):
        if self._wake is not None:
            self._wake.set()

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as e:  # noqa: BLE001
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    def _token_ok(self, environ, auth) -> bool:
        if self.token is None:
            return True
        given = None
        if isinstance(auth, dict):
            given = auth.get("token")
        if given is None:
            given = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [None])[0]
        import hmac
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode())

    async def _main(self):
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        engine_log = _EngineLog(self._warn, log, self._count_rejected)
        sio = _GuardedServer(async_mode="aiohttp", namespaces=[self.namespace],
                             max_http_buffer_size=self.max_message_bytes,
                             logger=engine_log, engineio_logger=engine_log)
        sio.owner = self
        self._sio = sio
        ns = self.namespace

        @sio.on("connect", namespace=ns)
        async def _connect(sid, environ, auth=None):
            address = self._address(environ)
            if not self._token_ok(environ, auth):     # the right token connects, locked out or not
                self.refused += 1
                self.token_failures += 1
                if self._is_locked(address):        # too many wrong ones lately: answer late
                    self.locked_out += 1
                    self._warn.warning("locked", "refused a Socket.IO client from %s after %.1f s: wrong "
                                       "token, too many from that address (%d so far)", address,
                                       self.token_delay_s, self.locked_out)
                    await asyncio.sleep(self.token_delay_s)
                else:
                    self._failed_token(address)
                    self._warn.warning("token", "refused a Socket.IO client from %s: missing or wrong token "
                                       "(%d so far)", address, self.token_failures)
                raise socketio.exceptions.ConnectionRefusedError("unauthorized")
            self.clients.add(sid)
            log.info("page connected (%d connected)", len(self.clients))
            if self.settings:
                await sio.emit("settings", dict(self.settings), to=sid, namespace=ns)

        @sio.on("disconnect", namespace=ns)
        async def _disconnect(sid, *_args):
            self.clients.discard(sid)

        @sio.on("*", namespace=ns)
        async def _any(event, sid, *args):
            size = len(json.dumps(args, default=str)) if args else 0
            if event in self.commands:
                return await self._command(event, sid, args, size)
            if event not in self.ALLOWED_EVENTS:
                self.rejected += 1
                self._warn.warning("event", "rejected event %r from %s (%d bytes): pages only listen",
                                   str(event)[:40], sid, size)
                return
            if event == "hello":
                if len(args) != 1 or not isinstance(args[0], dict) or size > 1024:
                    self.rejected += 1
                    self._warn.warning("hello", "rejected a malformed hello from %s", sid)
                    return
                log.info("page %s says hello: %s", sid, json.dumps(args[0])[:200])

        # the Host check runs before every route, Socket.IO's and the WebSocket upgrade included
        app = web.Application(client_max_size=self.max_message_bytes, middlewares=[self._host_guard])
        sio.attach(app)
        app.router.add_get("/", self._vrm_page if self.live2d_dir is None else self._page)
        app.router.add_get("/index.html", self._vrm_page if self.live2d_dir is None else self._page)
        app.router.add_get("/vrm", self._vrm_page)
        app.router.add_get("/2d", self._page)
        app.router.add_get("/model.vrm", self._model)
        # the 3D page's modules and the vendored three.js / three-vrm, as files (no index, no symlinks)
        app.router.add_static("/vrm/", WEB_DIR / "vrm", show_index=False, follow_symlinks=False)
        app.router.add_static("/vendor/", WEB_DIR / "vendor", show_index=False, follow_symlinks=False)
        app.router.add_get("/socket.io.min.js", self._socketio_js)
        app.router.add_get("/config.json", self._config)
        if self.live2d_dir is not None:
            app.router.add_static("/live2d/", self.live2d_dir, show_index=False, follow_symlinks=False)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=_ServerLog(self._warn, log))
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        port = site._server.sockets[0].getsockname()[1]
        self.port = port
        self._own_hosts = self._own_host_names()
        host = self.host if ":" not in self.host else f"[{self.host}]"
        self.url = f"http://{host}:{port}/"
        self._ready.set()
        log.info("avatar page at %s", self.url)
        broadcaster = asyncio.ensure_future(self._broadcast_loop())
        await self._stopping.wait()
        broadcaster.cancel()
        for sid in list(self.clients):
            try:
                await sio.disconnect(sid, namespace=ns)
            except Exception:  # noqa: BLE001
                pass
        await runner.cleanup()
        await sio.shutdown()
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _command(self, event, sid, args, size):
        """A page's command (calibrate_neutral, settings): at most one small dict argument, given
        to the callable (run off the loop); its (success, message) is the acknowledgement."""
        if len(args) > 1 or (args and not isinstance(args[0], dict)) or size > 1024:
            self.rejected += 1
            self._warn.warning("command", "rejected a malformed %s from %s", event, sid)
            return {"success": False, "message": "malformed request"}
        try:
            data = dict(args[0]) if args else {}
            answer = await asyncio.get_running_loop().run_in_executor(None, self.commands[event], data)
            ok, message, extra = (*answer, {}) if len(answer) == 2 else answer
        except Exception as e:  # noqa: BLE001 - the caller's callable
            log.warning("%s from %s failed: %r", event, sid, e)
            ok, message, extra = False, f"{event} failed: {e}", {}
        log.info("page %s: %s -> %s", sid, event, message)
        return {**extra, "success": bool(ok), "message": str(message)}

    def publish_settings(self, settings: dict) -> None:
        """New avatar settings (any thread): kept for pages that connect later and sent to the
        connected ones now."""
        self.settings = dict(settings)
        if self._loop is not None and self._sio is not None:
            asyncio.run_coroutine_threadsafe(
                self._sio.emit("settings", dict(self.settings), namespace=self.namespace), self._loop)

    # ---- Host check: DNS rebinding ----------------------------------------------------------
    def _own_host_names(self) -> frozenset:
        bound = (split_host(f"[{self.host}]" if ":" in self.host else self.host) or ("",))[0]
        names = {bound} - set(WILDCARD)
        if bound in LOOPBACK_NAMES or bound in WILDCARD or bound.startswith("127."):
            names.update(LOOPBACK_NAMES)
        if bound in WILDCARD:                 # all addresses: this machine's names too
            for name in (socket.gethostname(), socket.getfqdn()):
                names.add(name.lower().rstrip("."))
        return frozenset(n for n in names if n)

    def _host_ok(self, request) -> bool:
        allowed = self._allowed_hosts
        if "*" in allowed:
            return True
        parsed = split_host(request.headers.get("Host", ""))
        if parsed is None:
            return False
        name, port = parsed
        if port is None:
            port = 80                         # what a browser leaves out
        if (name, port) in allowed or ((name, None) in allowed and port == self.port):
            return True
        if port != self.port:
            return False
        if name in self._own_hosts:
            return True
        if self.host in WILDCARD:             # the address this connection came in on
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            local = str(sockname[0]).lower() if sockname else ""
            return name in (local, local.removeprefix("::ffff:"))
        return False

    @web.middleware
    async def _host_guard(self, request, handler):
        if not self._host_ok(request):
            self.refused_host += 1
            self._warn.warning("host", "refused a request for %s from %s: its Host %r is not this server "
                               "(DNS rebinding?); add it to allowed_hosts to allow it (%d so far)",
                               request.path[:80], request.remote, request.headers.get("Host", "")[:80],
                               self.refused_host)
            return web.Response(status=403, text="403: this server does not answer to that Host\n")
        return await handler(request)

    def _count_rejected(self):
        self.rejected += 1

    # ---- wrong tokens: rate-limited per client address ---------------------------------------
    @staticmethod
    def _address(environ) -> str:
        request = environ.get("aiohttp.request")      # engineio's environ says 127.0.0.1 for all
        remote = getattr(request, "remote", None)
        return str(remote or environ.get("REMOTE_ADDR") or "?")

    def _is_locked(self, address) -> bool:
        until = self._locked.get(address)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._locked[address]
        return False

    def _failed_token(self, address):
        now = time.monotonic()
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and now - times[0] > self.token_window_s:
            times.popleft()
        if len(times) >= self.max_token_failures:
            self._locked[address] = now + self.token_lockout_s
            times.clear()
            self._warn.warning("lockout", "%d wrong tokens from %s: its wrong tokens are answered after "
                               "%.1f s for the next %.0f s", self.max_token_failures, address,
                               self.token_delay_s, self.token_lockout_s)
        if len(self._failures) > 1024:                 # bounded: forget the quiet addresses
            for a in [a for a, t in self._failures.items() if not t or now - t[-1] > self.token_window_s]:
                del self._failures[a]

    # ---- slow clients: a bounded queue each ---------------------------------------------------
    def _frame_prefixes(self):
        ns = "" if self.namespace == "/" else self.namespace + ","
        return tuple(f'2{ns}["{e}"' for e in (self.event, *self.also_emit))

    def _trim_queues(self):
        """Make room for one more frame in every client's Engine.IO queue: beyond
        `max_client_queue` frames waiting, the oldest frames go (other packets stay)."""
        per_frame = 1 + len(self.also_emit)
        keep = (self.max_client_queue - 1) * per_frame
        prefixes = self._frame_prefixes()
        for sock in list(self._sio.eio.sockets.values()):
            q = getattr(sock, "queue", None)
            if q is None or q.qsize() <= keep:
                continue
            items = []
            while True:
                try:
                    items.append(q.get_nowait())
                except asyncio.QueueEmpty:
                    break
                q.task_done()
            frames = [i for i, p in enumerate(items)
                      if p is not None and p.packet_type == eio_packet.MESSAGE and isinstance(p.data, str)
                      and p.data.startswith(prefixes)]
            drop = set(frames[:max(0, len(frames) - keep)])
            for i, p in enumerate(items):
                if i not in drop:
                    q.put_nowait(p)
            self.dropped_slow += len(drop) // per_frame

    async def _broadcast_loop(self):
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                payload, self._slot = self._slot, None
            if payload is None:
                continue
            try:
                self._trim_queues()
                for event in (self.event, *self.also_emit):
                    await self._sio.emit(event, payload, namespace=self.namespace)
                self.sent += 1
            except Exception as e:  # noqa: BLE001
                self._warn.warning("broadcast", "broadcast failed: %s", e)

    async def _page(self, request):
        # nothing from outside the server; pixi.js (Live2D mode only) needs eval for its shaders
        unsafe_eval = " 'unsafe-eval'" if self.live2d_dir is not None else ""
        return web.FileResponse(WEB_DIR / "avatar.html", headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": f"default-src 'self'; script-src 'self' 'unsafe-inline'{unsafe_eval}; "
                                       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                                       "connect-src 'self'",
            "X-Content-Type-Options": "nosniff"})

    async def _vrm_page(self, request):
        # strict: scripts from this server only, plus the page's one inline import map (by its hash);
        # three.js and three-vrm need no eval. blob:/data: for the textures GLTFLoader unpacks
        return web.FileResponse(VRM_PAGE, headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": f"default-src 'self'; script-src 'self' '{_importmap_hash()}'; "
                                       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
                                       "connect-src 'self' data: blob:; object-src 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff"})

    async def _model(self, request):
        if self.vrm_file is None:
            raise web.HTTPNotFound(text="no vrm_file configured\n")
        return web.FileResponse(self.vrm_file, headers={"Content-Type": "model/gltf-binary",
                                                        "Cache-Control": "no-store"})

    async def _socketio_js(self, request):
        return web.FileResponse(SOCKETIO_JS, headers={"Content-Type": "application/javascript"})

    async def _config(self, request):
        scripts = []
        if self.live2d_dir is not None:
            scripts = [f"/live2d/{n}" for n in LIVE2D_SCRIPTS if (self.live2d_dir / n).is_file()]
        return web.json_response({"namespace": self.namespace, "event": self.event,
                                  "live2d_scripts": scripts, "token_required": self.token is not None,
                                  "vrm_url": "/model.vrm" if self.vrm_file is not None else None,
                                  "settings": dict(self.settings)})


def main(argv=None):
    """`python -m vtb_bridge.avatar_server [--port N] [--demo]`: serve the page; with --demo,
    stream a synthetic face (turning, blinking, talking) to it."""
    import argparse
    import math

    from vtb_bridge.avatar_frame import AvatarFrame
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token", default=None)
    p.add_argument("--demo", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = AvatarServer(a.host, a.port, a.token)
    print(json.dumps({"url": server.start()}), flush=True)
    try:
        t0 = time.monotonic()
        while True:
            t = time.monotonic() - t0
            if a.demo:
                blink = 0.0 if (t % 3.0) < 0.15 else 1.0
                params = {"ParamAngleX": 30 * math.sin(t), "ParamAngleY": 15 * math.sin(0.7 * t),
                          "ParamAngleZ": 10 * math.sin(0.5 * t), "ParamEyeLOpen": blink,
                          "ParamEyeROpen": blink, "ParamEyeBallX": math.sin(1.3 * t),
                          "ParamEyeBallY": 0.5 * math.sin(0.9 * t),
                          "ParamBrowLY": math.sin(0.8 * t), "ParamBrowRY": math.sin(0.8 * t),
                          "ParamMouthOpenY": max(0.0, math.sin(3 * t)),
                          "ParamMouthForm": math.sin(0.4 * t)}
                server.send(AvatarFrame("f000", time.time(), params))
            time.sleep(1 / 30)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
