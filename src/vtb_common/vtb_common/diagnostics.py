"""Per-node health for /diagnostics: are inputs arriving, are outputs produced, how late.

StageHealth is plain Python (no rclpy), fed by the node and asked for a level:
  no input   nothing has arrived yet: OK, "no input yet" (a node may start before its camera);
             inputs had arrived and stopped for input_timeout_s: WARN, "no input for X s"
  stalled    inputs arrive but no output for stall_warn_s: WARN; for stall_error_s: ERROR
  slow       the median latency of the last window_s above latency_warn_s: WARN
  ok         otherwise
DiagnosticsPublisher is the rclpy side (duck-typed on the node, so this module imports no
rclpy): a diagnostic_msgs/DiagnosticArray on /diagnostics once a second, one status per stage,
named "<node name>: <stage name>" as rqt_robot_monitor lists them.

Wiring a node (pose, gaze, bridge) takes five lines:

    from vtb_common.diagnostics import DiagnosticsPublisher, StageHealth
    self.health = StageHealth("head pose")                       # in __init__
    self.diagnostics = DiagnosticsPublisher(self, [self.health], values=lambda: {"faces": str(n)})
    self.health.note_input()                                     # in the input callback
    self.health.note_output(latency_s=time.monotonic() - t_in)   # after publishing its output
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque

# diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


class StageHealth:
    """Counts and times of one stage's inputs and outputs; thread-safe (a subscription callback
    notes inputs, a worker thread outputs, a timer asks for the status). Times are
    time.monotonic() seconds unless given."""

    def __init__(self, name: str, stall_warn_s: float = 2.0, stall_error_s: float = 5.0,
                 latency_warn_s: float = 0.1, input_timeout_s: float = 2.0, window_s: float = 5.0):
        assert 0 < stall_warn_s <= stall_error_s
        self.name = name
        self.stall_warn_s, self.stall_error_s = stall_warn_s, stall_error_s
        self.latency_warn_s, self.input_timeout_s, self.window_s = latency_warn_s, input_timeout_s, window_s
        self.inputs = self.outputs = 0
        self._last_input = self._last_output = None
        self._arriving_since = None   # when inputs started arriving again after a gap
        # bounded: a window's rates and latencies, not the whole run's
        self._input_times, self._outputs = deque(maxlen=1000), deque(maxlen=1000)   # t, (t, latency)
        self._lock = threading.Lock()

    def note_input(self, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        with self._lock:
            if self._last_input is None or t - self._last_input > self.input_timeout_s:
                self._arriving_since = t   # a stall counts from here, not from an output long ago
            self.inputs += 1
            self._last_input = t
            self._input_times.append(t)

    def note_output(self, latency_s: float | None = None, t: float | None = None) -> None:
        t = time.monotonic() if t is None else t
        with self._lock:
            self.outputs += 1
            self._last_output = t
            self._outputs.append((t, latency_s))

    def status(self, now: float | None = None) -> tuple[int, str, dict]:
        """(level, message, values): the level one of OK, WARN, ERROR; values as strings."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent_in = [t for t in self._input_times if now - t <= self.window_s]
            recent_out = [(t, lat) for t, lat in self._outputs if now - t <= self.window_s]
            latencies = [lat for _, lat in recent_out if lat is not None]
            values = {"inputs": str(self.inputs), "outputs": str(self.outputs),
                      "input_rate_hz": f"{len(recent_in) / self.window_s:.1f}",
                      "output_rate_hz": f"{len(recent_out) / self.window_s:.1f}"}
            if latencies:
                values["latency_ms_median"] = f"{1000 * statistics.median(latencies):.1f}"
                values["latency_ms_max"] = f"{1000 * max(latencies):.1f}"
            if self._last_input is None:
                return OK, "no input yet", values
            since_input = now - self._last_input
            values["seconds_since_input"] = f"{since_input:.1f}"
            if self._last_output is not None:
                values["seconds_since_output"] = f"{now - self._last_output:.1f}"
            if since_input > self.input_timeout_s:
                return WARN, f"no input for {since_input:.1f} s", values
            last_output = self._last_output if self._last_output is not None else float("-inf")
            stalled = now - max(last_output, self._arriving_since)
            if stalled > self.stall_error_s:
                return ERROR, f"inputs arrive but no output for {stalled:.1f} s", values
            if stalled > self.stall_warn_s:
                return WARN, f"inputs arrive but no output for {stalled:.1f} s", values
            if latencies and statistics.median(latencies) > self.latency_warn_s:
                return WARN, (f"latency {1000 * statistics.median(latencies):.0f} ms, above "
                              f"{1000 * self.latency_warn_s:.0f} ms"), values
            return OK, "ok", values


class DiagnosticsPublisher:
    """Publishes the stages' status on /diagnostics every `period_s` from the node's timer.
    `values()` returns extra key/values (strings) added to every stage's status; `state()`, when
    it returns (level, message) rather than None, says that instead of the stages' own level and
    message (a lifecycle node that is not active: its state, not "no input")."""

    def __init__(self, node, stages, values=None, hardware_id: str = "vtb", period_s: float = 1.0, state=None):
        from diagnostic_msgs.msg import DiagnosticArray
        self.node, self.stages, self.values, self.hardware_id = node, list(stages), values, hardware_id
        self.state = state
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.timer = node.create_timer(period_s, self.publish)

    def statuses(self):
        from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
        extra = self.values() if self.values else {}
        instead = self.state() if self.state else None
        out = []
        for stage in self.stages:
            level, message, values = stage.status()
            if instead is not None:
                level, message = instead
            out.append(DiagnosticStatus(
                level=bytes([level]), name=f"{self.node.get_name()}: {stage.name}", message=message,
                hardware_id=self.hardware_id,
                values=[KeyValue(key=k, value=str(v)) for k, v in {**values, **extra}.items()]))
        return out

    def publish(self):
        from diagnostic_msgs.msg import DiagnosticArray
        msg = DiagnosticArray(status=self.statuses())
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)
