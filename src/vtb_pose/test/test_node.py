"""The vtb_pose node executable starts in its own process and is a proper ROS 2 node."""
from vtb_pose.node import PARAMETERS


def test_node_executable_is_on_the_graph_with_described_parameters(check_node_executable):
    check_node_executable("vtb_pose", "pose_node", "vtb_pose", PARAMETERS, ("interpupillary_distance_m", 0.06))
