"""Socket.IO output: a client to a DeepVTB/OpenVtuber-compatible NodeServer. No rclpy here.

The NodeServer (OpenVtuber's `NodeServer/`, a socket.io server) takes the tracker's results in
namespace `/kizuna`, event `result_data`, and relays them to the Live2D page. vtb sends exactly
`AvatarFrame.result_data()`: the NodeServer's shape
`{"euler": [pitch, yaw, roll] deg, "eye": [theta, phi] rad, "mouth": 0..1, "blink": [left, right]}`
with `params` (Live2D standard names), `face_id` and `stamp` beside it.

`SocketIOOutput.send(frame)` never blocks the caller: it puts the newest frame into a one-slot
buffer (a frame still waiting there is replaced and counted as dropped) and returns. A background
thread with its own asyncio loop owns the connection: it connects, emits whatever is in the slot,
and when the server goes away (restart, crash, not yet started) it reconnects by itself with a
capped backoff; frames sent meanwhile only ever replace the one in the slot.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

import socketio

log = logging.getLogger("vtb_bridge.socketio_output")


class SocketIOOutput:
    """A Socket.IO client that emits AvatarFrames to `url` in `namespace` as `event`.

    Counters (read any time): `sent` (frames emitted), `dropped` (frames replaced in the slot
    before they could be emitted, or discarded while disconnected), `reconnects` (successful
    connections after the first), `connect_failures`. `connected` says whether the namespace is
    connected right now.
    """

    def __init__(self, url: str, namespace: str = "/kizuna", event: str = "result_data",
                 auth=None, reconnect_delay: float = 0.2, reconnect_delay_max: float = 2.0,
                 connect_timeout: float = 2.0, max_age: float = 1.0, transports=("websocket",)):
        self.url = url
        self.namespace = namespace
        self.event = event
        self.auth = auth
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.connect_timeout = connect_timeout
        self.max_age = max_age            # a frame older than this (s) when it could go out is dropped
        self.transports = list(transports)
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.connect_failures = 0
        self._connections = 0
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
                "reconnects": self.reconnects, "connect_failures": self.connect_failures}

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
        while not self._closing:
            sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
            lost = asyncio.Event()

            @sio.on("disconnect", namespace=self.namespace)
            async def _on_disconnect(*_args):
                self._connected = False
                lost.set()

            try:
                await sio.connect(self.url, namespaces=[self.namespace], auth=self.auth,
                                  transports=self.transports, wait_timeout=self.connect_timeout)
            except Exception as e:  # noqa: BLE001 - any failure means: try again later
                self.connect_failures += 1
                if self.connect_failures == 1 or self.connect_failures % 50 == 0:
                    log.warning("cannot connect to %s%s (%s); retrying", self.url, self.namespace, e)
                await self._sleep(delay)
                delay = min(delay * 2, self.reconnect_delay_max)
                await self._disconnect_quietly(sio)
                continue
            delay = self.reconnect_delay
            self._connections += 1
            if self._connections > 1:
                self.reconnects += 1
                log.info("reconnected to %s%s", self.url, self.namespace)
            self._connected = True
            try:
                while not self._closing and not lost.is_set():
                    payload = self._take()
                    if payload is None:
                        self._wake.clear()
                        if self._slot is not None:     # raced with send()
                            continue
                        waiter = asyncio.ensure_future(self._wake.wait())
                        lost_w = asyncio.ensure_future(lost.wait())
                        await asyncio.wait({waiter, lost_w}, return_when=asyncio.FIRST_COMPLETED)
                        waiter.cancel()
                        lost_w.cancel()
                        continue
                    try:
                        await sio.emit(self.event, payload, namespace=self.namespace)
                        self.sent += 1
                    except Exception as e:  # noqa: BLE001 - connection went away mid-emit
                        self.dropped += 1
                        log.info("emit failed (%s); reconnecting", e)
                        break
            finally:
                self._connected = False
                await self._disconnect_quietly(sio)

    async def _sleep(self, seconds):
        # wake early only to close
        end = time.monotonic() + seconds
        while not self._closing and time.monotonic() < end:
            await asyncio.sleep(min(0.05, end - time.monotonic()))

    @staticmethod
    async def _disconnect_quietly(sio):
        try:
            await asyncio.wait_for(sio.disconnect(), 1.0)
        except Exception:  # noqa: BLE001
            pass
