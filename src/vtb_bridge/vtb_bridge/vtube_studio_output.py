"""VTube Studio output: AvatarFrames injected as VTS tracking parameters through its plugin API
(WebSocket, default ws://localhost:8001). No rclpy here.

Protocol (https://github.com/DenchiSoft/VTubeStudio, "API Details"): JSON text messages
{"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0", "requestID", "messageType", "data"};
every answer repeats the requestID; failures come back as messageType "APIError" with
data.errorID (ErrorID.cs) and data.message.

Flow, on every connection:
1. If a token is stored (the token file, default $XDG_CONFIG_HOME/vtb/vtube_studio_token, i.e.
   ~/.config/vtb/vtube_studio_token), send AuthenticationRequest (pluginName, pluginDeveloper,
   authenticationToken). Authenticated: go to 3.
2. Otherwise, or when VTS answers authenticated=false (the user revoked the plugin), send
   AuthenticationTokenRequest (pluginName "vtb face tracking", pluginDeveloper "vtb contributors";
   VTS wants 3 to 32 characters for each, and binds the token to both). VTS shows a popup; when
   the user clicks Allow the answer carries the token, which is written to the token file (mode
   0600) and used for AuthenticationRequest. A denial (errorID 50) waits `denied_retry_s` before
   asking again, so the user is not nagged by a popup every few seconds.
3. Stream: InjectParameterDataRequest {"faceFound": true, "mode": "set",
   "parameterValues": [{"id", "value"}, ...]} for the newest frame whenever a new one arrives,
   and the newest one again every `resend_interval` seconds (VTS forgets injected values after
   about a second without data). Answers are read and counted; an errorID 8 (the session needs
   authentication) reconnects.
4. Face lost: frames the bridge sends while the face is lost (tracked=False, easing back to
   neutral) are not injected, and the re-sending stops: after about a second VTS takes its
   parameters back (its own tracking, or the model's defaults) instead of being held at vtb's
   neutral values. Injecting starts again with the next tracked frame.
5. Errors answered to injections (APIError, e.g. 454: a parameter is controlled by another
   plugin, 453: unknown parameter) pause injecting for `error_backoff_min` seconds, doubling up
   to `error_backoff_max` while they go on (errors of injections already in flight do not
   extend a pause), reset by a successful injection; then the newest frame is tried again.
Any failure (VTS not running, restarted, connection lost) closes the connection and retries
after a backoff that doubles from `reconnect_min` to `reconnect_max` and resets once
authenticated. `close()` ends the session with close code 1000 (normal closure), and VTS
releases the injected parameters.

Never blocks the caller: everything runs on a daemon thread with its own asyncio loop
(`websockets` library); `send(frame)` only stores the newest frame and wakes that loop.

Parameters: VTS's default input parameters, whose default mappings in a VTS model are the
identity onto the Live2D standard parameters (FaceAngleX -> ParamAngleX, EyeOpenLeft ->
ParamEyeLOpen, EyeLeftX -> ParamEyeBallX, MouthOpen -> ParamMouthOpenY, MouthSmile 0..1 ->
ParamMouthForm -1..1, Brows / BrowLeftY / BrowRightY 0..1 -> ParamBrowLY / ParamBrowRY -1..1).
So each value is taken from the frame's Live2D parameters (frame.params, which already carry the
bridge's gains and its mirroring: this output does not mirror), converted to the input's range,
and only where a parameter is missing is it computed from the frame's raw fields (the avatar's
motion after the mirror choice, HeadPose's signs; blink is (screen-left, screen-right)):

    id            range (default mapping)  from frame.params            else from the frame
    FaceAngleX    -30..30 deg (*)          ParamAngleX                  yaw
    FaceAngleY    -30..30 deg (*)          ParamAngleY                  -pitch (pitch > 0 = down)
    FaceAngleZ    -30..30 deg (*)          ParamAngleZ                  -roll
    EyeOpenLeft   0..1                     ParamEyeLOpen                blink[1] (the model's own
                                                                        left eye: the screen's right)
    EyeOpenRight  0..1                     ParamEyeROpen                blink[0]
    EyeLeftX/     -1..1                    ParamEyeBallX                theta / eye_range
    EyeRightX
    EyeLeftY/     -1..1                    ParamEyeBallY                -phi / eye_range
    EyeRightY
    MouthOpen     0..1                     ParamMouthOpenY              frame.mouth
    MouthSmile    0..1                     (ParamMouthForm + 1) / 2     (not sent)
    BrowLeftY     0..1                     (ParamBrowLY + 1) / 2        (not sent)
    BrowRightY    0..1                     (ParamBrowRY + 1) / 2        (not sent)
    Brows         0..1                     mean of the two above        (not sent)

(*) The Live2D convention: ParamAngleX > 0 turns the model towards the screen's right (its own
left), ParamAngleY > 0 looks up, ParamAngleZ > 0 tilts the top of the head towards the screen's
right; FaceAngleZ likewise (VTS's own tracking: + = the head tilted towards the screen's right).
A mirrored avatar turns and tilts to the screen side the user turns and tilts to. The head angles are not
clamped (VTS itself reports FaceAngleX beyond 30 for a turned head; its mapping clamps), only
limited to +-90; everything else is clamped to its range. vtb's frame has no face position, so
FacePositionX/Y/Z are left to VTS; vowels have no default VTS input.

Perfect sync: the frame's 52 ARKit blendshapes (0..1, already mirrored by the bridge) go to
custom parameters named by `custom_parameter` (vtbEyeBlinkLeft, ...), created with
ParameterCreationRequest (min 0, max 1, default 0) the first time a frame carries them on a
connection (VTS keeps them; creating one again that this plugin made updates it). A parameter is
injected once VTS has confirmed its creation; one VTS refused (an APIError) is left out, counted
in `parameter_errors`, and does not pause the injections.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
from pathlib import Path

from vtb_bridge.avatar_frame import AvatarFrame, finite as _finite
from vtb_bridge.avatar_settings import write_private

DEFAULT_URL = "ws://localhost:8001"
API_NAME = "VTubeStudioPublicAPI"
API_VERSION = "1.0"

ERROR_REQUIRES_AUTH = 8
ERROR_TOKEN_DENIED = 50
ERROR_PARAM_CONTROLLED_BY_OTHER_PLUGIN = 454
NORMAL_CLOSURE = 1000
PLUGIN_NAME = "vtb face tracking"        # VTS: 3 to 32 characters
PLUGIN_DEVELOPER = "vtb contributors"

# Default input parameters sent, with the range of their default mapping.
PARAM_RANGES = {
    "FaceAngleX": (-30.0, 30.0), "FaceAngleY": (-30.0, 30.0), "FaceAngleZ": (-30.0, 30.0),
    "EyeOpenLeft": (0.0, 1.0), "EyeOpenRight": (0.0, 1.0),
    "EyeLeftX": (-1.0, 1.0), "EyeLeftY": (-1.0, 1.0),
    "EyeRightX": (-1.0, 1.0), "EyeRightY": (-1.0, 1.0),
    "MouthOpen": (0.0, 1.0), "MouthSmile": (0.0, 1.0),
    "Brows": (0.0, 1.0), "BrowLeftY": (0.0, 1.0), "BrowRightY": (0.0, 1.0),
}
HEAD_ANGLE_LIMIT = 90.0
# The ARKit blendshapes go to custom parameters (VTS: 4 to 32 letters and digits, unique):
# "vtb" + the ARKit name with a capital first letter (vtbEyeBlinkLeft, vtbJawOpen, ...), so they
# never clash with VTS's own input parameters (its iPhone tracking has JawOpen, CheekPuff, ...).
CUSTOM_PREFIX = "vtb"


def custom_parameter(arkit_name: str) -> str:
    return CUSTOM_PREFIX + arkit_name[:1].upper() + arkit_name[1:]

log = logging.getLogger("vtb_bridge.vtube_studio")


def default_token_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vtb" / "vtube_studio_token"


def _clamp(v, lo, hi) -> float:
    return min(hi, max(lo, v))


def vts_parameters(frame: AvatarFrame, eye_range_deg: float = 25.0) -> dict:
    """{VTS input parameter id: value} for one frame (see the module's table)."""
    p = frame.params
    pitch, yaw, roll = (_finite(v) for v in frame.euler)
    out = {
        "FaceAngleX": _finite(p.get("ParamAngleX", yaw)),
        "FaceAngleY": _finite(p.get("ParamAngleY", -pitch)),
        "FaceAngleZ": _finite(p.get("ParamAngleZ", -roll)),
    }
    for k in ("FaceAngleX", "FaceAngleY", "FaceAngleZ"):
        out[k] = _clamp(out[k], -HEAD_ANGLE_LIMIT, HEAD_ANGLE_LIMIT)

    screen_left_open, screen_right_open = (_finite(v, 1.0) for v in frame.blink)
    out["EyeOpenLeft"] = _finite(p.get("ParamEyeLOpen", screen_right_open), 1.0)
    out["EyeOpenRight"] = _finite(p.get("ParamEyeROpen", screen_left_open), 1.0)

    theta, phi = (_finite(v) for v in frame.eye)
    scale = math.radians(eye_range_deg)
    eye_x = _finite(p.get("ParamEyeBallX", theta / scale))
    eye_y = _finite(p.get("ParamEyeBallY", -phi / scale))
    out.update(EyeLeftX=eye_x, EyeRightX=eye_x, EyeLeftY=eye_y, EyeRightY=eye_y)

    out["MouthOpen"] = _finite(p.get("ParamMouthOpenY", frame.mouth))
    if "ParamMouthForm" in p:
        out["MouthSmile"] = (_finite(p["ParamMouthForm"]) + 1.0) / 2.0
    brows = []
    for vts_id, param in (("BrowLeftY", "ParamBrowLY"), ("BrowRightY", "ParamBrowRY")):
        if param in p:
            out[vts_id] = (_finite(p[param]) + 1.0) / 2.0
            brows.append(out[vts_id])
    if brows:
        out["Brows"] = sum(brows) / len(brows)

    for k, v in out.items():
        if not k.startswith("FaceAngle"):
            lo, hi = PARAM_RANGES[k]
            out[k] = _clamp(v, lo, hi)
    return out


class _AuthError(Exception):
    pass


class _TokenDenied(Exception):
    pass


class VTubeStudioOutput:
    """Streams AvatarFrames into VTube Studio from a background thread. `send` never blocks.

    `counters()` reports: frames (send calls), superseded (frames replaced by a newer one before
    they were sent), injections (InjectParameterDataRequests sent), injection_ok (their
    successful answers), api_errors, backoffs (pauses after injection errors), untracked
    (frames not injected because the face was lost), connects, failures (connections that
    failed or ended), token_requests, tokens_saved, token_save_errors (a token the file could
    not hold: kept in memory for this run, one ERROR line), auth_ok, auth_rejected, state and
    last_error."""

    def __init__(self, url: str = DEFAULT_URL, token_path: str | os.PathLike | None = None,
                 plugin_name: str = PLUGIN_NAME, plugin_developer: str = PLUGIN_DEVELOPER,
                 resend_interval: float = 0.5, reconnect_min: float = 0.5,
                 reconnect_max: float = 10.0, open_timeout: float = 3.0,
                 request_timeout: float = 5.0, token_timeout: float = 120.0,
                 denied_retry_s: float = 60.0, eye_range_deg: float = 25.0,
                 error_backoff_min: float = 1.0, error_backoff_max: float = 16.0,
                 logger: logging.Logger | None = None, start: bool = True):
        for what, v in (("plugin_name", plugin_name), ("plugin_developer", plugin_developer)):
            if not 3 <= len(v) <= 32:
                raise ValueError(f"{what} must be 3 to 32 characters long (VTube Studio's rule): {v!r}")
        self.url = url
        self.token_path = Path(token_path).expanduser() if token_path else default_token_path()
        self.plugin_name, self.plugin_developer = plugin_name, plugin_developer
        self.eye_range_deg = float(eye_range_deg)
        self.error_backoff_min, self.error_backoff_max = float(error_backoff_min), float(error_backoff_max)
        self.resend_interval = float(resend_interval)
        self.reconnect_min, self.reconnect_max = float(reconnect_min), float(reconnect_max)
        self.open_timeout, self.request_timeout = float(open_timeout), float(request_timeout)
        self.token_timeout, self.denied_retry_s = float(token_timeout), float(denied_retry_s)
        self.log = logger or log

        self._lock = threading.Lock()
        self._frame: AvatarFrame | None = None
        self._frame_seq = 0
        self._sent_seq = 0     # _frame_seq of the last frame injected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._request_no = 0
        self._backoff = 0.0            # current pause after injection errors, seconds (0: none)
        self._backoff_until = 0.0      # loop time until which nothing is injected
        self._created = set()          # custom parameters VTS confirmed, this connection
        self._creating = {}            # requestID -> custom parameter name, awaiting VTS's answer
        self._refused = set()          # custom parameters VTS refused, this connection: not asked again

        self._unsaved_token = None     # a token VTS gave that the token file could not hold
        self.state = "stopped"
        self.last_error = ""
        self._c = dict(frames=0, superseded=0, injections=0, injection_ok=0, api_errors=0,
                       backoffs=0, untracked=0, connects=0, failures=0, token_requests=0, tokens_saved=0,
                       token_save_errors=0,
                       auth_ok=0, auth_rejected=0, parameters_created=0, parameter_errors=0)
        if start:
            self.start()

    # -- caller side (any thread) ---------------------------------------------------------
    def start(self):
        if self._thread is not None:
            return
        self._closing = False
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="vtb-vtube-studio",
                                        daemon=True)
        self._thread.start()
        ready.wait(5.0)

    def send(self, frame: AvatarFrame):
        """Store the newest frame for the background thread; returns at once."""
        with self._lock:
            if self._frame is not None and self._sent_seq != self._frame_seq:
                self._c["superseded"] += 1
            self._frame = frame
            self._frame_seq += 1
            self._c["frames"] += 1
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:   # the loop is closing
                pass

    def counters(self) -> dict:
        with self._lock:
            c = dict(self._c)
        c["state"], c["last_error"] = self.state, self.last_error
        return c

    def close(self, timeout: float = 3.0):
        """Stop the thread and close the connection (VTS then releases the parameters)."""
        self._closing = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self.state = "stopped"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- token file -----------------------------------------------------------------------
    def _load_token(self) -> str | None:
        try:
            token = self.token_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return self._unsaved_token
        return token or self._unsaved_token

    def _save_token(self, token: str):
        try:
            write_private(self.token_path, token + "\n")   # 0600 even over a stale temporary file
        except OSError as e:
            # e.g. the path is a directory: a token that is not kept would make VTube Studio ask
            # the user again (an "allow plugin" pop-up) at every reconnect. Keep it for this run.
            self._unsaved_token = token
            self._count("token_save_errors")
            self.log.error("VTube Studio: cannot save the plugin token to %s (%s): it is used for this "
                           "run only, and VTube Studio will ask again at the next start; give a file "
                           "path that can be written", self.token_path, e.strerror or e)
            return
        self._unsaved_token = None
        self._count("tokens_saved")

    def _forget_token(self):
        self._unsaved_token = None
        try:
            self.token_path.unlink()
        except OSError:
            pass

    # -- background thread ----------------------------------------------------------------
    def _count(self, key, n=1):
        with self._lock:
            self._c[key] += n

    def _error(self, text):
        if text != self.last_error:
            self.log.warning("VTube Studio: %s", text)
        self.last_error = text

    def _run(self, ready: threading.Event):
        async def main():
            self._loop = asyncio.get_running_loop()
            self._wake, self._stop = asyncio.Event(), asyncio.Event()
            ready.set()
            worker = asyncio.create_task(self._connection_loop())
            await self._stop.wait()
            # the worker closes an open session with 1000 itself; only a hung connect is cut short
            done, _ = await asyncio.wait({worker}, timeout=1.5)
            if not done:
                worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        try:
            asyncio.run(main())
        finally:
            self._loop = None
            ready.set()

    async def _connection_loop(self):
        from websockets.asyncio.client import connect
        self._delay = self.reconnect_min
        while not self._closing:
            self.state = "connecting"
            wait = None
            try:
                async with connect(self.url, open_timeout=self.open_timeout, proxy=None,
                                   compression=None, max_size=2 ** 22,
                                   close_timeout=1.0) as ws:
                    self._count("connects")
                    session = asyncio.create_task(self._session(ws))
                    stopping = asyncio.create_task(self._stop.wait())
                    try:
                        await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        stopping.cancel()
                    if not session.done():      # close(): end the session as a normal closure
                        session.cancel()
                        await asyncio.gather(session, return_exceptions=True)
                        await ws.close(NORMAL_CLOSURE, "vtb stopping")
                        return
                    session.result()            # raises: the session ended
            except asyncio.CancelledError:
                raise
            except _TokenDenied as e:
                self._error(str(e))
                wait = self.denied_retry_s
            except Exception as e:  # noqa: BLE001 - connection refused, closed, timeouts, ...
                self._count("failures")
                self._error(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            if self._closing:
                break
            self.state = "waiting"
            try:                                # close() interrupts the wait
                await asyncio.wait_for(self._stop.wait(), wait if wait is not None else self._delay)
            except TimeoutError:
                pass
            if wait is None:
                self._delay = min(self._delay * 2.0, self.reconnect_max)

    async def _session(self, ws):
        self._created, self._creating, self._refused = set(), {}, set()
        await self._authenticate(ws)
        self._delay = self.reconnect_min
        self._backoff, self._backoff_until = 0.0, 0.0
        self.state = "streaming"
        await self._stream(ws)

    def _message(self, message_type: str, data: dict | None = None) -> dict:
        self._request_no += 1
        msg = {"apiName": API_NAME, "apiVersion": API_VERSION,
               "requestID": f"vtb-{self._request_no}", "messageType": message_type}
        if data is not None:
            msg["data"] = data
        return msg

    async def _request(self, ws, message_type: str, data: dict, timeout: float) -> dict:
        """Send a request and wait for the answer with its requestID (others are skipped)."""
        msg = self._message(message_type, data)
        await ws.send(json.dumps(msg))
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no answer to {message_type} in {timeout:.0f} s")
            raw = await asyncio.wait_for(ws.recv(), left)
            try:
                answer = json.loads(raw)
            except ValueError:
                continue
            if isinstance(answer, dict) and answer.get("requestID") == msg["requestID"]:
                return answer

    async def _auth(self, ws, token: str) -> bool:
        self.state = "authenticating"
        answer = await self._request(ws, "AuthenticationRequest", {
            "pluginName": self.plugin_name, "pluginDeveloper": self.plugin_developer,
            "authenticationToken": token}, self.request_timeout)
        data = answer.get("data", {}) or {}
        if answer.get("messageType") != "AuthenticationResponse":
            # e.g. APIError 1 (plugin API switched off): not a verdict on the token, keep it
            raise _AuthError(f"authentication failed: {answer.get('messageType')} "
                             f"{data.get('errorID', '')} {data.get('message', '')}")
        ok = bool(data.get("authenticated", False))
        self._count("auth_ok" if ok else "auth_rejected")
        if not ok:
            self._error(f"authentication rejected: {data.get('reason', '')}")
        return ok

    async def _authenticate(self, ws):
        token = self._load_token()
        if token and await self._auth(ws, token):
            return
        if token:
            self._forget_token()   # revoked: ask for a new one
        self.state = "requesting_token"
        self._count("token_requests")
        self.log.info("VTube Studio: asking for a plugin token; click Allow in VTube Studio")
        answer = await self._request(ws, "AuthenticationTokenRequest", {
            "pluginName": self.plugin_name, "pluginDeveloper": self.plugin_developer},
            self.token_timeout)
        data = answer.get("data", {}) or {}
        if answer.get("messageType") == "APIError":
            if data.get("errorID") == ERROR_TOKEN_DENIED:
                raise _TokenDenied(f"plugin access denied in VTube Studio: {data.get('message', '')}")
            raise _AuthError(f"token request failed: {data.get('errorID')} {data.get('message', '')}")
        token = data.get("authenticationToken")
        if not token:
            raise _AuthError("token answer without a token")
        self._save_token(token)
        if not await self._auth(ws, token):
            raise _AuthError("VTube Studio rejected a fresh token")

    def _injection(self, frame: AvatarFrame) -> dict:
        values = vts_parameters(frame, self.eye_range_deg)
        for name, v in frame.blendshapes.items():
            if custom_parameter(name) in self._created:
                values[custom_parameter(name)] = _clamp(_finite(v), 0.0, 1.0)
        return self._message("InjectParameterDataRequest", {
            "faceFound": bool(frame.tracked), "mode": "set",
            "parameterValues": [{"id": k, "value": round(v, 6)} for k, v in values.items()]})

    async def _read_answers(self, ws):
        async for raw in ws:
            try:
                answer = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(answer, dict):
                continue
            kind = answer.get("messageType")
            created = self._creating.pop(answer.get("requestID"), None)
            if created is not None:          # the answer to a ParameterCreationRequest
                if kind == "ParameterCreationResponse":
                    self._created.add(created)
                    self._count("parameters_created")
                else:
                    self._refused.add(created)
                    self._count("parameter_errors")
                    data = answer.get("data", {}) or {}
                    self._error(f"VTube Studio refused parameter {created}: {data.get('errorID')} {data.get('message', '')}")
                continue
            if kind == "InjectParameterDataResponse":
                self._count("injection_ok")
                self._backoff = 0.0
            elif kind == "APIError":
                self._count("api_errors")
                data = answer.get("data", {}) or {}
                if data.get("errorID") == ERROR_REQUIRES_AUTH:
                    self._error(f"APIError {data.get('errorID')}: {data.get('message', '')}")
                    raise _AuthError("session no longer authenticated")
                self._injection_failed(data)

    def _injection_failed(self, data: dict):
        """An injection was refused (454: a parameter is controlled by another plugin, ...):
        pause, doubling the pause while the errors go on."""
        now = asyncio.get_running_loop().time()
        if now < self._backoff_until:
            return                       # an injection sent before this pause began
        self._backoff = (self.error_backoff_min if self._backoff <= 0
                         else min(self._backoff * 2.0, self.error_backoff_max))
        self._backoff_until = now + self._backoff
        self._count("backoffs")
        self._error(f"APIError {data.get('errorID')}: {data.get('message', '')}; "
                    f"not injecting for {self._backoff:g} s")

    async def _send_injections(self, ws):
        loop = asyncio.get_running_loop()
        while True:
            pause = self._backoff_until - loop.time()
            if pause > 0:                # after an injection error: new frames wait
                await asyncio.sleep(pause)
                continue
            with self._lock:
                frame, seq = self._frame, self._frame_seq
            self._wake.clear()
            if frame is not None and frame.tracked:
                await self._create_parameters(ws, frame)
                await ws.send(json.dumps(self._injection(frame)))
                with self._lock:
                    self._sent_seq = seq
                    self._c["injections"] += 1
                timeout = self.resend_interval
            else:                        # nothing yet, or the face is lost: VTS takes over
                if frame is not None:
                    with self._lock:
                        if self._sent_seq != seq:
                            self._sent_seq = seq
                            self._c["untracked"] += 1
                timeout = None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _create_parameters(self, ws, frame: AvatarFrame):
        """Ask VTS once per connection for the custom parameters of the frame's blendshapes
        (their answers are read by _read_answers)."""
        pending = set(self._creating.values())
        for name in frame.blendshapes:
            param = custom_parameter(name)
            if param in self._created or param in pending or param in self._refused:
                continue
            msg = self._message("ParameterCreationRequest", {
                "parameterName": param, "explanation": f"vtb: ARKit blendshape {name}, 0..1",
                "min": 0, "max": 1, "defaultValue": 0})
            self._creating[msg["requestID"]] = param
            pending.add(param)
            await ws.send(json.dumps(msg))

    async def _stream(self, ws):
        tasks = [asyncio.create_task(self._read_answers(ws)),
                 asyncio.create_task(self._send_injections(ws))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()   # raises ConnectionClosed, _AuthError, ...
            raise ConnectionError("connection closed by VTube Studio")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
