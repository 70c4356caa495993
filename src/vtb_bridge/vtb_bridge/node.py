"""vtb_bridge node: perception in, avatar parameters and their outputs out.

A thin adapter around the rclpy-free AvatarMapper and RobotHead. Topics (relative):
  faces, head_poses, gaze, face_state     vtb_msgs inputs, matched by header stamp; a missing
                                          one (no pose, no gaze) is tolerated
  avatar_parameters                       vtb_msgs/AvatarParameters (Live2D standard names)
  joint_states                            sensor_msgs/JointState for a robot head (joint_states_enabled)
Outputs, each switched on by a parameter: a Socket.IO client (socketio_url), the built-in avatar
page and Socket.IO server (server_enabled), VMC over OSC (vmc_enabled), VTube Studio's plugin
API (vtube_studio_enabled). The largest face drives the avatar; when it is lost, the parameters
ease back to neutral.
Services: calibrate_neutral (std_srvs/Trigger: the current head pose and gaze become the
          avatar's rest; the built-in page's button asks the same over its Socket.IO connection),
          reset_neutral (std_srvs/Trigger: back to the pose as measured). Kept until restart.
Inputs are checked here: a head pose that is not valid, not finite, out of range (angles over
180 deg) or placed behind the camera, a gaze that is not finite or over 90 deg, and face-state
fields that are not finite are skipped (the rest of the image's perception still goes out),
counted in `rejected` (per part) and logged at most every 5 s. The mapper checks again, and
an AvatarParameters message or output frame holding a non-finite number is never sent.
Every output message carries its image's stamp and frame_id, once (part_matcher): an image
that went out without its face state (face_state came more than match_wait_s after the rest)
does not go out a second time when it comes, and a pose-only image keeps its stamp. The late
face state is not lost: the next image that goes out without its own carries it.
/diagnostics: "vtb_bridge: avatar": perception arriving, avatar frames out (an image without a
face counts as handled), time per image, the outputs' state (vtb_common.diagnostics).
Parameters (vtb_common.parameters): live ones are checked and applied on set (LIVE), the others
are read-only; a value given at start is checked the same way (STARTUP_CHECKS): a bad one
(vmc_port 70000) stops the node with the reason, exit code 3.
"""
import math
import sys
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from vtb_common.diagnostics import DiagnosticsPublisher, StageHealth
from vtb_common.node_main import run_node
from vtb_common.parameters import ParameterError, any_value, declare_parameters, in_range
from vtb_msgs.msg import AvatarParameters, FaceArray, FaceStateArray, GazeArray, HeadPoseArray

from . import avatar_settings
from .avatar_params import AvatarMapper, Inputs, RobotHead, load_config
from .avatar_server import parse_allowed_hosts
from .part_matcher import PartMatcher, header_source, part_of, stamp_seconds
from .vrm_file import vrm_problem

PARAMETERS = [
    ("config_file", "", "avatar YAML (gains, ranges, mirroring, smoothing, robot joints); empty: the package's config/avatar.yaml"),
    ("mirror", True, "mirror left and right, so the avatar moves like a mirror image of the user (overrides the YAML; a page setting)"),
    ("head_sensitivity", 1.0, "the head's motion scaled, 0..3 (1: as measured; a page setting)"),
    ("eye_sensitivity", 1.0, "the gaze scaled, 0..3 (a page setting)"),
    ("smoothing", 1.0, "every avatar parameter's time constant scaled, 0..5 (1: the YAML's, 0: none; a page setting)"),
    ("settings_file", "", "where the page settings (mirror, sensitivities, smoothing) are kept across restarts; empty: ~/.config/vtb/avatar_settings.json; 'none': not kept"),
    ("lost_after_s", 0.3, "after this long without the face, the parameters ease back to neutral, seconds"),
    ("match_wait_s", 0.05, "how long an image's perception waits for its missing parts (pose, gaze) before going out, seconds"),
    ("socketio_url", "", "Socket.IO server to stream result_data to (namespace /kizuna), e.g. http://127.0.0.1:6789; empty: off"),
    ("socketio_protocol", "auto", "Socket.IO protocol of socketio_url's server: auto (ask the server: one Engine.IO 4 handshake, which a socket.io 2 server answers the Engine.IO 3 way), v2 (socket.io 2.x servers, Engine.IO 3: the original toolkit's NodeServer), v3 (socket.io 3.x and 4.x, Engine.IO 4: upstream OpenVtuber's NodeServer; v4 means the same)"),
    ("server_enabled", False, "serve the built-in avatar page and Socket.IO server"),
    ("server_host", "127.0.0.1", "address the built-in server binds (127.0.0.1: this machine only)"),
    ("server_port", 8000, "port of the built-in server"),
    ("server_token", "", "when set, clients of the built-in server must present this token"),
    ("server_allowed_hosts", "", "comma-separated host or host:port names the built-in server also answers to (its Host header), besides its own address (127.0.0.1, localhost, [::1]; bound to 0.0.0.0 also this machine's); other Hosts get 403 (DNS rebinding); * turns the check off"),
    ("vrm_file", "", "your VRM model (.vrm, 0.x or 1.0) for the built-in page, served as /model.vrm; empty: vtb's default 3D character (a .vrm can also be dropped on the page)"),
    ("vmc_enabled", False, "send the VMC protocol over OSC/UDP"),
    ("vmc_host", "127.0.0.1", "VMC receiver host"),
    ("vmc_port", 39539, "VMC receiver port"),
    ("vmc_perfect_sync", True, "VMC: also send the 52 ARKit blendshapes (perfect sync: eyeBlinkLeft, jawOpen, ...) after the VRM presets"),
    ("vmc_expressions", "vrm0", "VMC blend shape names: vrm0 (VRM 0.x presets: Blink_L, A, LookLeft, ...) or vrm1 (VRM 1.0 expressions: blinkLeft, aa, lookLeft, ...)"),
    ("vtube_studio_enabled", False, "inject parameters into VTube Studio through its plugin API"),
    ("vtube_studio_url", "ws://localhost:8001", "VTube Studio plugin API WebSocket"),
    ("joint_states_enabled", False, "publish sensor_msgs/JointState for a robot head"),
]

PARTS = ("faces", "head_poses", "gaze", "face_state")


def host_check(v):
    v = str(v)
    if not v.strip() or any(c.isspace() for c in v) or len(v) > 253:
        return f"must be a host name or address, got {v!r}"
    return None


def allowed_hosts_check(v):
    try:
        parse_allowed_hosts(v)
    except ValueError as e:
        return str(e)
    return None


# applied on set (see _apply_parameters); every other parameter is read-only
LIVE = {
    "lost_after_s": in_range(0.0, 60.0, lo_open=True),
    "match_wait_s": in_range(0.0, 1.0),
    "server_allowed_hosts": allowed_hosts_check,
    "vmc_host": host_check,
    "vmc_port": in_range(1, 65535),
    "vmc_perfect_sync": any_value,
    "mirror": lambda v: avatar_settings.check("mirror", v),
    "head_sensitivity": lambda v: avatar_settings.check("head_sensitivity", v),
    "eye_sensitivity": lambda v: avatar_settings.check("eye_sensitivity", v),
    "smoothing": lambda v: avatar_settings.check("smoothing", v),
}
# the read-only ones also checked at start (declare_parameters checks the live ones there too)
STARTUP_CHECKS = {"server_port": in_range(0, 65535), "server_host": host_check,
                  "vrm_file": lambda v: vrm_problem(v) if v else None}


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def pose_ok(p) -> bool:
    """A usable HeadPose: valid, finite, angles within 180 deg, not behind the camera (z == 0
    means the position was not filled in)."""
    pos, q = p.pose.position, p.pose.orientation
    return (bool(p.valid) and _finite(p.yaw_deg, p.pitch_deg, p.roll_deg, pos.x, pos.y, pos.z, q.x, q.y, q.z, q.w)
            and max(abs(p.yaw_deg), abs(p.pitch_deg), abs(p.roll_deg)) <= 180.0 and pos.z >= 0.0)


def gaze_ok(g) -> bool:
    return (bool(g.left_valid or g.right_valid) and _finite(g.combined_yaw_deg, g.combined_pitch_deg)
            and abs(g.combined_yaw_deg) <= 90.0 and abs(g.combined_pitch_deg) <= 90.0)


class BridgeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_bridge", **kwargs)
        p = declare_parameters(self, PARAMETERS, LIVE, self._apply_parameters, start_checks=STARTUP_CHECKS)
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in p.items()))
        self.p = p
        config = load_config(p["config_file"] or self.default_config())
        # the page's settings: the file's, where the parameter was left at its default
        self.settings_path = None if p["settings_file"] == "none" else \
            Path(p["settings_file"]).expanduser() if p["settings_file"] else avatar_settings.default_path()
        saved = avatar_settings.load(self.settings_path)
        self.settings_not_kept = None      # why the last settings change could not be written
        # a value given at start wins over a saved one, even when it is the default: rclpy keeps
        # the values given at start (command line, parameters file, launch) in _parameter_overrides
        given = set(getattr(self, "_parameter_overrides", {}))
        settings = {n: saved[n] if n in saved and n not in given else p[n] for n in avatar_settings.DEFAULTS}
        config.update(settings)
        self.config = config
        self.mapper = AvatarMapper(config)
        self.robot = RobotHead(config.get("robot_head")) if p["joint_states_enabled"] else None
        self.matcher = PartMatcher(PARTS, p["match_wait_s"])   # an image's parts, by stamp
        self.last_seen = None        # node-clock seconds of the last frame with the face (sim time too)
        self.last_frame_id = ""      # the frame_id of the last image's output
        self.rejected = {"head_poses": 0, "gaze": 0, "face_state": 0, "avatar_parameters": 0}
        self.outputs = self.make_outputs(p)

        self.params_pub = self.create_publisher(AvatarParameters, "avatar_parameters", 10)
        self.joints_pub = self.create_publisher(JointState, "joint_states", 10) if self.robot else None
        for part, msg_type in zip(PARTS, (FaceArray, HeadPoseArray, GazeArray, FaceStateArray)):
            self.create_subscription(msg_type, part, lambda m, part=part: self.on_part(part, m), 10)
        self.create_timer(1 / 100, self.flush)
        self.create_service(Trigger, "calibrate_neutral", self.on_calibrate_neutral)
        self.create_service(Trigger, "reset_neutral", self.on_reset_neutral)
        self.connect_page_commands()
        restored = [Parameter(n, value=v) for n, v in settings.items() if v != p[n]]
        if restored:   # so `ros2 param get` says what is in effect
            self.set_parameters(restored)
            self.get_logger().info(f"page settings from {self.settings_path}: " +
                                   ", ".join(f"{q.name}={q.value!r}" for q in restored))
        self.publish_settings()
        # the page server starts last: a page that connects at once finds its commands
        # (connect_page_commands) and the settings in place; started in make_outputs, a
        # "settings" sent in the first moments was refused as an unknown event
        for out in self.outputs:
            if hasattr(out, "commands"):
                self.get_logger().info(f"avatar page: {out.start()}")
        self.health = StageHealth("avatar", latency_warn_s=0.05)
        self.diagnostics = DiagnosticsPublisher(self, [self.health], values=self._diagnostic_values)
        self.create_timer(1 / 30, self.ease_when_lost)

    @staticmethod
    def default_config() -> Path:
        try:
            from ament_index_python.packages import get_package_share_directory
            return Path(get_package_share_directory("vtb_bridge")) / "config" / "avatar.yaml"
        except Exception:  # running from the source tree
            return Path(__file__).resolve().parent.parent / "config" / "avatar.yaml"

    def make_outputs(self, p):
        outputs = []
        if p["socketio_url"]:
            from .socketio_output import SocketIOOutput
            outputs.append(SocketIOOutput(p["socketio_url"], protocol=p["socketio_protocol"]))
        if p["server_enabled"]:
            from .avatar_server import AvatarServer
            server = AvatarServer(host=p["server_host"], port=p["server_port"], token=p["server_token"] or None,
                                  allowed_hosts=p["server_allowed_hosts"], vrm_file=p["vrm_file"] or None)
            outputs.append(server)      # started at the end of __init__
        if p["vmc_enabled"]:
            try:
                outputs.append(self.make_vmc(p))
            except (OSError, ValueError) as e:     # a host that does not resolve
                raise ParameterError(f"vmc_host/vmc_port: {e}") from None
        if p["vtube_studio_enabled"]:
            from .vtube_studio_output import VTubeStudioOutput
            outputs.append(VTubeStudioOutput(p["vtube_studio_url"]))
        return outputs

    def make_vmc(self, p):
        from .vmc_output import VMCOutput
        vmc = self.config.get("vmc") or {}
        return VMCOutput(p["vmc_host"], p["vmc_port"], expressions=p["vmc_expressions"], perfect_sync=p["vmc_perfect_sync"],
                         bone_positions=vmc.get("bone_positions") or None,
                         look_blendshapes=bool(vmc.get("look_blendshapes", True)))

    def _apply_parameters(self, p: dict, changed: set):
        """A parameter set (the executor's thread, as the callbacks): see LIVE. lost_after_s is
        read from self.p (the dict declare_parameters keeps up to date)."""
        if "match_wait_s" in changed:
            self.matcher.wait_s = float(p["match_wait_s"])
        if changed & set(avatar_settings.SETTINGS) and hasattr(self, "mapper"):
            for name in changed & set(avatar_settings.SETTINGS):
                setattr(self.mapper, name, p[name] if name == "mirror" else float(p[name]))
            if self.settings_path is not None:
                try:
                    avatar_settings.save(self.settings_path, {n: p[n] for n in avatar_settings.SETTINGS})
                    self.settings_not_kept = None
                except OSError as e:
                    self.settings_not_kept = f"{self.settings_path}: {e.strerror or e}"
                    self.get_logger().warning(f"page settings not kept: {self.settings_not_kept}",
                                              throttle_duration_sec=30.0)
            self.publish_settings(p)
        if "server_allowed_hosts" in changed:
            for out in self.outputs:
                if hasattr(out, "allowed_hosts"):
                    out.allowed_hosts = p["server_allowed_hosts"]
        if changed & {"vmc_host", "vmc_port", "vmc_perfect_sync"} and p["vmc_enabled"]:
            from .vmc_output import VMCOutput
            try:
                vmc = self.make_vmc(p)             # resolves the host: a bad one is refused here
            except (OSError, ValueError) as e:
                return f"vmc_host {p['vmc_host']!r}, vmc_port {p['vmc_port']}: {e}"
            for i, out in enumerate(self.outputs):
                if isinstance(out, VMCOutput):
                    self.outputs[i] = vmc
                    out.close()
        return None

    # neutral pose ------------------------------------------------------------------------
    def on_calibrate_neutral(self, request, response):
        response.success, response.message = self.calibrate_neutral("service")
        return response

    def on_reset_neutral(self, request, response):
        response.success, response.message = self.mapper.reset_neutral()
        self.get_logger().info(response.message)
        return response

    def calibrate_neutral(self, who: str):
        """The mapper's calibration (thread-safe: the page's request comes from the server's thread)."""
        ok, message = self.mapper.calibrate_neutral()
        # one call site per severity: rclpy refuses a call site whose severity changes
        # ("Logger severity cannot be changed between calls"), which stopped the node when a
        # refused calibration (no face yet) was followed by one that worked
        if ok:
            self.get_logger().info(f"calibrate_neutral ({who}): {message}")
        else:
            self.get_logger().warning(f"calibrate_neutral ({who}): {message}")
        return ok, message

    def connect_page_commands(self):
        """The built-in page's buttons: commands its server accepts from connected (token-checked) pages."""
        for out in self.outputs:
            if hasattr(out, "commands"):
                out.commands["calibrate_neutral"] = lambda data: self.calibrate_neutral("avatar page")
                out.commands["settings"] = self.on_page_settings

    def on_page_settings(self, data: dict):
        """The page's settings panel: the values become the parameters (checked, applied, kept)."""
        good, bad = avatar_settings.validated(data)
        if bad:
            return False, "; ".join(bad)
        if not good:
            return True, "nothing to change"
        self.settings_not_kept = None
        results = self.set_parameters([Parameter(n, value=v) for n, v in good.items()])
        refused = [r.reason for r in results if not r.successful]
        if refused:
            return False, "; ".join(refused)
        done = "set " + ", ".join(f"{n}={v!r}" for n, v in good.items())
        if self.settings_not_kept:     # applied, but the file could not be written: the page says so
            return True, f"{done} for this run; not kept for the next start: {self.settings_not_kept}", \
                {"kept": False}
        return True, done

    def publish_settings(self, p=None):
        """The settings, to the pages (shown in their panel)."""
        p = p or self.p
        for out in self.outputs:
            if hasattr(out, "publish_settings"):
                out.publish_settings({n: p[n] for n in avatar_settings.SETTINGS})

    # inputs: gather the parts of one image ---------------------------------------------
    def on_part(self, part, msg):
        self.health.note_input()
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        late = self.matcher.late
        entry = self.matcher.add(key, part, msg, time.monotonic())
        if entry is not None:
            self.process(key, entry)
        self.log_late(late)

    def flush(self):
        late = self.matcher.late
        for key, entry in self.matcher.due(time.monotonic()):
            self.process(key, entry)
        self.log_late(late)

    def log_late(self, before: int):
        if self.matcher.late > before:
            self.get_logger().warning(
                f"dropped a perception message that came after its image had gone out (more than match_wait_s "
                f"= {self.matcher.wait_s} s after the first part) and was replaced by a newer one before the "
                f"next image, or was over {self.matcher.hold_s} s old ({self.matcher.late} so far)",
                throttle_duration_sec=5.0)

    # processing ----------------------------------------------------------------------
    def process(self, key, entry):
        t0 = time.monotonic()
        try:
            inputs = self.inputs_of(key, entry)
            if inputs is not None:
                self.last_seen = self.get_clock().now().nanoseconds * 1e-9   # the node clock: bag time on a replay
                self.emit(self.mapper.update(inputs), header_source(entry))
            self.health.note_output(time.monotonic() - t0)     # no face is handled too
        except Exception as e:  # one bad message must not stop the node
            self.get_logger().error(f"avatar update failed: {e!r}", throttle_duration_sec=5.0)

    def inputs_of(self, key, entry):
        """The driving face's perception for this image: the largest face, else the first."""
        # each part the image's own, else the newest that came too late for its own image
        faces, pose_msg, gaze_msg, state_msg = (part_of(entry, p) for p in PARTS)
        states = {s.face_id: s for s in state_msg.states} if state_msg is not None else {}
        poses = {p.face_id: p for p in pose_msg.poses if p.valid} if pose_msg is not None else {}
        gazes = {g.face_id: g for g in gaze_msg.gazes} if gaze_msg is not None else {}
        for face_id in [i for i, p in poses.items() if not pose_ok(p)]:
            del poses[face_id]
            self.reject("head_poses", face_id)
        for face_id in [i for i, g in gazes.items() if not gaze_ok(g)]:
            g = gazes.pop(face_id)
            if g.left_valid or g.right_valid:      # closed eyes (no valid eye) are no error
                self.reject("gaze", face_id)
        if faces is not None and faces.faces:
            face_id = max(faces.faces, key=lambda f: f.bbox.width * f.bbox.height).id
        else:
            ids = list(states) or list(poses)
            if not ids:
                return None
            face_id = ids[0]
        if face_id not in states and face_id not in poses:
            return None
        pose, gaze, state = poses.get(face_id), gazes.get(face_id), states.get(face_id)
        stamp = stamp_seconds(key)
        fields, shapes = None, None
        if state:
            fields = {n: getattr(state, n) for n in state.get_fields_and_field_types()
                      if n not in ("face_id", "blendshape_names", "blendshapes")}
            if len(state.blendshape_names) != len(state.blendshapes):
                self.reject("face_state", face_id, "blendshape_names and blendshapes differ in length")
            elif state.blendshapes is not None and len(state.blendshapes):
                shapes = dict(zip(state.blendshape_names, (float(v) for v in state.blendshapes)))
            bad = [n for n, v in fields.items() if not _finite(v)]
            if bad:
                self.reject("face_state", face_id, ", ".join(bad[:4]))
                fields = {n: v for n, v in fields.items() if n not in bad}
        return Inputs(face_id, stamp,
                      head=(pose.yaw_deg, pose.pitch_deg, pose.roll_deg) if pose else None,
                      gaze=(gaze.combined_yaw_deg, gaze.combined_pitch_deg) if gaze else None,
                      state=fields, blendshapes=shapes)

    def run_stats(self) -> dict:
        """For `./vtb run --stats-json`: what became of the perception parts (part_matcher)."""
        return self.matcher.stats()

    def _diagnostic_values(self) -> dict:
        values = {f"rejected {k}": str(v) for k, v in self.rejected.items()}
        for out in self.outputs:
            counters = getattr(out, "counters", None)
            if callable(counters):
                c = counters()
                values[type(out).__name__] = ", ".join(f"{k} {v}" for k, v in c.items() if not isinstance(v, dict))[:200]
        return values

    def reject(self, part, face_id, what=""):
        """Count a bad input; one throttled log line."""
        self.rejected[part] += 1
        self.get_logger().warning(
            f"skipped a bad {part} value for face {face_id!r}{': ' + what if what else ''} "
            f"(not valid, not finite or out of range; rejected so far: {self.rejected})",
            throttle_duration_sec=5.0)

    def ease_when_lost(self):
        now = self.get_clock().now()
        if self.last_seen is None or now.nanoseconds * 1e-9 - self.last_seen < self.p["lost_after_s"]:
            return
        if self.mapper.at_neutral():
            return
        self.emit(self.mapper.ease_to_neutral(now.nanoseconds * 1e-9), None, stamp=now.to_msg())

    def emit(self, frame, header_source, stamp=None):
        if not _finite(*frame.params.values(), *frame.blendshapes.values(), *frame.euler, *frame.eye, frame.mouth,
                       *frame.blink, frame.stamp):
            self.reject("avatar_parameters", frame.face_id, "a non-finite output, not sent")
            return
        # the Live2D parameters, then the ARKit blendshapes under their own names
        msg = AvatarParameters(face_id=frame.face_id, names=list(frame.params) + list(frame.blendshapes),
                               values=[float(v) for v in (*frame.params.values(), *frame.blendshapes.values())])
        if header_source is not None:
            msg.header = header_source.header
            self.last_frame_id = msg.header.frame_id
        elif stamp is not None:         # easing to neutral: no image, the clock's stamp, the camera's frame
            msg.header.stamp = stamp
            msg.header.frame_id = self.last_frame_id
        self.params_pub.publish(msg)
        if self.robot is not None:
            # the head's motion after the mirror choice (the mapper's sources), like every other
            # output: a robot head facing the user mirrors them with mirror on, copies them off
            raw = self.mapper.last_raw
            angles = {k: raw[k] for k in ("head_yaw", "head_pitch", "head_roll", "gaze_yaw", "gaze_pitch")
                      if raw.get(k) is not None}
            joints = self.robot.update(angles, frame.stamp)
            js = JointState(header=msg.header, name=list(joints), position=list(joints.values()))
            self.joints_pub.publish(js)
        for out in self.outputs:
            try:
                out.send(frame)
            except Exception as e:
                self.get_logger().warning(f"{type(out).__name__}: {e!r}", throttle_duration_sec=5.0)

    def destroy_node(self):
        for out in self.outputs:
            for stop in ("close", "stop"):
                if hasattr(out, stop):
                    getattr(out, stop)()
                    break
        return super().destroy_node()


def main(args=None):
    sys.exit(run_node(BridgeNode, args, name="bridge_node"))


if __name__ == "__main__":
    main()
