"""One graph, two ways to start it: the launch file and `./vtb run` read config/vtb.yaml through
the same code, take the same arguments, and start the same nodes with the same parameters.

launch and launch_ros exist only on a ROS install. The launch file keeps their imports inside
its functions, so it is loaded here as a module; its launch_ros actions are recorded by small
stand-ins for the launch API (the Node/DeclareLaunchArgument keyword arguments are exactly what
launch_ros would receive). The runner's side is checked on a real graph over DDS.
"""
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from vtb_bringup import graph
from vtb_bringup.cli import build_parser, graph_arguments

PACKAGE = Path(__file__).resolve().parent.parent
LAUNCH_FILE = PACKAGE / "launch" / "vtb.launch.py"

# (launch arguments, the same as ./vtb run options)
CASES = [
    ({}, []),
    ({"model": "full", "image_topic": "/usb_cam/image_raw", "outputs": "vmc,joint_states", "use_sim_time": "true"},
     ["--model", "full", "--image-topic", "/usb_cam/image_raw", "--outputs", "vmc,joint_states", "--use-sim-time"]),
    ({"namespace": "studio", "outputs": "none", "socketio_url": "http://127.0.0.1:6789", "backend": "onnxruntime",
      "provider": "cuda"},
     ["--namespace", "studio", "--outputs", "none", "--socketio-url", "http://127.0.0.1:6789", "--backend",
      "onnxruntime", "--provider", "cuda"]),
]


def load_launch_file():
    spec = importlib.util.spec_from_file_location("vtb_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorded:
    """Stands in for a launch action class: keeps its constructor's arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def launch_api(monkeypatch):
    """launch, launch.actions, launch.substitutions and launch_ros.actions as recorders."""
    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name
    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=Recorded),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=Recorded, OpaqueFunction=Recorded),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=Recorded),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def launch_nodes(launch, values: dict):
    """The launch_ros Node actions the launch file makes for these argument values, as
    `ros2 launch` would: declared defaults, then the given values."""
    description = launch.generate_launch_description()
    declared = {a.args[0]: a.kwargs["default_value"] for a in description.args[0] if a.args}
    given = {**declared, **values}
    context = types.SimpleNamespace(perform_substitution=lambda sub: given[sub.name])
    setup = description.args[0][-1].kwargs["function"]
    return setup(context)


def runner_specs(options):
    return graph.resolve(graph_arguments(build_parser().parse_args(["run", *options])))


@pytest.mark.parametrize("launch_args,run_options", CASES)
def test_launch_file_and_runner_start_the_same_nodes(launch_api, launch_args, run_options):
    launch = load_launch_file()
    nodes = launch_nodes(launch, launch_args)
    specs = runner_specs(run_options)
    assert len(nodes) == len(specs) == 4
    for node, spec in zip(nodes, specs):
        k = node.kwargs
        assert (k["package"], k["executable"], k["name"], k["namespace"]) == \
               (spec.package, spec.executable, spec.name, spec.namespace)
        assert k["parameters"] == [spec.parameters]
        assert k["remappings"] == spec.remappings


def test_launch_arguments_are_the_runner_options():
    launch = load_launch_file()
    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    options = {a.dest: a for a in run._actions}
    for name, default, description in graph.ARGUMENTS:
        assert name in options, f"./vtb run has no option for the launch argument {name}"
        want = default == "true" if default in ("true", "false") else default
        assert options[name].default == want and options[name].help == description
    assert not {n for n, _, _ in launch.LAUNCH_ARGUMENTS} & set(graph.DEFAULTS)


def test_launch_file_adds_a_camera_driver_and_rviz(launch_api, monkeypatch):
    launch = load_launch_file()
    from ament_index_python.packages import PackageNotFoundError
    monkeypatch.setitem(sys.modules, "ament_index_python.packages",
                        types.SimpleNamespace(get_package_share_directory=lambda pkg: f"/share/{pkg}",
                                              PackageNotFoundError=PackageNotFoundError))
    nodes = launch_nodes(launch, {"camera": "/dev/video2", "camera_driver": "usb_cam", "rviz": "true"})
    by_package = {n.kwargs["package"]: n.kwargs for n in nodes}
    cam = by_package["usb_cam"]
    assert cam["namespace"] == "/camera" and cam["parameters"][0]["video_device"] == "/dev/video2"
    assert cam["parameters"][0]["frame_id"] == "camera_optical_frame"
    detector = by_package["vtb_detector"]
    assert ("image", "/camera/image_raw") in detector["remappings"], "the detector reads the driver's images"
    assert ("camera_info", "/camera/camera_info") in by_package["vtb_pose"]["remappings"]
    assert by_package["rviz2"]["arguments"] == ["-d", "/share/vtb_viz/rviz/vtb.rviz"]
    with pytest.raises(RuntimeError, match="camera_driver"):
        launch_nodes(launch, {"camera": "/dev/video0", "camera_driver": "gstreamer"})


def test_rviz_without_vtb_viz_says_what_to_install(launch_api, monkeypatch):
    """The view is in vtb_viz (rviz2 is its dependency, not vtb_bringup's): rviz:=true on a
    machine without it names what is missing."""
    from ament_index_python.packages import PackageNotFoundError
    launch = load_launch_file()

    def share(pkg):
        raise PackageNotFoundError(pkg)
    monkeypatch.setitem(sys.modules, "ament_index_python.packages",
                        types.SimpleNamespace(get_package_share_directory=share,
                                              PackageNotFoundError=PackageNotFoundError))
    with pytest.raises(RuntimeError, match="rviz:=true needs the vtb_viz package and rviz2"):
        launch_nodes(launch, {"rviz": "true"})
    assert not [n for n in launch_nodes(launch, {}) if n.kwargs["package"] == "rviz2"]


def test_graph_arguments_change_the_graph_and_bad_ones_are_named(tmp_path):
    default = {s.name: s for s in graph.resolve()}
    assert default["vtb_detector"].namespace == "/vtb" and default["vtb_detector"].remappings == []
    assert default["vtb_bridge"].parameters["server_enabled"] is True
    moved = {s.name: s for s in graph.resolve({"image_topic": "/cam/image_raw", "outputs": "none"})}
    assert moved["vtb_detector"].remappings == [("image", "/cam/image_raw")]
    assert moved["vtb_gaze"].remappings == [("camera_info", "/cam/camera_info")]
    assert not any(moved["vtb_bridge"].parameters[p] for p in graph.OUTPUTS.values())
    assert graph.resolve_topics({"image_topic": "/cam/image_raw"}) == \
        {"image": "/cam/image_raw", "camera_info": "/cam/camera_info"}
    assert graph.resolve_topics() == {"image": "/vtb/image", "camera_info": "/vtb/camera_info"}
    # compressed input is an argument (the detector then reads <image_topic>/compressed)
    assert "input_compressed" not in default["vtb_detector"].parameters
    squeezed = {s.name: s for s in graph.resolve({"image_topic": "/cam/image_raw", "input_compressed": "true"})}
    assert squeezed["vtb_detector"].parameters["input_compressed"] is True
    assert build_parser().parse_args(["run", "--input-compressed", "true"]).input_compressed == "true"
    for args, words in [({"outputs": "vmc,hologram"}, "unknown hologram"), ({"use_sim_time": "maybe"}, "use_sim_time"),
                        ({"input_compressed": "jpeg"}, "input_compressed: expected true or false"),
                        ({"colour": "red"}, "unknown graph argument"), ({"config": str(tmp_path / "x.yaml")},
                                                                        "x.yaml does not exist")]:
        with pytest.raises(graph.GraphError, match=words):
            graph.resolve(args)
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  - name: a\n    package: vtb_pose\n")
    with pytest.raises(graph.GraphError, match="lacks executable"):
        graph.resolve({"config": str(bad)})


def test_runner_starts_the_resolved_graph_over_dds(ros, start_process):
    """The runner, given non-default options, puts on the graph the nodes the launch file would
    start: names, namespace, every parameter value, and the remapped subscriptions."""
    options = ["--model", "full", "--image-topic", "/usb_cam/image_raw", "--outputs", "vmc", "--namespace", "studio"]
    proc = start_process([sys.executable, "-m", "vtb_bringup.cli", "run", *options, "--stats-every", "0"],
                         name="vtb-run")
    for spec in runner_specs(options):
        ros.wait_for_node(spec.name, spec.namespace, timeout=60)
        got = ros.parameters_of(f"{spec.namespace}/{spec.name}")
        for name, value in spec.parameters.items():
            if name != "use_sim_time":   # parameters_of leaves it out; the case above covers it
                assert got[name][0] == value, f"{spec.name}.{name}"
    subs = dict(ros.node.get_subscriber_names_and_types_by_node("vtb_detector", "/studio"))
    assert "/usb_cam/image_raw" in subs
    subs = dict(ros.node.get_subscriber_names_and_types_by_node("vtb_pose", "/studio"))
    assert "/usb_cam/camera_info" in subs and "/studio/faces" in subs
    assert proc.alive() and proc.stop() == 0, proc.output()
