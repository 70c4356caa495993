"""The vtb_gaze node executable starts in its own process and is a proper ROS 2 node."""
from vtb_gaze.node import PARAMETERS


def test_node_executable_is_on_the_graph_with_described_parameters(check_node_executable):
    check_node_executable("vtb_gaze", "gaze_node", "vtb_gaze", PARAMETERS, ("eyeball_radius_m", 0.0125))
