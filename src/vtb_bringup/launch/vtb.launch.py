"""Start the vtb graph on a ROS 2 install, one process per node:

    ros2 launch vtb_bringup vtb.launch.py                         # images on /vtb/image
    ros2 launch vtb_bringup vtb.launch.py camera:=/dev/video0 rviz:=true
    ros2 launch vtb_bringup vtb.launch.py image_topic:=/my_camera/image_raw outputs:=vmc
    ros2 launch vtb_bringup vtb.launch.py use_lifecycle:=true     # then: ros2 lifecycle set
                                                                  # /vtb/vtb_detector configure, activate

The nodes, their parameters and their wiring come from vtb_bringup/graph.py reading
config/vtb.yaml, the same code `./vtb run` uses; this file only turns those specs into
launch_ros actions and adds what only a ROS install has (a camera driver, RViz).
`ros2 launch vtb_bringup vtb.launch.py --show-args` lists every argument.
"""
from vtb_bringup import graph

# Arguments only this file has; the graph's own come from graph.ARGUMENTS.
LAUNCH_ARGUMENTS = [
    ("camera", "", "video device to start a camera driver on (e.g. /dev/video0); empty: no driver"),
    ("camera_driver", "v4l2_camera", "camera driver package: v4l2_camera or usb_cam"),
    ("rviz", "false", "start RViz with vtb_viz's rviz/vtb.rviz (the vtb_viz package and rviz2 installed)"),
    ("use_lifecycle", "false", "start the detector as a managed (lifecycle) node, unconfigured: a system manager "
                               "or `ros2 lifecycle set` configures (loads the models) and activates it"),
]
# the detector's managed twin (vtb_detector.node.LifecycleDetectorNode)
LIFECYCLE_EXECUTABLES = {("vtb_detector", "detector_node"): "detector_lifecycle_node"}
CAMERA_NAMESPACE = "/camera"
CAMERA_FRAME = graph.CAMERA_FRAME
# package -> (executable, its video device parameter, its frame id parameter)
CAMERA_DRIVERS = {
    "v4l2_camera": ("v4l2_camera_node", "video_device", "camera_frame_id"),
    "usb_cam": ("usb_cam_node_exe", "video_device", "frame_id"),
}


def graph_arguments(values: dict) -> dict:
    """The graph's arguments from this launch file's (strings, as launch gives them)."""
    args = {name: values.get(name, default) for name, default in graph.DEFAULTS.items()}
    if values.get("camera") and not args["image_topic"]:
        args["image_topic"] = f"{CAMERA_NAMESPACE}/image_raw"   # what the drivers publish
    return args


def _launch_setup(context):
    from launch_ros.actions import Node
    values = {name: context.perform_substitution(_config(name))
              for name in [*graph.DEFAULTS, *(n for n, _, _ in LAUNCH_ARGUMENTS)]}
    actions = []
    for spec in graph.resolve(graph_arguments(values)):
        kind, executable = Node, spec.executable
        if graph.as_bool(values["use_lifecycle"]) and (spec.package, spec.executable) in LIFECYCLE_EXECUTABLES:
            from launch_ros.actions import LifecycleNode
            kind, executable = LifecycleNode, LIFECYCLE_EXECUTABLES[spec.package, spec.executable]
        actions.append(kind(package=spec.package, executable=executable, name=spec.name, namespace=spec.namespace,
                            parameters=[spec.parameters], remappings=spec.remappings, output="screen",
                            emulate_tty=True))
    if values["camera"]:
        driver = values["camera_driver"]
        if driver not in CAMERA_DRIVERS:
            raise RuntimeError(f"camera_driver: {driver!r} is not one of {', '.join(CAMERA_DRIVERS)}")
        executable, device_param, frame_param = CAMERA_DRIVERS[driver]
        actions.append(Node(package=driver, executable=executable, namespace=CAMERA_NAMESPACE, output="screen",
                            parameters=[{device_param: values["camera"], frame_param: CAMERA_FRAME,
                                         "use_sim_time": graph.as_bool(values["use_sim_time"])}]))
    if graph.as_bool(values["rviz"]):
        # the view lives in vtb_viz (it depends on rviz2), so robots need not install RViz
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            rviz_config = f"{get_package_share_directory('vtb_viz')}/rviz/vtb.rviz"
        except PackageNotFoundError:
            raise RuntimeError("rviz:=true needs the vtb_viz package and rviz2: build vtb_viz with the workspace "
                               "and install rviz2 (rosdep install --from-paths src --ignore-src, or apt install "
                               "ros-$ROS_DISTRO-rviz2)") from None
        actions.append(Node(package="rviz2", executable="rviz2", arguments=["-d", rviz_config], output="screen"))
    return actions


def _config(name):
    from launch.substitutions import LaunchConfiguration
    return LaunchConfiguration(name)


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    declared = [DeclareLaunchArgument(name, default_value=default, description=description)
                for name, default, description in [*graph.ARGUMENTS, *LAUNCH_ARGUMENTS]]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
