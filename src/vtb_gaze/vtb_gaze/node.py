"""vtb_gaze node. Gaze vectors, eye openness, blinks, mouth and brows from landmarks and head pose.

For now it declares and logs its parameters; the computation arrives with the gaze issue and
lives in rclpy-free modules beside this one.
"""
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

PARAMETERS = [
    ("eyeball_radius_m", 0.012, "eyeball radius of the average eye model, metres"),
    ("blink_close_threshold", 0.25, "eye openness below which an open eye counts as closed, 0..1"),
    ("blink_open_threshold", 0.35, "eye openness above which a closed eye counts as open again, 0..1 (hysteresis)"),
    ("publish_tf", True, "broadcast gaze_<id> frames on /tf"),
    ("publish_markers", True, "publish gaze arrows as visualization_msgs markers"),
]


class GazeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_gaze", **kwargs)
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        values = {name: self.get_parameter(name).value for name, _, _ in PARAMETERS}
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = GazeNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
