"""The vtb graph as data: config/vtb.yaml plus the start-up arguments, resolved into node specs.

Both ways of starting vtb call `resolve()` with their arguments: the launch file
(launch/vtb.launch.py, one process per node on a ROS 2 install) and the one-process runner
(`./vtb run`). The arguments themselves, with their defaults and descriptions, are listed once
in ARGUMENTS. No rclpy and no launch here: this is plain data, so it is tested without either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

# (name, default, description): declared as launch arguments and as ./vtb run options
ARGUMENTS = [
    ("config", "", "graph YAML; empty: vtb_bringup's config/vtb.yaml"),
    ("namespace", "", "namespace of every vtb topic; empty: the YAML's (vtb)"),
    ("image_topic", "", "camera image topic the detector reads (camera_info is taken next to it); "
                        "empty: <namespace>/image"),
    ("model", "", "face detector: short (within about 2 m), full (far and small faces), auto (both) or "
                  "retinaface (trained RetinaFace; scale and levels in the YAML); "
                  "empty: the YAML's"),
    ("landmark_model", "", "landmark model: face_landmarker (MediaPipe Face Landmarker's 478 points, the "
                           "YAML's default) or face_mesh (468-point mesh + iris); empty: the YAML's"),
    ("input_compressed", "", "true: the detector takes sensor_msgs/CompressedImage from <image_topic>/compressed "
                             "(image_transport's name); empty: the YAML's (false: raw images)"),
    ("backend", "", "inference backend: auto (LiteRT on the CPU), litert or onnxruntime; empty: the YAML's"),
    ("provider", "", "ONNX Runtime execution provider: cpu, cuda or tensorrt (falls back to cpu); empty: the YAML's"),
    ("outputs", "", "comma list of avatar outputs to turn on: server, vmc, vtube_studio, joint_states; "
                    "'none' turns all off; empty: as the YAML says"),
    ("socketio_url", "", "Socket.IO server to stream result_data to (e.g. http://127.0.0.1:6789); empty: off"),
    ("vrm", "", "your VRM model (.vrm, 0.x or 1.0) for the built-in avatar page (the bridge's vrm_file); "
                "empty: vtb's default 3D character"),
    ("use_sim_time", "false", "take time from /clock (a bag played with ros2 bag play --clock; "
                              "./vtb run --bag sets it)"),
]
DEFAULTS = {name: default for name, default, _ in ARGUMENTS}

# frame_id of the images vtb's own sources publish and the launch file's camera driver sets:
# the parent of every face_<id> and gaze_<id> frame
CAMERA_FRAME = "camera_optical_frame"

# outputs argument -> the bridge parameter it turns on
OUTPUTS = {"server": "server_enabled", "vmc": "vmc_enabled", "vtube_studio": "vtube_studio_enabled",
           "joint_states": "joint_states_enabled"}


class GraphError(ValueError):
    """A graph YAML or an argument that cannot be used; the message says which and why."""


@dataclass
class NodeSpec:
    """One node as both launchers start it."""
    name: str
    package: str
    executable: str
    namespace: str
    parameters: dict = field(default_factory=dict)
    remappings: list = field(default_factory=list)   # [(from, to)], in order


def default_config() -> Path:
    try:
        from ament_index_python.packages import get_package_share_directory
        path = Path(get_package_share_directory("vtb_bringup")) / "config" / "vtb.yaml"
        if path.exists():
            return path
    except Exception:  # not installed: the source tree
        pass
    return Path(__file__).resolve().parent.parent / "config" / "vtb.yaml"


def as_bool(text, name: str = "use_sim_time") -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise GraphError(f"{name}: expected true or false, got {text!r}")


def camera_info_next_to(image_topic: str) -> str:
    """The CameraInfo topic a camera driver publishes beside its images (image_transport's
    convention): /camera/image_raw -> /camera/camera_info."""
    head, _, _ = image_topic.rpartition("/")
    return f"{head}/camera_info" if head else "camera_info"


def _load(arguments: dict | None):
    """(arguments with defaults, config path, YAML document, namespace, input topics)."""
    args = {**DEFAULTS, **{k: v for k, v in (arguments or {}).items() if v is not None}}
    unknown = set(args) - set(DEFAULTS)
    if unknown:
        raise GraphError(f"unknown graph argument(s): {', '.join(sorted(unknown))}")
    path = Path(args["config"]) if args["config"] else default_config()
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GraphError(f"graph config {path} does not exist") from None
    except yaml.YAMLError as e:
        raise GraphError(f"graph config {path} is not valid YAML: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise GraphError(f"graph config {path}: expected a mapping with a 'nodes' list")
    namespace = "/" + (args["namespace"] or doc.get("namespace", "")).strip("/")
    topics = {"image": doc.get("image", "image"), "camera_info": doc.get("camera_info", "camera_info")}
    if args["image_topic"]:
        topics = {"image": args["image_topic"], "camera_info": camera_info_next_to(args["image_topic"])}
    return args, path, doc, namespace, topics


def resolve_topics(arguments: dict | None = None) -> dict:
    """The graph's input topics (image, camera_info) as absolute names."""
    _, _, _, namespace, topics = _load(arguments)
    return {k: topic_name(namespace, v) for k, v in topics.items()}


def resolve(arguments: dict | None = None) -> list[NodeSpec]:
    """The graph's nodes with `arguments` (ARGUMENTS' names, string values as a launch file
    gets them; missing ones take their defaults) applied."""
    args, path, doc, namespace, topics = _load(arguments)
    bridge_outputs = None
    if args["outputs"]:
        names = [n.strip() for n in args["outputs"].split(",") if n.strip()]
        if names != ["none"]:
            bad = [n for n in names if n not in OUTPUTS]
            if bad:
                raise GraphError(f"outputs: unknown {', '.join(bad)}; choose from {', '.join(OUTPUTS)} or none")
        bridge_outputs = {param: name in names for name, param in OUTPUTS.items()}
    use_sim_time = as_bool(args["use_sim_time"])

    specs = []
    for entry in doc["nodes"]:
        missing = [k for k in ("name", "package", "executable") if not entry.get(k)]
        if missing:
            raise GraphError(f"graph config {path}: a node lacks {', '.join(missing)}: {entry}")
        params = dict(entry.get("parameters") or {})
        if entry["package"] == "vtb_detector":
            params.update({name: args[name] for name in ("model", "landmark_model", "backend", "provider")
                           if args[name]})
            if args["input_compressed"]:
                params["input_compressed"] = as_bool(args["input_compressed"], "input_compressed")
        if entry["package"] == "vtb_bridge":
            if bridge_outputs is not None:
                params.update(bridge_outputs)
            if args["socketio_url"]:
                params["socketio_url"] = args["socketio_url"]
            if args["vrm"]:
                from vtb_bridge.vrm_file import vrm_problem
                problem = vrm_problem(args["vrm"])
                if problem:
                    raise GraphError(f"vrm: {problem}")
                params["vrm_file"] = str(Path(args["vrm"]).expanduser().resolve())
        params["use_sim_time"] = use_sim_time
        remappings = []
        for src, dst in (entry.get("remappings") or {}).items():
            dst = str(dst)
            if dst.startswith("$"):
                if dst[1:] not in topics:
                    raise GraphError(f"graph config {path}: {entry['name']} remaps {src} to unknown {dst}")
                dst = topics[dst[1:]]
            if dst != src:   # remapping a name to itself is no remapping
                remappings.append((src, dst))
        specs.append(NodeSpec(entry["name"], entry["package"], entry["executable"], namespace, params, remappings))
    return specs


def topic_name(namespace: str, name: str) -> str:
    """A relative topic name resolved in `namespace`, as rclpy resolves it."""
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"

