"""The detector's parameters over its real parameter services, from this process (as `ros2 param
set` does): every one is live or read-only; live ones change the output at once (the debug image
stops and comes back, a score threshold no face reaches empties the FaceArray, refine_iris
switches 478 and 468 landmarks); bad values are refused with a reason and the node keeps working."""
from sensor_msgs.msg import Image
from vtb_msgs.msg import Face

from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import PARAMETERS

# a valid set for every live parameter (model options rebuild the pipeline)
LIVE_VALUES = {"model": "full", "detector_scale": 0.5, "drop_levels": "8", "anchor_stride": 2,
               "score_threshold": 0.6, "max_faces": 2, "redetect_every": 10, "presence_threshold": 0.3,
               "keep_id_frames": 5, "redetect_threshold": 0.7, "landmark_model": "face_mesh",
               "mirror_landmarks": True, "refine_iris": False, "backend": "litert", "provider": "cpu", "threads": 2,
               "publish_debug_image": True, "max_pixels": 1920 * 1080}
BAD_VALUES = [("presence_threshold", -0.5), ("redetect_threshold", 1.5), ("max_faces", 0), ("threads", 0),
              ("model", "nope"), ("drop_levels", "7"), ("backend", "tpu"), ("detector_scale", -1.0),
              ("score_threshold", "high"), ("max_faces", 2.5), ("publish_debug_image", 1),
              ("max_pixels", 0), ("mirror_landmarks", 1)]
NODE = "/vtb_detector"




class Feed:
    def __init__(self, ros, rgb):
        from vtb_detector.node import IMAGE_QOS
        from vtb_msgs.msg import FaceArray
        self.ros, self.faces, self.debug = ros, [], []
        ros.node.create_subscription(FaceArray, "/vtdp/faces", self.faces.append, 10)
        ros.node.create_subscription(Image, "/vtdp/debug_image", self.debug.append, IMAGE_QOS)
        self.pub = ros.node.create_publisher(Image, "/vtdp/image", IMAGE_QOS)
        self.image = rgb_to_image(Image, rgb)
        ros.spin_until(lambda: self.pub.get_subscription_count() > 0 and ros.node.count_publishers("/vtdp/faces") > 0,
                       timeout=30, what="the detector's subscription and publisher")

    def send_until(self, done, what, tries=60):
        for _ in range(tries):
            self.pub.publish(self.image)
            self.ros.spin_for(0.2)
            if done():
                return
        raise AssertionError(f"no {what} after {tries} images")

    def fresh(self, what, n=3):
        """Images until n new FaceArrays came after now (the set was applied before them)."""
        self.faces.clear()
        self.debug.clear()
        self.send_until(lambda: len(self.faces) >= n, what)
        return self.faces[-1]


def test_detector_parameters_live_or_read_only(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_node", "-r", "image:=/vtdp/image", "-r", "faces:=/vtdp/faces",
                      "-r", "debug_image:=/vtdp/debug_image", "-p", "publish_debug_image:=true")
    feed = Feed(ros, astronaut_rgb)
    feed.send_until(lambda: feed.faces and feed.faces[-1].faces and feed.debug, "faces and debug image")

    # publish_debug_image: the publisher goes away, images keep giving faces, no debug image
    assert ros.set_parameters(NODE, publish_debug_image=False)["publish_debug_image"].successful
    ros.spin_until(lambda: ros.node.count_publishers("/vtdp/debug_image") == 0, what="the debug publisher removed")
    assert len(feed.fresh("faces without a debug image", n=5).faces) == 1 and not feed.debug
    assert ros.set_parameters(NODE, publish_debug_image=True)["publish_debug_image"].successful
    feed.send_until(lambda: feed.debug, "the debug image back")

    # a threshold: no face scores 1.0; negative is the model's own again
    assert ros.set_parameters(NODE, score_threshold=1.0)["score_threshold"].successful
    assert feed.fresh("faces with score_threshold 1.0").faces == []
    assert ros.set_parameters(NODE, score_threshold=-1.0)["score_threshold"].successful
    feed.send_until(lambda: feed.faces[-1].faces, "the face back with the model's threshold")

    # every parameter: live or read-only; bad values refused with a reason
    read_only = ros.check_live_or_read_only(NODE, PARAMETERS, LIVE_VALUES, BAD_VALUES)
    assert read_only == {"input_compressed"}
    # refine_iris False (set above): 468 landmarks; True again: 478, with the short model back
    msg = feed.fresh("faces after the sets")
    assert all(f.landmark_scheme == Face.SCHEME_MEDIAPIPE_468 for f in msg.faces)
    r = ros.set_parameters(NODE, refine_iris=True, model="short", drop_levels="", threads=1)
    assert all(v.successful for v in r.values()), r
    feed.send_until(lambda: feed.faces[-1].faces and feed.faces[-1].faces[0].landmark_scheme
                    == Face.SCHEME_MEDIAPIPE_478, "478 landmarks again")
    assert len(feed.faces[-1].faces[0].landmarks) == 2 * 478
    # the Face Landmarker on ONNX Runtime (the GPU path's backend; its ONNX file converted at fetch)
    r = ros.set_parameters(NODE, landmark_model="face_landmarker", backend="onnxruntime")
    assert all(v.successful for v in r.values()), r
    face = feed.fresh("faces from the Face Landmarker on ONNX Runtime").faces[0]
    assert face.landmark_scheme == Face.SCHEME_MEDIAPIPE_478 and face.landmark_confidence > 0.9
    assert "face_landmarker: onnxruntime" in proc.output()
    assert proc.alive() and "Traceback" not in proc.output()
    assert proc.stop() == 0
