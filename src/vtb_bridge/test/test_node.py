"""The vtb_bridge node executable starts in its own process and is a proper ROS 2 node."""
from vtb_bridge.node import PARAMETERS


def test_node_executable_is_on_the_graph_with_described_parameters(check_node_executable):
    check_node_executable("vtb_bridge", "bridge_node", "vtb_bridge", PARAMETERS, ("vmc_port", 39540))
