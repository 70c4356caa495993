"""TF output (vtb_pose.tf_broadcast): face_<id> transforms reach a tf2 listener in another
process intact, with tf2's QoS and tf2_msgs/TFMessage's real type hash, in either setup (tf2_ros
on a ROS install; in the wheel setup a TFMessage publisher and the compat/tf2_msgs stand-in)."""
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from transforms3d.euler import euler2mat

from vtb_pose.tf_broadcast import TF_QOS, TransformBroadcaster, make_transform

HERE = Path(__file__).parent
ROOT = HERE.parents[2]

# tf2_msgs/msg/TFMessage's type description hash in Jazzy: what `ros2 topic info -v /tf` shows on
# a Jazzy install (and the value in rosbag2 metadata of /tf recorded on Jazzy).
TFMESSAGE_RIHS01 = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


def quaternion_xyzw(msg):
    q = msg.transform.rotation
    return [q.x, q.y, q.z, q.w]


# --- make_transform ------------------------------------------------------------------------------

def test_make_transform_puts_w_last():
    """90 degrees about z: (x, y, z, w) = (0, 0, sin 45, cos 45), not transforms3d's w-first order."""
    from builtin_interfaces.msg import Time
    rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    msg = make_transform(Time(sec=12, nanosec=34), "camera_optical", "face_f3a9", rz90, [0.1, -0.2, 0.7])
    s = math.sqrt(0.5)
    assert quaternion_xyzw(msg) == pytest.approx([0.0, 0.0, s, s], abs=1e-12)
    t = msg.transform.translation
    assert [t.x, t.y, t.z] == [0.1, -0.2, 0.7]
    assert (msg.header.frame_id, msg.child_frame_id) == ("camera_optical", "face_f3a9")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 34)


def test_make_transform_rotation_round_trips_through_an_xyzw_library():
    """Any rotation: scipy (x, y, z, w order) turns the message's quaternion back into R."""
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(155)
    for _ in range(20):
        r = Rotation.random(random_state=rng).as_matrix()
        msg = make_transform(_time(), "cam", "face_0001", r, np.zeros(3))
        q = quaternion_xyzw(msg)
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), r, atol=1e-12)


def test_make_transform_takes_an_rclpy_time():
    from rclpy.time import Time
    msg = make_transform(Time(seconds=5, nanoseconds=6), "cam", "face_0001", np.eye(3), (0, 0, 1))
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (5, 6)
    assert quaternion_xyzw(msg) == [0.0, 0.0, 0.0, 1.0]


def _time(sec=0, nanosec=0):
    from builtin_interfaces.msg import Time
    return Time(sec=sec, nanosec=nanosec)


# --- tf2's QoS and the message type ----------------------------------------------------------------

def test_qos_is_tf2_ros_broadcasters():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    assert TF_QOS == QoSProfile(depth=100)  # tf2_ros_py TransformBroadcaster's default
    assert (TF_QOS.reliability, TF_QOS.durability, TF_QOS.history, TF_QOS.depth) == (
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, HistoryPolicy.KEEP_LAST, 100)


def test_tfmessage_has_the_real_type_hash():
    """The tf2_msgs in use (the real one, or compat/'s stand-in) describes TFMessage with the
    hash of Jazzy's tf2_msgs, and rosbags' independent computation from its Jazzy type store
    agrees."""
    from ament_index_python.packages import get_package_share_directory
    from tf2_msgs.msg import TFMessage
    desc = json.loads((Path(get_package_share_directory("tf2_msgs")) / "msg" / "TFMessage.json").read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in desc["type_hashes"]}
    assert hashes["tf2_msgs/msg/TFMessage"] == TFMESSAGE_RIHS01
    assert TFMessage.get_fields_and_field_types() == {"transforms": "sequence<geometry_msgs/TransformStamped>"}
    from rosbags.typesys import Stores, get_typestore
    assert get_typestore(Stores.ROS2_JAZZY).hash_rihs01("tf2_msgs/msg/TFMessage") == TFMESSAGE_RIHS01


def test_compat_definition_is_the_real_one():
    """The stand-in's .msg is the real definition, byte for byte (one field, no constants)."""
    text = (ROOT / "compat" / "tf2_msgs" / "msg" / "TFMessage.msg").read_text()
    assert text == "geometry_msgs/TransformStamped[] transforms\n"


@pytest.mark.skipif(bool(os.environ.get("ROS_DISTRO")), reason="the stand-in is for the wheel setup only")
def test_wheel_setup_uses_the_compat_stand_in():
    import tf2_msgs
    # (not resolved: with --symlink-install the file links into build/)
    assert Path(os.path.abspath(tf2_msgs.__file__)).is_relative_to(ROOT / "install" / "tf2_msgs")
    assert importlib.util.find_spec("tf2_ros") is None


# --- across processes --------------------------------------------------------------------------

def _records(proc, kind):
    out = []
    for line in proc.output().splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if r["kind"] == kind:
                out.append(r)
    return out


def test_transforms_reach_a_tf2_listener_in_another_process(ros, start_process):
    proc = start_process([sys.executable, HERE / "tf_listen.py"], name="tf_listen")
    tf = TransformBroadcaster(ros.node)
    assert tf.backend == ("tf2_ros" if importlib.util.find_spec("tf2_ros") else "tf2_msgs")

    stamp = _time(1_700_000_000, 123_456_789)
    r1 = euler2mat(0.3, -0.2, 0.1, axes="rzyx")
    r2 = euler2mat(-1.2, 0.4, 2.5, axes="rzyx")
    sent = [make_transform(stamp, "camera_optical_frame", "face_f3a9", r1, [0.1, -0.05, 0.6]),
            make_transform(stamp, "camera_optical_frame", "face_0b1c", r2, [-0.25, 0.125, 1.5])]

    ros.spin_until(lambda: ros.node.count_subscribers("/tf") > 0, what="the listener's /tf subscription")
    # the first messages can be lost while the listener still discovers us: send until they arrive
    ros.spin_until(lambda: tf.send(sent) or len(_records(proc, "transform")) >= 2,
                   what="the transforms in the listener")
    got = {r["child"]: r for r in _records(proc, "transform")}
    assert set(got) == {"face_f3a9", "face_0b1c"}
    for msg in sent:
        r = got[msg.child_frame_id]
        t = msg.transform.translation
        assert r["parent"] == "camera_optical_frame"
        assert r["stamp"] == [1_700_000_000, 123_456_789]
        assert r["translation"] == [t.x, t.y, t.z]          # float64 on the wire: exact
        assert r["rotation_xyzw"] == quaternion_xyzw(msg)

    # one transform on its own is sent too
    single = make_transform(_time(7, 8), "camera_optical_frame", "face_77aa", np.eye(3), [0.0, 0.0, 2.0])
    tf.send(single)
    ros.spin_until(lambda: any(r["child"] == "face_77aa" for r in _records(proc, "transform")),
                   what="the single transform")

    # what the listener's side of the graph sees of our publisher: tf2_msgs/TFMessage with the
    # real type hash, reliable and volatile (tf2's QoS)
    ros.spin_until(lambda: any(r["node"] == ros.node.get_name() for r in _records(proc, "publisher")),
                   what="our publisher in the listener's graph")
    pub = next(r for r in _records(proc, "publisher") if r["node"] == ros.node.get_name())
    assert pub["type"] == "tf2_msgs/msg/TFMessage"
    assert pub["type_hash"] == TFMESSAGE_RIHS01
    assert (pub["reliability"], pub["durability"]) == ("RELIABLE", "VOLATILE")
    if tf.backend == "tf2_msgs":
        assert tf._publisher.qos_profile.depth == 100
