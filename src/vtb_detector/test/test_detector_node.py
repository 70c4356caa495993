"""The detector node in its own process: 478 landmarks for a real image, malformed images
skipped (each counted and warned about) while the node keeps running, diagnostics, the debug
image and compressed input."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image
from vtb_msgs.msg import Face, FaceArray

from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import IMAGE_QOS, PARAMETERS

REFERENCE = json.loads((Path(__file__).parent / "data" / "astronaut_mediapipe_478.json").read_text())


def test_node_executable_is_on_the_graph_with_described_parameters(check_node_executable):
    check_node_executable("vtb_detector", "detector_node", "vtb_detector", PARAMETERS, ("model", "full"))


class Graph:
    """The test's side of the node: publishers, and what came back."""

    def __init__(self, ros, image_type=Image, topic="/vtbtest/image"):
        self.ros = ros
        self.faces, self.debug, self.diagnostics = [], [], []
        ros.node.create_subscription(FaceArray, "/vtbtest/faces", self.faces.append, 10)
        ros.node.create_subscription(Image, "/vtbtest/debug_image", self.debug.append, IMAGE_QOS)
        ros.node.create_subscription(
            DiagnosticArray, "/diagnostics",
            lambda m: self.diagnostics.extend(s for s in m.status if s.name.startswith("vtb_detector")), 10)
        self.pub = ros.node.create_publisher(image_type, topic, IMAGE_QOS)
        ros.spin_until(lambda: self.pub.get_subscription_count() > 0 and ros.node.count_publishers("/vtbtest/faces") > 0,
                       timeout=30, what="the detector's subscription and publisher")

    def counts(self):
        if not self.diagnostics:
            return {}
        return {kv.key: kv.value for kv in self.diagnostics[-1].values}

    def send_until(self, msg, done, what, tries=40):
        """Images are best effort: publish until `done()`."""
        for _ in range(tries):
            self.pub.publish(msg)
            self.ros.spin_for(0.25)
            if done():
                return
        pytest.fail(f"no {what} after {tries} images")


def malformed_images():
    wrong_encoding = rgb_to_image(Image, np.zeros((8, 8, 3), np.uint8))
    wrong_encoding.encoding = "yuv422_yuy2"
    short_data = rgb_to_image(Image, np.zeros((64, 64, 3), np.uint8))
    short_data.data = bytes(short_data.data)[:1000]
    zero_sized = Image(encoding="rgb8")
    return {"unsupported encoding": wrong_encoding, "shorter than height x step": short_data,
            "zero-sized": zero_sized}


def test_landmarks_for_a_real_image_after_malformed_ones(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image", "-r", "faces:=/vtbtest/faces",
                      "-r", "debug_image:=/vtbtest/debug_image", "-p", "publish_debug_image:=true")
    g = Graph(ros)

    for n, (reason, bad) in enumerate(malformed_images().items(), start=1):
        g.send_until(bad, lambda: int(g.counts().get("rejected", 0)) >= n, f"rejection of the {reason} image")
        assert proc.alive(), proc.output()
    assert "skipping image" in proc.output()   # throttled: at least the first is logged
    assert g.faces == [], "a malformed image must not produce output"

    good = rgb_to_image(Image, astronaut_rgb)
    good.header.stamp.sec, good.header.stamp.nanosec, good.header.frame_id = 42, 7, "cam_optical"
    g.send_until(good, lambda: g.faces and g.debug, "FaceArray and debug image for a valid image")
    msg = g.faces[0]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (42, 7, "cam_optical")
    assert (msg.image_width, msg.image_height) == (512, 512)
    assert len(msg.faces) == 1
    face = msg.faces[0]
    assert face.landmark_scheme == Face.SCHEME_MEDIAPIPE_478 and face.landmark_confidence > 0.9
    lm = np.asarray(face.landmarks, np.float32).reshape(-1, 2)
    assert lm.shape == (478, 2) and len(face.landmarks_z) == 478 and len(face.keypoints) == 12
    err = np.linalg.norm(lm - np.asarray(REFERENCE["landmarks_478"], np.float32), axis=1)
    assert err.mean() < 2.0, f"mean distance to MediaPipe's landmarks {err.mean():.2f} px"

    debug = g.debug[0]
    drawn = np.frombuffer(debug.data, np.uint8).reshape(512, 512, 3)
    assert (debug.width, debug.height) == (512, 512)
    assert (drawn != astronaut_rgb).any(axis=2).sum() > 1000, "the debug image has the faces drawn"

    g.ros.spin_until(lambda: int(g.counts().get("processed", 0)) >= 1, what="diagnostics counting the frame")
    c = g.counts()
    assert int(c["rejected"]) >= 3 and float(c["processing_ms_median"]) > 0 and "input_rate_hz" in c
    assert proc.alive()


def test_compressed_input(ros, start_node, astronaut_rgb):
    # the image topic remapped, as a camera driver's: compressed input follows it to
    # <image topic>/compressed, image_transport's name (before: /image/compressed, unremapped)
    start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image",
               "-r", "faces:=/vtbtest/faces", "-p", "input_compressed:=true")
    g = Graph(ros, CompressedImage, "/vtbtest/image/compressed")
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
    g.send_until(msg, lambda: g.faces, "FaceArray for a JPEG image")
    assert len(g.faces[0].faces) == 1
    face = g.faces[0].faces[0]
    assert abs(face.bbox.x + face.bbox.width / 2 - 225) < 15
    g.send_until(CompressedImage(format="jpeg", data=b"not a jpeg"), lambda: int(g.counts().get("rejected", 0)) >= 1,
                 "rejection of undecodable data")


def test_the_debug_image_reaches_rvizs_reliable_subscription(ros, start_node, astronaut_rgb):
    """RViz's Image display and rqt_image_view subscribe reliable: the debug image must reach
    them (a best-effort publisher never does), and best-effort subscribers too (Graph's)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image", "-r", "faces:=/vtbtest/faces",
               "-r", "debug_image:=/vtbtest/debug_image", "-p", "publish_debug_image:=true")
    reliable = []
    ros.node.create_subscription(Image, "/vtbtest/debug_image", reliable.append,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    g = Graph(ros)
    g.send_until(rgb_to_image(Image, astronaut_rgb), lambda: reliable and g.debug, "debug images, both kinds")
    assert (reliable[0].width, reliable[0].height) == (512, 512)


def test_a_corrupt_model_stops_the_node_with_its_message_not_a_traceback(tmp_path):
    import os
    import shutil
    import subprocess
    from pathlib import Path

    from ament_index_python.packages import get_package_prefix
    from vtb_detector import models
    from vtb_detector.landmarks import DEFAULT_LANDMARK_MODEL, LANDMARK_MODELS
    broken = tmp_path / "models"
    shutil.copytree(models.models_dir(), broken)
    # the default landmark model's file: the node loads it at start
    model = models.model_path(LANDMARK_MODELS[DEFAULT_LANDMARK_MODEL][0], "tflite")
    (broken / model.relative_to(models.models_dir())).write_bytes(b"not a model")
    exe = Path(get_package_prefix("vtb_detector")) / "lib" / "vtb_detector" / "detector_node"
    r = subprocess.run([str(exe)], env=dict(os.environ, VTB_MODELS_DIR=str(broken)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{model.name} is corrupt" in r.stderr and "./vtb models fetch" in r.stderr
    assert "Traceback" not in r.stderr
