"""The demo: a real face photo streamed through the graph over DDS.

A source node publishes skimage's astronaut photo as sensor_msgs/Image on /vtb/image; the
vtb_detector node finds the face and publishes vtb_msgs/FaceArray on /vtb/faces; a listener
prints each face box, the detector's time and the latency from the image's stamp to the faces'
arrival. Later issues grow this into the full demo (pose, gaze, avatar).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import IMAGE_QOS, DetectorNode
from vtb_msgs.msg import FaceArray

NAMESPACE = "vtb"


def demo_frame() -> np.ndarray:
    from skimage import data
    return data.astronaut()  # 512x512 RGB, one frontal face


def run_demo(frames: int = 30, rate: float = 15.0, model: str = "short", timeout: float = 60.0) -> int:
    rclpy.init()
    executor = SingleThreadedExecutor()
    nodes = []
    try:
        detector = DetectorNode(namespace=NAMESPACE,
                                parameter_overrides=[Parameter("model", value=model)])
        source = Node("vtb_demo_source", namespace=NAMESPACE)
        listener = Node("vtb_demo_listener", namespace=NAMESPACE)
        nodes = [detector, source, listener]
        for n in nodes:
            executor.add_node(n)

        rgb = demo_frame()
        image_pub = source.create_publisher(Image, "image", IMAGE_QOS)
        latencies, detect_ms, received = [], [], []

        def on_faces(msg: FaceArray):
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            latency = 1e3 * (source.get_clock().now().nanoseconds * 1e-9 - stamp)
            latencies.append(latency)
            detect_ms.append(detector.last_detect_ms)
            received.append(msg)
            boxes = "; ".join(
                f"face {f.id} box x={f.bbox.x:.0f} y={f.bbox.y:.0f} w={f.bbox.width:.0f} "
                f"h={f.bbox.height:.0f} score={f.score:.2f}" for f in msg.faces) or "no face"
            print(f"frame {len(received):3d}: {boxes} | detect {detector.last_detect_ms:.1f} ms, "
                  f"stamp-to-faces {latency:.1f} ms", flush=True)

        listener.create_subscription(FaceArray, "faces", on_faces, 10)

        # wait for discovery both ways before streaming, so no frame is lost to it
        deadline = time.monotonic() + timeout
        while image_pub.get_subscription_count() < 1 or detector.pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                print("demo: the detector did not appear on the graph")
                return 1
            executor.spin_once(timeout_sec=0.05)

        print(f"demo: streaming {frames} frames of {rgb.shape[1]}x{rgb.shape[0]} at {rate:g} fps "
              f"on /{NAMESPACE}/image ({model}-range BlazeFace on {detector.detector.runner.where})")
        sent = 0

        def publish():
            nonlocal sent
            if sent < frames:
                msg = rgb_to_image(Image, rgb)
                msg.header.stamp = source.get_clock().now().to_msg()
                msg.header.frame_id = "camera_optical_frame"
                image_pub.publish(msg)
                sent += 1

        source.create_timer(1.0 / rate, publish)
        # images are best effort (a slow consumer drops frames): stop when all arrived, or a
        # second after the last one was sent
        last_sent_at = None
        while len(received) < frames and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if sent >= frames:
                last_sent_at = last_sent_at or time.monotonic()
                if time.monotonic() - last_sent_at > 1.0:
                    break

        found = sum(1 for m in received if m.faces)
        if not received:
            print("demo: no FaceArray arrived")
            return 1
        print(f"demo: {len(received)}/{sent} frames processed, a face in {found}; "
              f"detect median {statistics.median(detect_ms):.2f} ms, "
              f"stamp-to-faces median {statistics.median(latencies):.1f} ms")
        return 0 if found else 1
    finally:
        for n in nodes:
            executor.remove_node(n)
            n.destroy_node()
        rclpy.try_shutdown()

