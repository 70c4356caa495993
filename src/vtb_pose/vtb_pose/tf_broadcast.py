"""TF output that works in both of vtb's setups (a ROS adapter: imports rclpy).

On a ROS install tf2_ros's own TransformBroadcaster sends the transforms. In the wheel setup
(ROS 2 Jazzy from PyPI wheels) tf2_ros does not exist; the same tf2_msgs/TFMessage is then
published on /tf with the QoS tf2_ros's broadcaster uses, so a stock tf2 listener anywhere on
the graph accepts it. tf2_msgs itself comes from the real package, or in the wheel setup from
the stand-in built from compat/tf2_msgs (same definition, same type hash).
"""
from __future__ import annotations

from typing import Iterable, Union

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from transforms3d.quaternions import mat2quat

TF_TOPIC = "/tf"

# tf2_ros's dynamic broadcaster and listener QoS (tf2_ros/qos.hpp DynamicBroadcasterQoS /
# DynamicListenerQoS: rclcpp::QoS(100); tf2_ros_py TransformBroadcaster: QoSProfile(depth=100),
# TransformListener: depth 100, VOLATILE, KEEP_LAST): reliable, volatile, keep last 100.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


class TransformBroadcaster:
    """Sends geometry_msgs/TransformStamped on /tf.

    `backend` says which path is in use: "tf2_ros" (tf2_ros.TransformBroadcaster) or "tf2_msgs"
    (a TFMessage publisher on /tf with TF_QOS, where tf2_ros cannot be imported)."""

    def __init__(self, node):
        try:
            import tf2_ros
        except ImportError:
            tf2_ros = None
        if tf2_ros is not None:
            self.backend = "tf2_ros"
            self._broadcaster = tf2_ros.TransformBroadcaster(node)
            self._send = self._broadcaster.sendTransform
            how = "tf2_ros.TransformBroadcaster"
        else:
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError as e:
                raise ImportError(
                    "neither tf2_ros nor tf2_msgs can be imported: on a ROS install, install "
                    "tf2_ros; in the wheel setup, ./vtb builds tf2_msgs from compat/") from e
            self.backend = "tf2_msgs"
            self._tf_message = TFMessage
            self._publisher = node.create_publisher(TFMessage, TF_TOPIC, TF_QOS)
            self._send = self._publish
            how = (f"tf2_msgs/TFMessage on {TF_TOPIC} (reliable, volatile, keep last "
                   f"{TF_QOS.depth}), as tf2_ros does; tf2_ros is not installed")
        node.get_logger().info(f"TF: sending with {how}", once=True)

    def _publish(self, transforms):
        self._publisher.publish(self._tf_message(transforms=transforms))

    def send(self, transforms: Union[TransformStamped, Iterable[TransformStamped]]) -> None:
        """Send one TransformStamped or several (in one TFMessage)."""
        transforms = [transforms] if isinstance(transforms, TransformStamped) else list(transforms)
        if transforms:
            self._send(transforms)


def make_transform(stamp, parent: str, child: str, rotation, translation) -> TransformStamped:
    """The TransformStamped of `child` in `parent`: `rotation` (3x3) and `translation` (3,) map
    child coordinates into the parent frame (p_parent = R p_child + t). `stamp` is a
    builtin_interfaces/Time or an rclpy Time."""
    if hasattr(stamp, "to_msg"):
        stamp = stamp.to_msg()
    t = np.asarray(translation, dtype=float).reshape(3)
    w, x, y, z = mat2quat(np.asarray(rotation, dtype=float).reshape(3, 3))  # transforms3d: w first
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in t)
    q = msg.transform.rotation
    q.x, q.y, q.z, q.w = float(x), float(y), float(z), float(w)
    return msg
