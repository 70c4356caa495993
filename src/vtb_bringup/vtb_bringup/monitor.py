"""A node that watches the graph's outputs: per-stage latency, frame rate, and the messages.

Every vtb message carries its image's stamp, so the time from the image to each output is its
arrival time minus that stamp (one clock: the graph and the source run on one machine).
A stage's own time is the difference between consecutive stages' arrivals for the same image.
"""
from __future__ import annotations

import time
from collections import defaultdict, deque

import numpy as np
from rclpy.node import Node
from vtb_msgs.msg import AvatarParameters, FaceArray, FaceStateArray, GazeArray, HeadPoseArray

# (topic, type, the node whose output it is): the order images go through the graph
STAGES = [
    ("faces", FaceArray, "detector"),
    ("head_poses", HeadPoseArray, "pose"),
    ("gaze", GazeArray, "gaze"),
    ("face_state", FaceStateArray, "gaze"),
    ("avatar_parameters", AvatarParameters, "bridge"),
]
PREVIOUS = {topic: STAGES[i - 1][0] if i else None for i, (topic, _, _) in enumerate(STAGES)}


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time as one integer: the key that matches an image to its outputs."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class GraphMonitor(Node):
    """Statistics over a bounded window. Messages are kept only when asked: `keep_messages` (a
    predicate on the image stamp, or True for all) and `keep_avatar_rows` (a callable saying
    whether to keep this AvatarParameters, e.g. during the demo's first pass). Nothing grows
    with the run's length otherwise (./vtb run grew 3.7 MB a minute keeping every message)."""

    def __init__(self, namespace: str, keep_messages=False, window: int = 300, keep_avatar_rows=None,
                 **node_kwargs):
        super().__init__("vtb_monitor", namespace=namespace, **node_kwargs)
        self.keep_messages = (lambda key: True) if keep_messages is True else (keep_messages or None)
        self.keep_avatar_rows = keep_avatar_rows
        self.latency = {t: deque(maxlen=window) for t, _, _ in STAGES}    # image -> topic, ms
        self.stage = {t: deque(maxlen=window) for t, _, _ in STAGES}      # previous topic -> topic, ms
        self.arrivals = defaultdict(dict)                                  # stamp -> topic -> ns
        self.counts = {t: 0 for t, _, _ in STAGES}
        self.messages = defaultdict(dict)                                  # stamp -> topic -> msg
        self.avatar_rows = []                                              # AvatarParameters kept (easing too)
        self._rate_marks = deque(maxlen=window)                            # avatar_parameters arrivals
        for topic, msg_type, _ in STAGES:
            self.create_subscription(msg_type, topic, lambda m, t=topic: self.on_message(t, m), 10)

    def on_message(self, topic: str, msg):
        now = self.get_clock().now().nanoseconds
        key = stamp_ns(msg.header.stamp)
        if topic == "avatar_parameters" and self.keep_avatar_rows is not None and self.keep_avatar_rows():
            self.avatar_rows.append(msg)     # for the demo's CSV
        if topic != "faces" and key not in self.arrivals:
            return    # not from an image seen here (the bridge easing to neutral when a face is lost)
        self.counts[topic] += 1
        self.latency[topic].append((now - key) / 1e6)
        arrived = self.arrivals[key]
        arrived[topic] = now
        previous = PREVIOUS[topic]
        if previous is None:
            self.stage[topic].append((now - key) / 1e6)
        elif previous in arrived:
            self.stage[topic].append((now - arrived[previous]) / 1e6)
        if self.keep_messages is not None and self.keep_messages(key):
            self.messages[key][topic] = msg
        if topic == "avatar_parameters":
            self._rate_marks.append(time.monotonic())
        while len(self.arrivals) > 600:            # stamps of long ago: their outputs are done
            self.arrivals.pop(next(iter(self.arrivals)))

    def table_every(self, seconds: float, log, extra=lambda: ""):
        """A callable for GraphRunner.spin's `idle`: logs table(extra()) every `seconds` (0: never)."""
        next_at = time.monotonic() + seconds

        def idle():
            nonlocal next_at
            if seconds and time.monotonic() >= next_at:
                next_at += seconds
                log(self.table(extra()))
        return idle

    def output_fps(self) -> float:
        marks = [m for m in self._rate_marks if m > time.monotonic() - 2.0]
        return (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 2 else 0.0

    def summary(self) -> dict:
        out = {}
        for topic, _, node in STAGES:
            lat, st = np.array(self.latency[topic]), np.array(self.stage[topic])
            out[topic] = {"node": node, "count": self.counts[topic],
                          "stage_ms_p50": float(np.median(st)) if len(st) else None,
                          "stage_ms_p99": float(np.percentile(st, 99)) if len(st) else None,
                          "from_image_ms_p50": float(np.median(lat)) if len(lat) else None,
                          "from_image_ms_p99": float(np.percentile(lat, 99)) if len(lat) else None}
        return out

    def table(self, extra: str = "") -> str:
        fmt = lambda v: f"{v:7.1f}" if v is not None else "      -"   # noqa: E731
        lines = [f"{'topic':18} {'node':9} {'msgs':>5} {'stage ms':>8} {'image->topic ms p50':>20} {'p99':>7}"]
        for topic, row in self.summary().items():
            lines.append(f"{topic:18} {row['node']:9} {row['count']:5d} {fmt(row['stage_ms_p50']):>8} "
                         f"{fmt(row['from_image_ms_p50']):>20} {fmt(row['from_image_ms_p99'])}")
        lines.append(f"end to end: {self.output_fps():.1f} avatar frames/s{extra}")
        return "\n".join(lines)
