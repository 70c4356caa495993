"""`./vtb run`: the graph of config/vtb.yaml, every node in one process.

The nodes are the same classes their executables run, made with the parameters and
remappings graph.resolve() gives the launch file. Inputs that are not ROS topics (the rendered
clip, a webcam, a video, an image folder) are published on the graph's image topic by a source
node, so every input travels the same topics as a camera driver's.

Executor: rclpy's EventsExecutor by default (vtb_common.node_main.make_executor: 27 ms of CPU a
frame against 39 with the SingleThreadedExecutor on the talking-head clip). The nodes' callbacks
are short; the heavy work runs on the detector's own worker thread. With rclpy's
MultiThreadedExecutor the executor threads contend with that worker for the GIL (`./vtb bench
graph --executor multi` measures it).
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from vtb_common.node_main import make_executor
from vtb_common.parameters import ParameterError

from . import graph
from .bag_source import BagSource
from .sources import Source, SourceError

# executable -> the Node class its main() spins (the runner makes the same class)
NODE_CLASSES = {
    "detector_node": "vtb_detector.node:DetectorNode",
    "pose_node": "vtb_pose.node:PoseNode",
    "gaze_node": "vtb_gaze.node:GazeNode",
    "bridge_node": "vtb_bridge.node:BridgeNode",
}


def node_class(executable: str):
    if executable not in NODE_CLASSES:
        raise graph.GraphError(f"the runner has no node class for executable {executable!r} "
                               f"(known: {', '.join(NODE_CLASSES)})")
    module, _, cls = NODE_CLASSES[executable].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_node(spec: graph.NodeSpec) -> Node:
    """The node `spec` describes, as `ros2 run <package> <executable>` with the launch file's
    parameters and remappings would make it."""
    ros_args = ["--ros-args", "-r", f"__node:={spec.name}"]
    for src, dst in spec.remappings:
        ros_args += ["-r", f"{src}:={dst}"]
    overrides = [Parameter(k, value=v) for k, v in spec.parameters.items()]
    try:
        return node_class(spec.executable)(namespace=spec.namespace, parameter_overrides=overrides,
                                           cli_args=ros_args)
    except ParameterError as e:   # the node's name with the reason: ./vtb run says it in one line
        raise ParameterError(f"{spec.name}: {e}") from None


def camera_info_for(frame, stamp, frame_id) -> CameraInfo | None:
    if frame.camera_matrix is None:
        return None     # unknown: vtb_pose assumes focal length = image width and says so
    h, w = frame.rgb.shape[:2]
    k = frame.camera_matrix
    info = CameraInfo(width=w, height=h, distortion_model="plumb_bob", d=[0.0] * 5)
    info.header.stamp, info.header.frame_id = stamp, frame_id
    info.k = [float(v) for v in k.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(k[0, 0]), 0.0, float(k[0, 2]), 0.0, 0.0, float(k[1, 1]), float(k[1, 2]), 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


# The source's thread (decoding a video or a webcam's frames, with the decoder's own threads,
# which inherit it) runs at this nice value: under load the tracking threads come first. With one
# core taken by a busy loop, `./vtb bench cpu --busy-core` held 23.4-24.0 frames/s with 30-46 of
# 750 images dropped at nice 0, 24.1-24.2 (22-26) at 5, 24.8-24.9 (1-4) at 10; the frames still
# went out on time (the source's lateness, run_stats()).
SOURCE_NICE = 10


class SourceNode(Node):
    """Publishes a Source's frames as sensor_msgs/Image (+ CameraInfo when known) from its own
    thread, at the source's rate, stamped with the node's clock. run_stats(): frames published,
    and how late they went out against the source's schedule (ms, p50/p99; decoding that fell
    behind shows here, since a frame is stamped when it goes out)."""

    def __init__(self, source: Source, image_topic: str, namespace: str, loop: bool = False,
                 on_frame=None):
        super().__init__("vtb_source", namespace=namespace)
        from vtb_detector.node import IMAGE_QOS
        self.source, self.loop, self.on_frame = source, loop, on_frame
        self.hand_off = None   # the in-process detector's on_image (GraphRunner.add_source)
        self.image_pub = self.create_publisher(Image, image_topic, IMAGE_QOS)
        self.info_pub = self.create_publisher(CameraInfo, graph.camera_info_next_to(image_topic), IMAGE_QOS)
        self.published, self.error, self.finished = 0, None, threading.Event()
        self.late_ms, self.nice = deque(maxlen=3000), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vtb-source", daemon=True)

    def start(self):
        self._thread.start()

    def run_stats(self) -> dict:
        late = np.array(self.late_ms)
        return {"published": self.published, "nice": self.nice,
                "late_ms_p50": float(np.median(late)) if len(late) else None,
                "late_ms_p99": float(np.percentile(late, 99)) if len(late) else None}

    def _lower_priority(self):
        """This thread (Linux: a thread's own nice value) at SOURCE_NICE; elsewhere left as it is."""
        if not sys.platform.startswith("linux"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SOURCE_NICE)
            self.nice = SOURCE_NICE
        except OSError as e:
            self.get_logger().warning(f"source thread left at its priority: {e}")

    def _run(self):
        from vtb_detector.image_msg import rgb_to_image
        self._lower_priority()
        period = 1.0 / self.source.rate if self.source.rate else 0.0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                # a looping video's first frames after it reopens (about 0.1 s late) are not counted as late
                reopened = True
                for frame in self.source.frames():
                    if self._stop.is_set():
                        return
                    if period:
                        next_at += period
                        self._stop.wait(max(0.0, next_at - time.monotonic()))
                        late = max(0.0, time.monotonic() - next_at) * 1e3
                        reopened = reopened and late > 1.0
                        if not reopened:
                            self.late_ms.append(late)
                    stamp = self.get_clock().now().to_msg()
                    msg = rgb_to_image(Image, frame.rgb)
                    msg.header.stamp, msg.header.frame_id = stamp, graph.CAMERA_FRAME
                    info = camera_info_for(frame, stamp, graph.CAMERA_FRAME)
                    if info is not None:
                        self.info_pub.publish(info)
                    if self.on_frame is not None:
                        self.on_frame(stamp, frame)
                    if self.hand_off is not None:
                        self.hand_off(msg)
                    # handed off in-process, the image goes over DDS only to other subscribers
                    if self.hand_off is None or self.image_pub.get_subscription_count() > 0:
                        self.image_pub.publish(msg)
                    self.published += 1
                if not self.loop:
                    return
        except SourceError as e:
            self.error = str(e)
        finally:
            self.finished.set()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)


class GraphRunner:
    """Every node of the resolved graph in one process, plus an optional source node."""

    def __init__(self, arguments: dict | None = None, executor: str = "events", overrides: dict | None = None,
                 log=print):
        """`overrides`: {node name: {parameter: value}} on top of the graph's (the demo's port)."""
        self.specs = graph.resolve(arguments)
        for spec in self.specs:
            spec.parameters.update((overrides or {}).get(spec.name, {}))
        self.namespace = self.specs[0].namespace if self.specs else "/"
        self.image_topic = graph.resolve_topics(arguments)["image"]
        self.log = log
        if not rclpy.ok():
            # Ctrl-C raises KeyboardInterrupt here instead of rclpy shutting the context down
            # under the source and detector threads: shutdown() stops those first
            rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self.executor = make_executor(executor)
        self.nodes, self.source_node = [], None
        try:
            for spec in self.specs:
                node = make_node(spec)
                self.nodes.append(node)
                self.executor.add_node(node)
        except Exception:
            self.shutdown()
            raise

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.get_name() == name)

    def add_node(self, node: Node):
        self.nodes.append(node)
        self.executor.add_node(node)

    def add_source(self, source: Source, loop: bool = False, on_frame=None) -> SourceNode:
        if isinstance(source, BagSource):   # recorded stamps and /clock: for nodes on use_sim_time
            from .bag_player import BagPlayerNode
            self.source_node = BagPlayerNode(source, self.image_topic, self.namespace,
                                             sum(bool(s.parameters.get("use_sim_time")) for s in self.specs))
        else:
            self.source_node = SourceNode(source, self.image_topic, self.namespace, loop, on_frame)
            # the detector in this process takes the images from the source's thread: no DDS copy
            # of a 2.7 MB frame, no executor wake-up (./vtb bench cpu)
            detector = self._detector_on(self.source_node.image_pub.topic_name)
            if detector is not None and detector.take_images_directly():
                self.source_node.hand_off = detector.on_image
        self.add_node(self.source_node)
        return self.source_node

    def _image_subscribers(self, topic: str) -> int:
        return sum(s.topic_name == topic for n in self.nodes for s in n.subscriptions)

    def _detector_on(self, topic: str):
        from vtb_detector.node import DetectorCore
        return next((n for n in self.nodes if isinstance(n, DetectorCore) and n.sub is not None
                     and n.sub.topic_name == topic), None)

    def wait_for_detector(self, timeout: float = 30.0, stop=None) -> bool:
        """Spin until the source's image publisher has met the detector's subscription, so
        the first frames are not lost to discovery."""
        deadline = time.monotonic() + timeout
        pub = self.source_node.image_pub
        # handed off to the detector in-process: wait for the other subscriptions in this
        # process (the recorder's) to meet the publisher, none for the detector
        wanted = self._image_subscribers(pub.topic_name) if getattr(self.source_node, "hand_off", None) else 1
        while pub.get_subscription_count() < wanted:
            if time.monotonic() > deadline or (stop is not None and stop.requested):
                return False
            self.executor.spin_once(timeout_sec=0.05)
        return True

    def spin(self, duration: float | None = None, tail: float = 1.0, idle=None, stop=None) -> int:
        """Spin until Ctrl-C, `duration` seconds, or `tail` seconds after a finite source ended.
        `idle` is called between callbacks (the demo's live table). `stop`: a
        vtb_common.node_main.StopSignals, whose signals then end the loop (exit 0) instead of
        raising inside rclpy's callbacks. Returns an exit code."""
        if stop is not None:
            stop.spinning = True
        if self.source_node is not None:
            if not self.wait_for_detector(stop=stop):
                if stop is not None and stop.requested:
                    return 0
                self.log("vtb run: the detector did not appear on the graph")
                return 1
            self.source_node.start()
        t0, ended_at = time.monotonic(), None
        while rclpy.ok() and not (stop is not None and stop.requested):
            self.executor.spin_once(timeout_sec=0.05)
            if idle is not None:
                idle()
            now = time.monotonic()
            if duration is not None and now - t0 >= duration:
                break
            if self.source_node is not None and self.source_node.finished.is_set():
                if self.source_node.error:
                    self.log(f"vtb run: {self.source_node.error}")
                    return 1
                ended_at = ended_at or now
                if now - ended_at >= tail:
                    break
        return 0

    def shutdown(self):
        if self.source_node is not None:
            self.source_node.stop()
        for node in reversed(self.nodes):
            self.executor.remove_node(node)
            node.destroy_node()
        self.nodes = []
        self.executor.shutdown()
        rclpy.try_shutdown()


def graph_topics(nodes, include_images: bool) -> list:
    """(topic, message class, QoS) of everything the nodes publish, for recording, with each
    publisher's own QoS (a reliable subscription gets nothing from a best-effort publisher);
    the images only when asked (a 640x480 stream is 27 MB/s)."""
    found = {}
    for node in nodes:
        for pub in node.publishers:
            if pub.topic_name in ("/rosout", "/parameter_events"):
                continue
            if not include_images and pub.msg_type is Image:
                continue
            found[pub.topic_name] = (pub.topic_name, pub.msg_type, pub.qos_profile)
    return [found[t] for t in sorted(found)]


def stop_signals():
    """SIGINT (Ctrl-C) and SIGTERM (docker stop, a supervisor, ros2 launch after SIGINT) stop
    alike: the source and detector threads first, the bag closed with its metadata, exit 0
    (vtb_common.node_main.StopSignals: while spinning, a signal only ends the loop). None off
    the main thread, where signals cannot be handled."""
    import threading

    from vtb_common.node_main import StopSignals
    if threading.current_thread() is threading.main_thread():
        return StopSignals().install()
    return None


def run(arguments: dict, source: Source | None = None, loop: bool = False, executor: str = "events",
        record: str | None = None, record_images: bool = False, duration: float | None = None,
        stats_every: float = 2.0, log=print, stats_json: str | None = None) -> int:
    """`./vtb run`: start the graph, feed it, print a latency table every `stats_every` seconds,
    stop on Ctrl-C, after `duration`, or when a finite source has played. stats_json: also write
    the final table as JSON there, with this process's CPU seconds while the graph ran (the
    models loaded before; `./vtb bench cpu` reads it)."""
    from .monitor import GraphMonitor
    from .recorder import check_target
    if record:
        check_target(record)  # before the models load: a bad path fails at once
    stop = stop_signals()
    runner = GraphRunner(arguments, executor=executor, log=log)
    recorder = None
    try:
        # on the graph's clock: latencies and the recorder's receive times in bag time on a replay
        sim = any(s.parameters.get("use_sim_time") for s in runner.specs)
        monitor = GraphMonitor(runner.namespace, parameter_overrides=[Parameter("use_sim_time", value=sim)])
        runner.add_node(monitor)
        if source is not None:
            runner.add_source(source, loop=loop)
            speed = f" at {source.rate:g}x the recorded speed, /clock from the bag" if isinstance(source, BagSource) \
                else f" at {source.rate:g} fps" if source.rate else ""
            log(f"vtb run: {source.name} -> {runner.image_topic}{speed}" + (", looping" if loop else ""))
        else:
            log(f"vtb run: waiting for images on {runner.image_topic}")
        log("vtb run: nodes " + ", ".join(f"{s.namespace.rstrip('/')}/{s.name}" for s in runner.specs)
            + f" in one process ({executor}-threaded executor); Ctrl-C stops")
        if record:
            from .recorder import BagRecorder
            recorder = BagRecorder(monitor, record, graph_topics(runner.nodes, record_images))
            log(f"vtb run: recording {len(recorder.counts)} topics into {record} (rosbag2, mcap)")
        cpu0, wall0 = time.process_time(), time.monotonic()
        code = runner.spin(duration=duration, idle=monitor.table_every(stats_every, log), stop=stop)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        if stop is not None and stop.requested:
            log("vtb run: stopped")
            stop.ignore()
        log(monitor.table())
        if stats_json:
            import json
            Path(stats_json).write_text(json.dumps(
                {"topics": monitor.summary(), "cpu_s": cpu_s, "wall_s": wall_s,
                 "avatar_frames": monitor.counts["avatar_parameters"],
                 # what the nodes did with their inputs (detector: dropped images; bridge: late parts)
                 "nodes": {n.get_name(): n.run_stats() for n in runner.nodes if hasattr(n, "run_stats")},
                 "images": monitor.counts.get("faces", 0)}, indent=2) + "\n")
        return code
    except KeyboardInterrupt:
        log("vtb run: stopped")
        return 0
    finally:
        if stop is not None:
            stop.ignore()    # a second signal must not cut the clean-up short
        if recorder is not None:
            recorder.close()
            log(f"vtb run: recorded {sum(recorder.counts.values())} messages into {record}")
        runner.shutdown()
        if stop is not None:
            stop.restore()
