"""vtb_viz's rviz/vtb.rviz, the RViz2 config `ros2 launch vtb_bringup vtb.launch.py rviz:=true` opens, checked
against the graph without rviz2 or ROS: every display is one rviz_default_plugins has, every topic
it subscribes to is published by a node of the graph with the message type the display reads and
a QoS it can receive, and its fixed frame is the camera frame the launch file gives the driver.

What the graph publishes is read statically from the node sources (create_publisher calls in
each node's module and in the vtb modules it imports), resolved as the nodes run: in the
namespace and with the remappings of graph.resolve(), and only where the parameter a
publisher depends on (`... if p["publish_markers"] else None`) is on in config/vtb.yaml.
"""
from __future__ import annotations

import ast
import importlib.util
import math
import re
from fnmatch import fnmatch
from pathlib import Path

import yaml

from vtb_bringup import graph

PACKAGE = Path(__file__).resolve().parents[1]     # src/vtb_bringup
SRC = PACKAGE.parent                               # src
VIZ = SRC / "vtb_viz"                              # the view: a package of its own (rviz2)
RVIZ = VIZ / "rviz" / "vtb.rviz"

# rviz_default_plugins' displays (Jazzy, plugins_description.xml) -> the message type each reads
# (None: no topic of its own; TF reads /tf and /tf_static)
DISPLAYS = {
    "AccelStamped": "geometry_msgs/msg/AccelStamped", "Axes": None, "Camera": "sensor_msgs/msg/Image",
    "CameraInfo": "sensor_msgs/msg/CameraInfo", "DepthCloud": "sensor_msgs/msg/Image",
    "Effort": "sensor_msgs/msg/JointState", "FluidPressure": "sensor_msgs/msg/FluidPressure", "Grid": None,
    "GridCells": "nav_msgs/msg/GridCells", "Illuminance": "sensor_msgs/msg/Illuminance",
    "Image": "sensor_msgs/msg/Image", "InteractiveMarkers": "visualization_msgs/msg/InteractiveMarkerUpdate",
    "LaserScan": "sensor_msgs/msg/LaserScan", "Map": "nav_msgs/msg/OccupancyGrid",
    "Marker": "visualization_msgs/msg/Marker", "MarkerArray": "visualization_msgs/msg/MarkerArray",
    "Odometry": "nav_msgs/msg/Odometry", "Path": "nav_msgs/msg/Path", "PointCloud": "sensor_msgs/msg/PointCloud",
    "PointCloud2": "sensor_msgs/msg/PointCloud2", "PointStamped": "geometry_msgs/msg/PointStamped",
    "Polygon": "geometry_msgs/msg/PolygonStamped", "Pose": "geometry_msgs/msg/PoseStamped",
    "PoseArray": "geometry_msgs/msg/PoseArray", "PoseWithCovariance": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "Range": "sensor_msgs/msg/Range", "RelativeHumidity": "sensor_msgs/msg/RelativeHumidity",
    "RobotModel": None, "TF": None, "Temperature": "sensor_msgs/msg/Temperature",
    "TwistStamped": "geometry_msgs/msg/TwistStamped", "Wrench": "geometry_msgs/msg/WrenchStamped",
}
DISPLAY_CLASSES = {f"rviz_default_plugins/{name}" for name in DISPLAYS}

# rclpy QoS names -> reliability, for the QoS arguments vtb's publishers use
PRESET_RELIABILITY = {"qos_profile_sensor_data": "best_effort", "qos_profile_system_default": "reliable"}


def load_config() -> dict:
    return yaml.safe_load(RVIZ.read_text())


def displays(config) -> list[dict]:
    return config["Visualization Manager"]["Displays"]


def load_launch_file():
    spec = importlib.util.spec_from_file_location("vtb_launch", PACKAGE / "launch" / "vtb.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# what the graph publishes, from the sources

def _parents(tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


def _enabling_parameter(call, parents):
    """The parameter a call depends on: `X if p["name"] else None` (p or self.p), else None."""
    node = call
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.IfExp) and node is parent.body:
            test = parent.test
            if isinstance(test, ast.Subscript) and isinstance(test.slice, ast.Constant):
                return test.slice.value
        node = parent
    return None


def _module_file(module: str) -> Path | None:
    path = SRC / module.split(".")[0] / Path(*module.split(".")).with_suffix(".py")
    return path if path.is_file() else None


def _reliability(arg, constants) -> str:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, int):
        return "reliable"                                  # a depth: rclpy's default profile
    if isinstance(arg, ast.Name) and arg.id in PRESET_RELIABILITY:
        return PRESET_RELIABILITY[arg.id]
    if isinstance(arg, ast.Name) and isinstance(constants.get(arg.id), ast.Call):   # X = QoSProfile(...)
        for kw in constants[arg.id].keywords:
            if kw.arg == "reliability" and isinstance(kw.value, ast.Attribute):
                return kw.value.attr.lower()
        return "reliable"
    raise AssertionError(f"cannot tell the reliability of QoS {ast.unparse(arg)}")


def publishers_in(path: Path, package: str):
    """(message type, topic name or pattern, reliability, enabling parameter, imported vtb modules)
    of every create_publisher call in one module."""
    tree = ast.parse(path.read_text())
    parents = _parents(tree)
    types, imported, constants = {}, {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = f"{package}.{node.module}" if node.level else node.module
            for alias in node.names:
                if node.module.endswith(".msg"):
                    types[alias.asname or alias.name] = f"{node.module.split('.')[0]}/msg/{alias.name}"
                elif module.startswith("vtb_"):
                    imported[alias.asname or alias.name] = module
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            constants[node.targets[0].id] = value.value if isinstance(value, ast.Constant) else value
    found = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "create_publisher"):
            continue
        args = list(call.args) + [kw.value for kw in call.keywords]
        msg_type, name, qos = args[:3]
        assert isinstance(msg_type, ast.Name) and msg_type.id in types, ast.unparse(call)
        if isinstance(name, ast.Constant):
            topic = name.value
        elif isinstance(name, ast.Name) and isinstance(constants.get(name.id), str):
            topic = constants[name.id]
        elif isinstance(name, ast.JoinedStr):              # f"faces/{face_id}/head_pose": one per face
            topic = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in name.values)
        else:
            raise AssertionError(f"cannot resolve the topic of {ast.unparse(call)}")
        found.append((types[msg_type.id], topic, _reliability(qos, constants), _enabling_parameter(call, parents)))
    # vtb classes this module instantiates, each with the parameter that turns it on
    uses = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in imported:
            uses[imported[call.func.id]] = _enabling_parameter(call, parents)
    return found, uses


def executable_module(package: str, executable: str) -> str:
    setup = (SRC / package / "setup.py").read_text()
    m = re.search(rf"['\"]{re.escape(executable)}\s*=\s*([\w.]+):(\w+)['\"]", setup)
    assert m, f"{package}/setup.py has no console script {executable}"
    module, function = m.groups()
    # an entry module (vtb_<pkg>.entry) only imports the node: follow its start("module", ...)
    for node in ast.parse(_module_file(module).read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for call in ast.walk(node):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "start"
                        and call.args and isinstance(call.args[0], ast.Constant)):
                    return call.args[0].value
    return module


def graph_publications() -> dict:
    """{topic or pattern: (message type, reliability, node)} of the default graph as launched."""
    out = {}
    for spec in graph.resolve():
        module = executable_module(spec.package, spec.executable)
        found, uses = publishers_in(_module_file(module), spec.package)
        for used, condition in uses.items():               # e.g. vtb_pose.tf_broadcast: /tf
            path = _module_file(used)
            if path is not None:
                found += [(t, n, r, condition) for t, n, r, _ in publishers_in(path, used.split(".")[0])[0]]
        remap = dict(spec.remappings)
        for msg_type, name, reliability, condition in found:
            if condition is not None and not spec.parameters.get(condition, False):
                continue                                   # turned off in config/vtb.yaml
            topic = graph.topic_name(spec.namespace, remap.get(name, name))
            out[topic] = (msg_type, reliability, spec.name)
    return out


def published(topic, publications):
    for name, value in publications.items():
        if fnmatch(topic, name):
            return value
    return None


# ----------------------------------------------------------------------------------------------

def test_the_source_reading_finds_the_graphs_known_outputs():
    """Guards the test itself: a reader that finds nothing would make the checks below vacuous."""
    pubs = graph_publications()
    # reliable, depth 1: RViz's and rqt_image_view's reliable subscriptions get it
    assert pubs["/vtb/debug_image"] == ("sensor_msgs/msg/Image", "reliable", "vtb_detector")
    assert pubs["/vtb/markers"][:2] == ("visualization_msgs/msg/MarkerArray", "reliable")
    assert pubs["/vtb/gaze_markers"][:2] == ("visualization_msgs/msg/MarkerArray", "reliable")
    assert pubs["/tf"][0] == "tf2_msgs/msg/TFMessage"
    assert published("/vtb/faces/a1b2/head_pose", pubs)[0] == "geometry_msgs/msg/PoseStamped"


def test_installed_where_the_launch_file_looks():
    tree = ast.parse((VIZ / "setup.py").read_text())
    names = {n.targets[0].id: n.value.value for n in tree.body
             if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)}

    def text(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        assert isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add), ast.unparse(node)
        return text(node.left) + text(node.right)

    installs = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[1], ast.Call) \
                and getattr(node.elts[1].func, "id", "") == "glob":
            installs[text(node.elts[0])] = node.elts[1].args[0].value
    assert "share/vtb_viz/rviz" in installs, installs
    assert fnmatch(str(RVIZ.relative_to(VIZ)), installs["share/vtb_viz/rviz"])
    launch = (PACKAGE / "launch" / "vtb.launch.py").read_text()
    assert "get_package_share_directory('vtb_viz')}/rviz/vtb.rviz" in launch


def test_a_real_rviz2_config():
    config = load_config()
    assert {p["Class"] for p in config["Panels"]} >= {"rviz_common/Displays", "rviz_common/Views"}
    manager = config["Visualization Manager"]
    assert manager["Enabled"] is True and manager["Tools"]
    assert all(t["Class"].startswith("rviz_default_plugins/") for t in manager["Tools"])
    assert config["Window Geometry"]["Width"] > 0 and config["Window Geometry"]["Height"] > 0
    names = [d["Name"] for d in displays(config)]
    assert len(names) == len(set(names)), "display names name their panels: keep them unique"
    # every display docked in the saved window state exists (Qt finds docks by name)
    state = bytes.fromhex(str(config["Window Geometry"]["QMainWindow State"]))
    assert "Debug Image".encode("utf-16-be") in state


def test_every_display_is_an_rviz_default_plugins_display():
    config = load_config()
    classes = [d["Class"] for d in displays(config)]
    assert set(classes) <= DISPLAY_CLASSES, set(classes) - DISPLAY_CLASSES
    for needed in ("Grid", "TF", "Image"):
        assert classes.count(f"rviz_default_plugins/{needed}") == 1, needed
    assert classes.count("rviz_default_plugins/MarkerArray") == 2
    tf = next(d for d in displays(config) if d["Class"] == "rviz_default_plugins/TF")
    assert tf["Show Names"] is True and tf["Show Axes"] is True and tf["Frames"]["All Enabled"] is True
    assert config["Visualization Manager"]["Views"]["Current"]["Class"] == "rviz_default_plugins/Orbit"


def test_every_topic_is_published_with_the_type_the_display_reads():
    pubs = graph_publications()
    topics = []
    for d in displays(load_config()):
        expected = DISPLAYS[d["Class"].split("/", 1)[1]]
        if d["Class"] == "rviz_default_plugins/TF":
            assert pubs.get("/tf", (None,))[0] == "tf2_msgs/msg/TFMessage", "nothing in the graph sends /tf"
            continue
        if expected is None:
            continue
        topic = d["Topic"]["Value"]
        source = published(topic, pubs)
        assert source is not None, f"{d['Name']}: nothing in the graph publishes {topic}"
        assert source[0] == expected, f"{d['Name']}: {topic} carries {source[0]}, the display reads {expected}"
        topics.append(topic)
    assert sorted(topics) == ["/vtb/debug_image", "/vtb/gaze_markers", "/vtb/markers"]


def test_every_subscription_can_receive_from_its_publisher():
    pubs = graph_publications()
    for d in displays(load_config()):
        if "Topic" not in d:
            continue
        qos = d["Topic"]
        source = published(qos["Value"], pubs)
        assert source is not None, f"{d['Name']}: nothing in the graph publishes {qos['Value']}"
        reliability = source[1]
        # a reliable subscription gets nothing from a best-effort publisher; vtb publishes volatile
        if reliability == "best_effort":
            assert qos["Reliability Policy"] == "Best Effort", d["Name"]
        assert qos["Reliability Policy"] in ("Reliable", "Best Effort"), d["Name"]
        assert qos["Durability Policy"] == "Volatile", d["Name"]
        assert qos["History Policy"] == "Keep Last" and qos["Depth"] > 0, d["Name"]
    image = next(d for d in displays(load_config()) if d["Class"] == "rviz_default_plugins/Image")
    assert image["Topic"]["Reliability Policy"] == "Best Effort"


def test_fixed_frame_is_the_camera_frame():
    config = load_config()
    frame = load_launch_file().CAMERA_FRAME
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == frame == "camera_optical_frame"
    grid = next(d for d in displays(config) if d["Class"] == "rviz_default_plugins/Grid")
    assert grid["Reference Frame"] == "<Fixed Frame>"
    assert config["Visualization Manager"]["Views"]["Current"]["Target Frame"] == "<Fixed Frame>"


def test_the_view_looks_at_a_face_in_front_of_the_camera():
    """The Orbit view as rviz places it (OrbitViewController::updateCamera: eye = focal +
    distance * (cos yaw cos pitch, sin yaw cos pitch, sin pitch), up axis the frame's z), in the
    optical frame (REP-103: z forward, x right, y down): it faces a face ~0.5 m ahead from
    behind the camera, upright and not mirrored."""
    view = load_config()["Visualization Manager"]["Views"]["Current"]
    assert view["Invert Z Axis"] is False
    focal = [float(view["Focal Point"][k]) for k in "XYZ"]
    assert abs(focal[0]) < 0.05 and abs(focal[1]) < 0.05 and 0.4 <= focal[2] <= 0.6
    d, yaw, pitch = float(view["Distance"]), float(view["Yaw"]), float(view["Pitch"])
    assert abs(pitch) < math.pi / 2 - 0.001 and 0.3 < d < 3
    eye = [focal[0] + d * math.cos(yaw) * math.cos(pitch), focal[1] + d * math.sin(yaw) * math.cos(pitch),
           focal[2] + d * math.sin(pitch)]
    fwd = [(f - e) / d for f, e in zip(focal, eye)]
    assert eye[2] < 0 and fwd[2] > 0.7, "behind the camera, looking forward at the face's front"
    # Ogre with a fixed yaw axis z: screen right = fwd x z, screen up = z's part across fwd
    right = [fwd[1], -fwd[0], 0.0]
    up = [0 - fwd[2] * fwd[0], 0 - fwd[2] * fwd[1], 1 - fwd[2] * fwd[2]]
    norm = math.hypot(*right), math.hypot(*up)
    right, up = [v / norm[0] for v in right], [v / norm[1] for v in up]
    # on screen, the image's right (+x) points right and its up (-y) points up, within 20 degrees
    x_on_screen = (right[0], up[0])
    up_on_screen = (-right[1], -up[1])
    assert x_on_screen[0] > 0 and math.degrees(math.atan2(abs(x_on_screen[1]), x_on_screen[0])) < 20, \
        f"+x shows as {x_on_screen} on screen (right, up): the view should not be mirrored or rolled"
    assert up_on_screen[1] > 0 and math.degrees(math.atan2(abs(up_on_screen[0]), up_on_screen[1])) < 20, \
        f"-y shows as {up_on_screen} on screen (right, up): faces should look upright"
    # the camera's origin is in the picture too (the TF axes of camera_optical_frame)
    to_origin = [-e for e in eye]
    cos = sum(a * b for a, b in zip(fwd, to_origin)) / math.hypot(*to_origin)
    assert cos > math.cos(math.radians(35)), "the camera itself should be inside the view"
