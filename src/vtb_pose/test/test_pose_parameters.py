"""The pose node's parameters over its real parameter services, from this process (as `ros2 param
set` does): every one is live; frame_prefix renames the TF child frame at once, publish_tf and
publish_markers stop and restart their outputs; bad values are refused with a reason and the
node keeps working."""
import json
from pathlib import Path

import numpy as np
from rclpy.qos import QoSProfile
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray
from vtb_msgs.msg import Face, FaceArray, HeadPoseArray

from vtb_pose.node import PARAMETERS

REFERENCE = Path(__file__).resolve().parents[2] / "vtb_detector" / "test" / "data" / "astronaut_mediapipe_478.json"
LIVE_VALUES = {"interpupillary_distance_m": 0.065, "pnp_method": "sqpnp", "depth_scale": 0.9, "filter": True,
               "filter_min_cutoff": 0.5, "filter_beta_rotation": 2.0, "filter_beta_translation": 1.0,
               "publish_tf": True, "publish_markers": True, "frame_prefix": "face_", "max_faces": 8,
               "face_topic_linger_s": 5.0}
BAD_VALUES = [("filter_min_cutoff", -1.0), ("filter_beta_rotation", -0.1), ("interpupillary_distance_m", 0.0),
              ("pnp_method", "bogus"), ("frame_prefix", "/face_"), ("depth_scale", float("nan")),
              ("interpupillary_distance_m", "wide"), ("publish_tf", "yes"), ("filter_min_cutoff", 1),
              ("max_faces", 0), ("face_topic_linger_s", -1.0)]
NODE = "/vtb_pose"


def astronaut_faces():
    """The astronaut's real 478 landmarks (MediaPipe's, 512 x 512), without depth."""
    lm = np.asarray(json.loads(REFERENCE.read_text())["landmarks_478"], np.float32)
    msg = FaceArray(image_width=512, image_height=512)
    msg.header.frame_id = "cam_optical"
    msg.faces = [Face(id="a57", landmark_scheme=Face.SCHEME_MEDIAPIPE_478, landmarks=lm.reshape(-1).tolist())]
    return msg


def test_pose_parameters_live(ros, start_node):
    proc = start_node("vtb_pose", "pose_node", "-r", "faces:=/vtpp/faces", "-r", "head_poses:=/vtpp/head_poses",
                      "-r", "markers:=/vtpp/markers")
    tfs, poses, markers = [], [], []
    ros.node.create_subscription(TFMessage, "/tf", tfs.append, QoSProfile(depth=100))
    ros.node.create_subscription(HeadPoseArray, "/vtpp/head_poses", poses.append, 10)
    ros.node.create_subscription(MarkerArray, "/vtpp/markers", markers.append, 10)
    pub = ros.node.create_publisher(FaceArray, "/vtpp/faces", 10)
    ros.spin_until(lambda: pub.get_subscription_count() > 0 and ros.node.count_publishers("/tf") > 0,
                   timeout=30, what="the pose node")
    msg, t = astronaut_faces(), [100.0]

    def frames(n=5):
        """n faces messages answered; the TF children, markers' frames and poses of those."""
        tfs.clear(), markers.clear(), poses.clear()
        for _ in range(100):
            t[0] += 1 / 30
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(t[0]), int(t[0] % 1 * 1e9)
            pub.publish(msg)
            ros.spin_for(0.05)
            if len(poses) >= n:
                break
        assert len(poses) >= n, "head poses from the pose node"
        ros.spin_for(0.2)
        children = {tr.child_frame_id for m in tfs for tr in m.transforms}
        return children, {mk.header.frame_id for m in markers for mk in m.markers}, poses[-1]

    children, marker_frames, pose = frames()
    assert children == {"face_a57"} and marker_frames == {"face_a57"} and pose.poses[0].valid

    assert ros.set_parameters(NODE, frame_prefix="head_")["frame_prefix"].successful
    children, marker_frames, _ = frames()
    assert children == {"head_a57"} and marker_frames == {"head_a57"}

    r = ros.set_parameters(NODE, publish_tf=False, publish_markers=False)
    assert all(v.successful for v in r.values()), r
    ros.spin_until(lambda: ros.node.count_publishers("/vtpp/markers") == 0, what="the marker publisher removed")
    children, marker_frames, pose = frames()
    assert children == set() and marker_frames == set() and pose.poses[0].valid

    # the filter: off, the pose is this frame's measurement
    assert ros.set_parameters(NODE, filter=False)["filter"].successful
    _, _, pose = frames()
    p = pose.poses[0]
    assert p.pose.position == p.measured_pose.position

    read_only = ros.check_live_or_read_only(NODE, PARAMETERS, LIVE_VALUES, BAD_VALUES)
    assert read_only == set()
    children, marker_frames, pose = frames()
    assert children == {"face_a57"} and marker_frames == {"face_a57"} and pose.poses[0].valid
    assert proc.alive() and "Traceback" not in proc.output()
    assert proc.stop() == 0
