"""Helper process for test_msgs_over_dds: republishes every vtb_msgs type it receives on
/vtb_echo/in/<Type> to /vtb_echo/out/<Type>. Run as a separate process by the test."""
import importlib
import sys

import rclpy
from ament_index_python.packages import get_resource
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy


def vtb_msg_types():
    content, _ = get_resource("rosidl_interfaces", "vtb_msgs")
    names = sorted({line.split("/")[1].rsplit(".", 1)[0] for line in content.splitlines() if line.startswith("msg/")})
    module = importlib.import_module("vtb_msgs.msg")
    return {n: getattr(module, n) for n in names}


QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def main():
    rclpy.init()
    node = Node("vtb_msgs_echo")
    keep = []
    for name, cls in vtb_msg_types().items():
        pub = node.create_publisher(cls, f"/vtb_echo/out/{name}", QOS)
        keep.append(node.create_subscription(cls, f"/vtb_echo/in/{name}", pub.publish, QOS))
    node.get_logger().info(f"echoing {len(keep)} types")
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
