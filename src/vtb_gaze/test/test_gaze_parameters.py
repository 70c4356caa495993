"""The gaze node's parameters over its real parameter services, from this process (as `ros2 param
set` does): every one is live; publish_tf and publish_markers stop and restart their outputs,
pose_wait_s changes how long a face without a pose waits; bad values (a negative threshold, a
close threshold above the open one, a wrong type) are refused with a reason and the node keeps
working."""
import json
import time
from pathlib import Path

import numpy as np
from rclpy.qos import QoSProfile
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray
from vtb_msgs.msg import Face, FaceArray, FaceStateArray, GazeArray, HeadPose, HeadPoseArray

from vtb_gaze.node import PARAMETERS
from vtb_pose.frames import quaternion_wxyz
from vtb_pose.pnp import HeadPoseEstimator, default_intrinsics

REFERENCE = Path(__file__).resolve().parents[2] / "vtb_detector" / "test" / "data" / "astronaut_mediapipe_478.json"
LIVE_VALUES = {"eyeball_radius_m": 0.0125, "interpupillary_distance_m": 0.062, "blink_close_threshold": 0.2,
               "blink_open_threshold": 0.3, "calibration_frames": 10, "pose_wait_s": 0.2, "publish_tf": True,
               "publish_markers": True, "blendshapes": True, "max_faces": 8}
BAD_VALUES = [("blink_close_threshold", -0.1), ("blink_open_threshold", 1.5), ("blink_close_threshold", 0.5),
              ("eyeball_radius_m", 0.0), ("calibration_frames", 0), ("pose_wait_s", -1.0),
              ("pose_wait_s", "long"), ("calibration_frames", 10.0), ("publish_markers", 0), ("blendshapes", "yes"),
              ("max_faces", 0)]
NODE = "/vtb_gaze"


def astronaut():
    """The astronaut's real 478 landmarks (MediaPipe's, 512 x 512) and their head pose."""
    lm = np.asarray(json.loads(REFERENCE.read_text())["landmarks_478"], np.float32)
    faces = FaceArray(image_width=512, image_height=512)
    faces.header.frame_id = "cam_optical"
    faces.faces = [Face(id="a57", landmark_scheme=Face.SCHEME_MEDIAPIPE_478, landmarks=lm.reshape(-1).tolist(),
                        landmarks_z=[0.0] * 478)]
    est = HeadPoseEstimator(method="sqpnp").estimate(lm, default_intrinsics(512, 512))
    pose = HeadPose(face_id="a57", valid=True)
    for p in (pose.pose, pose.measured_pose):
        p.position.x, p.position.y, p.position.z = (float(v) for v in est.translation)
        p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = \
            (float(v) for v in quaternion_wxyz(est.rotation))
    return faces, HeadPoseArray(header=faces.header, poses=[pose])


def test_gaze_parameters_live(ros, start_node):
    proc = start_node("vtb_gaze", "gaze_node", "-r", "faces:=/vtgp/faces", "-r", "head_poses:=/vtgp/head_poses",
                      "-r", "gaze:=/vtgp/gaze", "-r", "face_state:=/vtgp/face_state",
                      "-r", "gaze_markers:=/vtgp/gaze_markers")
    tfs, gazes, states, markers = [], [], [], []
    ros.node.create_subscription(TFMessage, "/tf", tfs.append, QoSProfile(depth=100))
    ros.node.create_subscription(GazeArray, "/vtgp/gaze", gazes.append, 10)
    ros.node.create_subscription(FaceStateArray, "/vtgp/face_state",
                                 lambda m: states.append((time.monotonic(), m)), 10)
    ros.node.create_subscription(MarkerArray, "/vtgp/gaze_markers", markers.append, 10)
    faces_pub = ros.node.create_publisher(FaceArray, "/vtgp/faces", 10)
    poses_pub = ros.node.create_publisher(HeadPoseArray, "/vtgp/head_poses", 10)
    ros.spin_until(lambda: faces_pub.get_subscription_count() > 0 and poses_pub.get_subscription_count() > 0
                   and ros.node.count_publishers("/tf") > 0, timeout=30, what="the gaze node")
    faces, poses = astronaut()
    t = [100.0]

    def frames(n=5):
        """n frames (faces, then their pose) answered with a gaze: the TF children and markers."""
        tfs.clear(), markers.clear(), gazes.clear()
        for _ in range(100):
            t[0] += 1 / 30
            faces.header.stamp.sec, faces.header.stamp.nanosec = int(t[0]), int(t[0] % 1 * 1e9)
            poses.header = faces.header
            faces_pub.publish(faces)
            ros.spin_for(0.02)
            poses_pub.publish(poses)
            ros.spin_for(0.04)
            if len(gazes) >= n:
                break
        assert len(gazes) >= n, "gaze from the gaze node"
        ros.spin_for(0.2)
        return {tr.child_frame_id for m in tfs for tr in m.transforms}, len(markers)

    children, n_markers = frames()
    assert children == {"gaze_a57"} and n_markers > 0

    r = ros.set_parameters(NODE, publish_tf=False, publish_markers=False)
    assert all(v.successful for v in r.values()), r
    ros.spin_until(lambda: ros.node.count_publishers("/vtgp/gaze_markers") == 0, what="the marker publisher removed")
    assert frames() == (set(), 0)

    # pose_wait_s: a face whose pose never comes goes out without gaze after that long
    def wait_without_pose():
        states.clear()
        t[0] += 1
        faces.header.stamp.sec = int(t[0])
        sent = time.monotonic()
        faces_pub.publish(faces)
        ros.spin_until(lambda: states, timeout=10, what="the face state without a pose")
        return states[0][0] - sent

    assert wait_without_pose() < 0.8
    assert ros.set_parameters(NODE, pose_wait_s=1.5)["pose_wait_s"].successful
    assert wait_without_pose() > 1.4

    # blendshapes: the 52 values, then none while off
    assert len(states[-1][1].states[0].blendshapes) == 52
    assert ros.set_parameters(NODE, blendshapes=False, pose_wait_s=0.2)["blendshapes"].successful
    wait_without_pose()
    assert len(states[-1][1].states[0].blendshapes) == 0 and len(states[-1][1].states[0].blendshape_names) == 0

    read_only = ros.check_live_or_read_only(NODE, PARAMETERS, LIVE_VALUES, BAD_VALUES)
    assert read_only == set()
    children, n_markers = frames()
    assert children == {"gaze_a57"} and n_markers > 0
    assert proc.alive() and "Traceback" not in proc.output()
    assert proc.stop() == 0
