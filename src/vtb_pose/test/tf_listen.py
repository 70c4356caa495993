"""Helper process for test_tf_broadcast: listens on /tf as a stock tf2 listener does and prints,
one JSON line each, every transform it receives and every /tf publisher it discovers (with the
type hash that publisher announced). Run as a separate process by the test."""
import json
import sys

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

# tf2_ros TransformListener's /tf subscription (tf2_ros_py transform_listener.py, and
# DynamicListenerQoS in tf2_ros/qos.hpp): reliable, volatile, keep last 100. Written out here,
# not imported from vtb_pose, so a change there cannot hide a mismatch.
LISTENER_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def emit(**record):
    print(json.dumps(record), flush=True)


def main():
    rclpy.init()
    node = Node("vtb_tf_listen")
    seen = set()

    def on_tf(msg):
        for t in msg.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            emit(kind="transform", parent=t.header.frame_id, child=t.child_frame_id,
                 stamp=[t.header.stamp.sec, t.header.stamp.nanosec],
                 translation=[tr.x, tr.y, tr.z], rotation_xyzw=[q.x, q.y, q.z, q.w])

    def report_publishers():
        for info in node.get_publishers_info_by_topic("/tf"):
            key = (info.node_namespace, info.node_name, bytes(info.endpoint_gid))
            if key not in seen:
                seen.add(key)
                emit(kind="publisher", node=info.node_name, type=info.topic_type,
                     type_hash=str(info.topic_type_hash),
                     reliability=info.qos_profile.reliability.name,
                     durability=info.qos_profile.durability.name)

    node.create_subscription(TFMessage, "/tf", on_tf, LISTENER_QOS)
    node.create_timer(0.05, report_publishers)
    emit(kind="ready")
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
