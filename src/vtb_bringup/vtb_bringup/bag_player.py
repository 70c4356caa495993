"""The node that plays a bag (bag_source.BagSource) into the graph, as `ros2 bag play --clock`
would: each recorded image (and camera_info) on the graph's input topics with its original
header, and /clock at the recorded times, at the recorded speed times the source's rate.

The graph's nodes run with use_sim_time, so their clocks (diagnostics' stamps, the bridge's
easing to neutral, the recorder's receive times) follow /clock, and every output keeps its
image's stamp: a replay gives the recorded stamps back, never the wall clock's. When the bag
ends /clock stops there, as with ros2 bag play.
"""
from __future__ import annotations

import threading
import time

from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from . import graph
from .bag_source import BagSource

# /clock between messages too, as ros2 bag play --clock does (40 Hz by default), so sim-time
# timers run in a bag's gaps; 100 Hz cost 9 % of a core more than 1 Hz in the one-process graph
# (each node's TimeSource gets every /clock), 40 Hz 2.5 %
CLOCK_HZ = 40.0


class BagPlayerNode(Node):
    """Same face as runner.SourceNode: image_pub, start(), stop(), finished, error, published."""

    def __init__(self, source: BagSource, image_topic: str, namespace: str, clock_subscribers: int = 0):
        super().__init__("vtb_bag_player", namespace=namespace)
        from vtb_detector.node import IMAGE_QOS
        self.source, self.clock_subscribers = source, clock_subscribers
        self.image_pub = self.create_publisher(Image, image_topic, IMAGE_QOS)
        self.info_pub = self.create_publisher(CameraInfo, graph.camera_info_next_to(image_topic), IMAGE_QOS)
        # reliable, as ros2 bag play's; rclpy's TimeSource subscribes best effort, depth 1
        self.clock_pub = self.create_publisher(Clock, "/clock", QoSProfile(depth=10))
        self.published, self.error, self.finished = 0, None, threading.Event()
        self._last_clock = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vtb-bag-player", daemon=True)

    def start(self):
        self._thread.start()

    def _publish_clock(self, ns: int):
        if ns > self._last_clock:      # never backwards
            self._last_clock = ns
            self.clock_pub.publish(Clock(clock=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)))

    def _run(self):
        rate = self.source.rate
        try:
            # every sim-time node hears /clock before the first image
            deadline = time.monotonic() + 5.0
            while self.clock_pub.get_subscription_count() < self.clock_subscribers and time.monotonic() < deadline:
                self._stop.wait(0.02)
            t0 = w0 = None
            for m in self.source.messages():
                if t0 is None:
                    t0, w0 = m.time_ns, time.monotonic()
                due = w0 + (m.time_ns - t0) / 1e9 / rate
                while (left := due - time.monotonic()) > 0:
                    if self._stop.wait(min(left, 1.0 / CLOCK_HZ)):
                        return
                    self._publish_clock(min(m.time_ns, t0 + int((time.monotonic() - w0) * rate * 1e9)))
                if self._stop.is_set():
                    return
                self._publish_clock(m.time_ns)
                if m.kind == "image":
                    self.image_pub.publish(m.data)   # CDR as recorded: header and pixels unchanged
                    self.published += 1
                else:
                    self.info_pub.publish(m.data)
        except Exception as e:  # a bag cut short or corrupt mid-file: said once, the run ends with 1
            self.error = f"{self.source.name}: stopped after {self.published} images: {e}"
        finally:
            self.finished.set()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
