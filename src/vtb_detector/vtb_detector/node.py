"""vtb_detector node: sensor_msgs/Image in, vtb_msgs/FaceArray out.

A thin adapter around the rclpy-free core (blazeface, tracker, image_msg). Topics, relative
so a namespace or remapping places them:
  image  (sensor_msgs/Image, sensor-data QoS, depth 1: only the newest frame is kept)
  faces  (vtb_msgs/FaceArray, stamped with the image's header)
"""
import time

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, DurabilityPolicy
from sensor_msgs.msg import Image
from vtb_msgs.msg import Face, FaceArray

from .blazeface import BlazeFaceDetector
from .image_msg import ImageError, image_to_rgb
from .tracker import IouTracker

PARAMETERS = [
    ("model", "short", "BlazeFace model: 'short' (faces within about 2 m) or 'full' (far and small faces)"),
    ("score_threshold", -1.0, "minimum detection score, 0..1; negative uses the model's own (0.5 short, 0.6 full)"),
    ("provider", "cpu", "onnxruntime execution provider: 'cpu', 'cuda' or 'tensorrt' (falls back to cpu)"),
    ("threads", 1, "onnxruntime intra-op threads per model"),
]

# Best effort and depth 1: a detector that falls behind drops old frames instead of queueing.
IMAGE_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                       depth=1, durability=DurabilityPolicy.VOLATILE)


class DetectorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_detector", **kwargs)
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        p = {name: self.get_parameter(name).value for name, _, _ in PARAMETERS}
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in p.items()))

        threshold = p["score_threshold"] if p["score_threshold"] >= 0 else None
        self.detector = BlazeFaceDetector(p["model"], threshold, p["provider"], p["threads"],
                                          logger=self.get_logger())
        self.tracker = IouTracker()
        self.frames = 0
        self.last_detect_ms = 0.0
        self.rejected = 0
        self.pub = self.create_publisher(FaceArray, "faces", 10)
        self.sub = self.create_subscription(Image, "image", self.on_image, IMAGE_QOS)

    def on_image(self, msg: Image):
        try:
            rgb = image_to_rgb(msg)
        except ImageError as e:
            self.rejected += 1
            self.get_logger().warning(f"skipping image: {e}", throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        detections = self.detector.detect(rgb)
        ids = self.tracker.update([d.box for d in detections])
        out = FaceArray(header=msg.header, image_width=msg.width, image_height=msg.height)
        for fid, det in zip(ids, detections):
            face = Face(id=fid, score=det.score, landmark_scheme=Face.SCHEME_NONE)
            face.bbox.x, face.bbox.y, face.bbox.width, face.bbox.height = (float(v) for v in det.box)
            face.keypoints = det.keypoints.reshape(-1).tolist()
            out.faces.append(face)
        self.pub.publish(out)
        self.frames += 1
        self.last_detect_ms = 1e3 * (time.perf_counter() - t0)


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = DetectorNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
