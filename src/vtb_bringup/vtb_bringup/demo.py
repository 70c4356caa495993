"""The demo: a real face, moving, streamed through the graph over DDS.

A source node publishes a clip of a 3D head made from skimage's astronaut photo (vtb_pose's
renderer: turning, nodding, moving) as sensor_msgs/Image on /vtb/image at the camera rate; the
vtb_detector node tracks the face and publishes vtb_msgs/FaceArray (478 landmarks) on
/vtb/faces; a listener prints each frame's face, whether it was tracked or detected, the
perception time and the latency from the image's stamp to the faces' arrival. Later issues
grow this into the full demo (pose, gaze, avatar).
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
from vtb_bridge.node import BridgeNode
from vtb_gaze.node import GazeNode
from vtb_pose.render import HeadRenderer, default_intrinsics, trajectory
from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import IMAGE_QOS, DetectorNode
from vtb_msgs.msg import FaceArray, FaceStateArray, GazeArray, HeadPoseArray
from vtb_pose.frames import ypr_from_rotation
from vtb_pose.node import PoseNode

NAMESPACE = "vtb"


def demo_clip(frames: int, rate: float):
    """(rgb, R, t, K, expression) per frame: the rendered head moving along its trajectory, its
    eyes sweeping left and right, and a 3-frame blink every two seconds."""
    renderer = HeadRenderer()
    k = default_intrinsics(640, 480)
    for i, (rotation, t) in enumerate(trajectory(frames, rate)):
        expression = {"gaze": (15.0 * np.sin(i / rate * 1.3), 6.0 * np.sin(i / rate * 0.9)),
                      "eyelids": 1.0 if i % int(2 * rate) in (40, 41, 42) else 0.0}
        yield renderer.render(rotation, t, k, (640, 480), **expression), rotation, t, k, expression


def run_demo(frames: int = 90, rate: float = 30.0, model: str = "short", timeout: float = 120.0,
             print_every: int = 1, socketio_url: str = "", port: int = 8000) -> int:
    rclpy.init()
    # One executor thread: the detector already processes on its own worker thread. Measured:
    # with rclpy's MultiThreadedExecutor the executor threads fight the worker for the GIL and
    # perception stalled for up to seconds (median 555 ms against 4.1 ms here, 60-frame demo).
    executor = SingleThreadedExecutor()
    nodes = []
    try:
        detector = DetectorNode(namespace=NAMESPACE, parameter_overrides=[Parameter("model", value=model)])
        pose_node = PoseNode(namespace=NAMESPACE)
        gaze_node = GazeNode(namespace=NAMESPACE)
        bridge = BridgeNode(namespace=NAMESPACE, parameter_overrides=[
            Parameter("server_enabled", value=True), Parameter("server_port", value=port),
            Parameter("socketio_url", value=socketio_url)])
        source = Node("vtb_demo_source", namespace=NAMESPACE)
        listener = Node("vtb_demo_listener", namespace=NAMESPACE)
        nodes = [detector, pose_node, gaze_node, bridge, source, listener]
        page = next(o for o in bridge.outputs if hasattr(o, "start"))
        print(f"demo: avatar page at {page.url if hasattr(page, 'url') else 'http://127.0.0.1:%d/' % port}", flush=True)
        for n in nodes:
            executor.add_node(n)

        rendered = list(demo_clip(frames, rate))
        clip = [rgb for rgb, *_ in rendered]
        truth = {}  # image stamp -> true (yaw, pitch, roll) of the rendered head
        image_pub = source.create_publisher(Image, "image", IMAGE_QOS)
        latencies, perception_ms, received, pose_errors = [], [], [], []
        poses = {}

        def on_faces(msg: FaceArray):
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            latency = 1e3 * (source.get_clock().now().nanoseconds * 1e-9 - stamp)
            ms = detector.pipeline.timings.get("total", 0.0)
            latencies.append(latency)
            perception_ms.append(ms)
            received.append(msg)
            if len(received) % print_every:
                return
            faces = "; ".join(
                f"face {f.id} {'tracked ' if f.tracked else 'detected'} box x={f.bbox.x:.0f} y={f.bbox.y:.0f} "
                f"w={f.bbox.width:.0f} h={f.bbox.height:.0f} landmarks={len(f.landmarks) // 2} "
                f"conf={f.landmark_confidence:.2f}" for f in msg.faces) or "no face"
            print(f"frame {len(received):3d}: {faces} | perception {ms:.1f} ms, stamp-to-faces {latency:.1f} ms",
                  flush=True)

        def on_poses(msg: HeadPoseArray):
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            for p in msg.poses:
                if p.valid and key in truth:
                    got, want = (p.yaw_deg, p.pitch_deg, p.roll_deg), truth[key]
                    pose_errors.append([g - w for g, w in zip(got, want)])
                    if len(pose_errors) % print_every == 0:
                        print(f"           head pose yaw {got[0]:+6.1f} pitch {got[1]:+6.1f} roll {got[2]:+6.1f} deg "
                              f"(rendered {want[0]:+6.1f} {want[1]:+6.1f} {want[2]:+6.1f}), "
                              f"{p.pose.position.z:.2f} m away", flush=True)

        eyes = {}  # stamp -> (gaze, state) lines

        def on_gaze(msg: GazeArray):
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            for g in msg.gazes:
                eyes.setdefault(key, {})["gaze"] = (g.combined_yaw_deg, g.combined_pitch_deg)
                show(key)

        def on_state(msg: FaceStateArray):
            key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            for st in msg.states:
                eyes.setdefault(key, {})["state"] = st
                show(key)

        def show(key):
            e = eyes.get(key, {})
            if "gaze" not in e or "state" not in e or key not in frame_of:
                return
            i = frame_of[key]
            st, (gy, gp) = e["state"], e["gaze"]
            want = rendered[i][4]
            if (i + 1) % print_every == 0:
                print(f"           eyes open L {st.eye_left_open:.2f} R {st.eye_right_open:.2f}"
                      f"{'  BLINK' if st.blink else ''} (rendered {'closed' if want['eyelids'] else 'open'}), "
                      f"gaze yaw {gy:+5.1f} pitch {gp:+5.1f} (rendered {want['gaze'][0]:+5.1f} {want['gaze'][1]:+5.1f})",
                      flush=True)
            blinks.append((bool(st.blink), want["eyelids"] > 0.5))
            del eyes[key]

        blinks = []
        frame_of = {}
        listener.create_subscription(GazeArray, "gaze", on_gaze, 10)
        listener.create_subscription(FaceStateArray, "face_state", on_state, 10)
        listener.create_subscription(FaceArray, "faces", on_faces, 10)
        listener.create_subscription(HeadPoseArray, "head_poses", on_poses, 10)

        # wait for discovery both ways before streaming, so no frame is lost to it
        deadline = time.monotonic() + timeout
        while image_pub.get_subscription_count() < 1 or detector.pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                print("demo: the detector did not appear on the graph")
                return 1
            executor.spin_once(timeout_sec=0.05)

        h, w = clip[0].shape[:2]
        print(f"demo: streaming {frames} frames of {w}x{h} at {rate:g} fps on /{NAMESPACE}/image; "
              f"models: {detector.pipeline.mesh.runner.where}")
        sent = 0

        def publish():
            nonlocal sent
            if sent < frames:
                msg = rgb_to_image(Image, clip[sent])
                msg.header.stamp = source.get_clock().now().to_msg()
                truth[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = ypr_from_rotation(rendered[sent][1])
                frame_of[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = sent
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

        if not received:
            print("demo: no FaceArray arrived")
            return 1
        found = sum(1 for m in received if m.faces)
        ids = {f.id for m in received for f in m.faces}
        c = detector.counts
        print(f"demo: {len(received)}/{sent} frames answered ({c['dropped']} dropped as stale), a face in {found}, "
              f"{len(ids)} face id(s); perception median {statistics.median(perception_ms):.2f} ms, "
              f"stamp-to-faces median {statistics.median(latencies):.1f} ms")
        if pose_errors:
            mae = np.abs(np.array(pose_errors)).mean(0)
            print(f"demo: head pose on {len(pose_errors)} frames: mean absolute error yaw {mae[0]:.1f}, "
                  f"pitch {mae[1]:.1f}, roll {mae[2]:.1f} deg against the rendered truth")
        if blinks:
            agree = sum(got == want for got, want in blinks)
            print(f"demo: eyes closed/open agreed with the render on {agree} of {len(blinks)} frames")
        return 0 if found else 1
    finally:
        for n in nodes:
            executor.remove_node(n)
            n.destroy_node()
        rclpy.try_shutdown()
