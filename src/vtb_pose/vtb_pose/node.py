"""vtb_pose node. Head pose from face landmarks: PnP, filtering, TF frames face_<id>, markers.

For now it declares and logs its parameters; the computation arrives with the pose issue and
lives in rclpy-free modules beside this one.
"""
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

PARAMETERS = [
    ("interpupillary_distance_m", 0.063, "distance between the pupils used to scale the 3D face model, metres"),
    ("pnp_method", "sqpnp", "cv2.solvePnP method: sqpnp, iterative or epnp"),
    ("filter_min_cutoff", 1.0, "One-Euro filter minimum cutoff frequency, Hz (lower: steadier, more lag)"),
    ("filter_beta", 0.05, "One-Euro filter speed coefficient (higher: less lag on fast moves)"),
    ("publish_tf", True, "broadcast face_<id> frames on /tf"),
    ("publish_markers", True, "publish visualization_msgs markers for RViz"),
]


class PoseNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_pose", **kwargs)
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        values = {name: self.get_parameter(name).value for name, _, _ in PARAMETERS}
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = PoseNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
