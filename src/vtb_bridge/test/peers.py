"""Peers for vtb_bridge's tests (not a test file: loaded with importlib by the tests that use it).

- VMCReceiver: the PyPI package `vmcp` (a VMC protocol implementation: OSC bundles parsed by
  osc4py3, each message turned into vmcp's typed events) receiving on a UDP port;
- FakeVTS: a WebSocket server on 127.0.0.1 answering like VTube Studio's plugin API (VTS itself
  is a Windows/macOS application and cannot run here): the token flow, authentication with a
  token bound to the plugin's name and developer (3 to 32 characters each, as VTS requires),
  InjectParameterDataRequest, optionally an APIError for every injection (e.g. 454: the parameter
  is controlled by another plugin), and the close code each connection ended with.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VMCReceiver:
    """vmcp's receiver on 127.0.0.1:`port` (osc4py3 backend, event-loop mode, run on its own
    thread). `events` are vmcp events (BoneTransformEvent, BlendShapeEvent, ...), in arrival
    order; `messages` counts every OSC message that arrived (any address), so
    `messages - len(events)` is what vmcp could not parse (its constructors raise on a malformed
    message; osc4py3 logs and drops it).

    One per process, kept running: `VMCReceiver.shared()`; `with rx:` starts from empty lists.
    (osc4py3 1.0.3 cannot be started a second time in a process: its terminate leaves the
    "global" dispatcher registered; and vmcp 1.0.6's Receiver.close() changes the dict it
    iterates.)"""

    _shared = None

    @classmethod
    def shared(cls) -> "VMCReceiver":
        if cls._shared is None:
            cls._shared = cls()._start()
        return cls._shared

    def __init__(self):
        self.port = free_udp_port()
        self.events = []
        self.messages = 0
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="vmcp-receiver", daemon=True)

    def _start(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the vmcp receiver did not start")
        if self._error is not None:
            raise self._error
        return self

    def clear(self):
        self.events, self.messages = [], 0

    def __enter__(self):
        self.clear()
        return self

    def __exit__(self, *exc):
        return False

    def _run(self):
        from vmcp.events import (BlendShapeApplyEvent, BlendShapeEvent, BoneTransformEvent,
                                 RelativeTimeEvent, RootTransformEvent, StateEvent)
        from vmcp.facades import on_receive
        from vmcp.osc import OSC
        from vmcp.osc.backend.osc4py3 import as_eventloop
        try:
            osc = OSC(as_eventloop, logger=logging.getLogger("vmcp")).open()
            receiver = osc.create_receiver("127.0.0.1", self.port, "vtb_test").open()
            for event in (BoneTransformEvent, BlendShapeEvent, BlendShapeApplyEvent, StateEvent,
                          RelativeTimeEvent, RootTransformEvent):
                on_receive(receiver, event, lambda e: self.events.append(e))
            receiver.register_handler("*", self._count, osc.backend.ARG_ADDRESS)
        except Exception as e:  # noqa: BLE001 - reported to the test
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        while True:
            osc.run()
            time.sleep(0.002)

    def _count(self, *_args):
        self.messages += 1

    def of(self, kind):
        return [e for e in self.events if type(e).__name__ == kind]


# VTS's default input parameters (the API's list; the iPhone-tracking ones included)
DEFAULT_PARAMETERS = {
    "FacePositionX", "FacePositionY", "FacePositionZ", "FaceAngleX", "FaceAngleY", "FaceAngleZ",
    "MouthSmile", "MouthOpen", "Brows", "TongueOut", "EyeOpenLeft", "EyeOpenRight", "EyeLeftX", "EyeLeftY",
    "EyeRightX", "EyeRightY", "CheekPuff", "FaceAngry", "BrowLeftY", "BrowRightY", "MouthX", "MousePositionX",
    "MousePositionY", "VoiceVolume", "VoiceFrequency", "VoiceVolumePlusMouthOpen", "VoiceFrequencyPlusMouthSmile",
    "MouthPucker", "MouthFunnel", "JawOpen", "MouthPressLipOpen", "MouthRollUpper", "MouthRollLower",
    "MouthShrugUpper", "MouthShrugLower"}


class FakeVTS:
    """A WebSocket server on 127.0.0.1 answering like VTube Studio's plugin API. Tokens it issued
    stay valid across restart() (like VTS's stored plugin list) unless revoked."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.port = 0
        self.valid_tokens = {}           # token -> (pluginName, pluginDeveloper) it was issued to
        self.token_requests = []         # data of each AuthenticationTokenRequest
        self.auth_requests = []          # (token, accepted)
        self.injections = []             # (monotonic time, data)
        self.injection_errors = []       # (monotonic time, errorID) answered to injections
        self.closes = []                 # (close code, reason) each connection ended with
        self.connections = 0
        self.bad_messages = []
        self.api_active = True           # False: every request gets APIError 1, as with the API off
        self.deny_tokens = False         # True: the user clicks Deny (APIError 50)
        self.inject_error = None         # an errorID: every injection is answered with it
        self.custom_parameters = {}      # name -> data of its ParameterCreationRequest
        self.unknown_injected = []       # ids injected that are neither default nor created

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

    def add_token(self, token, name, developer):
        self.valid_tokens[token] = (name, developer)

    def values(self, i=-1) -> dict:
        """{id: value} of injection i."""
        return {p["id"]: p["value"] for p in self.injections[i][1]["parameterValues"]}

    @staticmethod
    def _name_ok(v):
        return isinstance(v, str) and 3 <= len(v) <= 32

    async def _handler(self, ws):
        from websockets.exceptions import ConnectionClosed
        self.connections += 1
        authenticated = False
        try:
            async for raw in ws:
                reply, authenticated = self._answer(json.loads(raw), authenticated)
                await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            self.closes.append((ws.close_code, ws.close_reason))

    def _answer(self, msg, authenticated):
        """(the reply, whether the session is authenticated after it)"""
        if msg.get("apiName") != "VTubeStudioPublicAPI" or msg.get("apiVersion") != "1.0" \
                or "requestID" not in msg:
            self.bad_messages.append(msg)
        kind, data = msg.get("messageType"), msg.get("data") or {}
        reply = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0",
                 "timestamp": int(time.time() * 1000), "requestID": msg.get("requestID")}
        plugin = (data.get("pluginName"), data.get("pluginDeveloper"))
        if not self.api_active:
            reply.update(messageType="APIError", data={"errorID": 1, "message": "API access deactivated."})
        elif kind in ("AuthenticationTokenRequest", "AuthenticationRequest") \
                and not all(self._name_ok(v) for v in plugin):
            reply.update(messageType="APIError", data={
                "errorID": 51, "message": "Plugin name and developer must be 3 to 32 characters long."})
        elif kind == "AuthenticationTokenRequest" and self.deny_tokens:
            self.token_requests.append(data)
            reply.update(messageType="APIError", data={
                "errorID": 50, "message": "User has denied API access for your plugin."})
        elif kind == "AuthenticationTokenRequest":
            self.token_requests.append(data)
            token = f"token-{len(self.token_requests)}"
            self.valid_tokens[token] = plugin
            reply.update(messageType="AuthenticationTokenResponse", data={"authenticationToken": token})
        elif kind == "AuthenticationRequest":
            token = data.get("authenticationToken")
            ok = self.valid_tokens.get(token) == plugin
            self.auth_requests.append((token, ok))
            authenticated = ok
            reply.update(messageType="AuthenticationResponse", data={
                "authenticated": ok, "reason": "Token valid." if ok else "Token invalid."})
        elif kind == "ParameterCreationRequest":
            name = data.get("parameterName")
            if not authenticated:
                reply.update(messageType="APIError", data={"errorID": 8, "message": "Requires authentication."})
            elif not (isinstance(name, str) and 4 <= len(name) <= 32 and name.isalnum()) or name in DEFAULT_PARAMETERS:
                reply.update(messageType="APIError", data={"errorID": 352, "message": "Invalid parameter name."})
            elif not data.get("min", 0) < data.get("max", 0) <= 1000000 or \
                    not data.get("min") <= data.get("defaultValue", 0) <= data.get("max"):
                reply.update(messageType="APIError", data={"errorID": 353, "message": "Invalid min/max/default."})
            else:
                self.custom_parameters[name] = data
                reply.update(messageType="ParameterCreationResponse", data={"parameterName": name})
        elif kind == "InjectParameterDataRequest":
            if not authenticated:
                reply.update(messageType="APIError", data={"errorID": 8, "message": "Requires authentication."})
            elif self.inject_error is not None:
                self.injection_errors.append((time.monotonic(), self.inject_error))
                reply.update(messageType="APIError", data={
                    "errorID": self.inject_error,
                    "message": "Parameter FaceAngleX is currently controlled by another plugin."})
            elif unknown := [p["id"] for p in data.get("parameterValues", [])
                             if p["id"] not in DEFAULT_PARAMETERS and p["id"] not in self.custom_parameters]:
                self.unknown_injected += unknown
                reply.update(messageType="APIError", data={"errorID": 453, "message": f"Parameter {unknown[0]} not found."})
            else:
                self.injections.append((time.monotonic(), data))
                reply.update(messageType="InjectParameterDataResponse", data={})
        else:
            reply.update(messageType="APIError", data={"errorID": 7, "message": "unknown"})
        return reply, authenticated
