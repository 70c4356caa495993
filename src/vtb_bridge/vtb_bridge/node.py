"""vtb_bridge node. Avatar parameters and their outputs: Socket.IO, VMC, VTube Studio, built-in page, robot joints.

For now it declares and logs its parameters; the computation arrives with the bridge issue and
lives in rclpy-free modules beside this one.
"""
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

PARAMETERS = [
    ("mirror", True, "mirror left and right, so the avatar moves like a mirror image of the user"),
    ("socketio_url", "", "Socket.IO server to stream result_data to (namespace /kizuna); empty: off"),
    ("server_enabled", False, "serve the built-in avatar page and Socket.IO server"),
    ("server_port", 8000, "port of the built-in server (binds 127.0.0.1)"),
    ("vmc_enabled", False, "send the VMC protocol over OSC/UDP"),
    ("vmc_host", "127.0.0.1", "VMC receiver host"),
    ("vmc_port", 39539, "VMC receiver port"),
    ("vtube_studio_enabled", False, "inject parameters into VTube Studio through its plugin API"),
    ("vtube_studio_url", "ws://localhost:8001", "VTube Studio plugin API WebSocket"),
    ("joint_states_enabled", False, "publish sensor_msgs/JointState for a robot head"),
]


class BridgeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_bridge", **kwargs)
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        values = {name: self.get_parameter(name).value for name, _, _ in PARAMETERS}
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()))


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = BridgeNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
