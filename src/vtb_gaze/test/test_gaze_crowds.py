"""The gaze node against a FaceArray of 100 faces with new ids: like the pose node it takes the
first max_faces (8) and says so, instead of building 100 face-state estimators (before: no cap;
100 new ids a message held the one-process graph up for 2-3 s)."""
import numpy as np
from vtb_msgs.msg import Face, FaceArray, FaceStateArray

from vtb_pose.face_model import load_metric_face
from vtb_pose.frames import rotation_from_ypr

NS = "/vgc"


def _landmarks():
    """The metric face at a plain pose in pixels, with the iris points at the eye centres."""
    rotation, t = rotation_from_ypr(10, 0, 0), np.array([0.0, 0.0, 0.6])
    cam = load_metric_face() @ rotation.T + t
    px = np.column_stack([cam[:, :2] / cam[:, 2:] * 640 + [320, 240], (cam[:, 2] - t[2]) * 640 / t[2]])
    right, left = px[[33, 133]].mean(0), px[[362, 263]].mean(0)
    px = np.vstack([px, np.repeat(right[None], 5, 0), np.repeat(left[None], 5, 0)])
    return px[:, :2].astype(np.float32).reshape(-1).tolist(), px[:, 2].astype(np.float32).tolist()


def test_a_hundred_new_faces_are_capped_at_max_faces(ros, start_node):
    xy, z = _landmarks()
    proc = start_node("vtb_gaze", "gaze_node", "-r", f"__ns:={NS}")
    states = []
    ros.node.create_subscription(FaceStateArray, f"{NS}/face_state", states.append, 100)
    pub = ros.node.create_publisher(FaceArray, f"{NS}/faces", 100)
    ros.spin_until(lambda: pub.get_subscription_count() > 0, timeout=30, what="the gaze node")
    for n in range(5):
        msg = FaceArray(image_width=640, image_height=480)
        msg.header.stamp.sec = 100 + n
        msg.faces = [Face(id=f"c{n}{i:02d}", landmark_scheme=Face.SCHEME_MEDIAPIPE_478, landmarks=xy, landmarks_z=z)
                     for i in range(100)]
        pub.publish(msg)
        ros.spin_for(0.1)
    ros.spin_until(lambda: len(states) >= 5, timeout=30, what="five FaceStateArrays")
    assert all(len(m.states) == 8 for m in states), [len(m.states) for m in states]
    assert "taking the first 8 (max_faces)" in proc.output()
    # max_faces is live, and its range checked
    assert ros.set_parameters(f"{NS}/vtb_gaze", max_faces=3)["max_faces"].successful
    assert not ros.set_parameters(f"{NS}/vtb_gaze", max_faces=0)["max_faces"].successful
    msg.header.stamp.sec = 200
    pub.publish(msg)
    ros.spin_until(lambda: states[-1].header.stamp.sec == 200, timeout=20, what="the capped FaceStateArray")
    assert len(states[-1].states) == 3
    assert proc.alive() and "Traceback" not in proc.output()
