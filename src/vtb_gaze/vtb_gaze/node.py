"""vtb_gaze node: faces and head poses in; gaze, eye/mouth/brow state, TF and markers out.

A thin adapter around the rclpy-free GazeEstimator and FaceStateEstimator. Topics (relative):
  faces               vtb_msgs/FaceArray (from vtb_detector)
  head_poses          vtb_msgs/HeadPoseArray (from vtb_pose), matched to faces by header stamp
  camera_info         sensor_msgs/CameraInfo (optional; else f = image width, centre)
  gaze                vtb_msgs/GazeArray
  face_state          vtb_msgs/FaceStateArray
  gaze_markers        visualization_msgs/MarkerArray: one arrow per eye
  /tf                 gaze_<id> (REP-155: z along the gaze, x right, y down) in the image's frame
  /diagnostics        "vtb_gaze: gaze and face state": faces arriving, states published, time
                      per message (vtb_common.diagnostics: WARN/ERROR when it stalls)
Services: calibrate_gaze (std_srvs/Trigger: "look at the camera" for the next frames),
          reset_eye_calibration (std_srvs/Trigger: forget the learned eye-openness range).

Faces are kept for a moment until their head pose arrives; a face whose pose does not come
within `pose_wait_s` still gets its FaceState (without gaze), so a missing pose never stops it.
"""
import sys
import time

import numpy as np
from geometry_msgs.msg import Point, Vector3
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray
from vtb_common.diagnostics import DiagnosticsPublisher, StageHealth
from vtb_common import markers as markers_lib
from vtb_common.face_ids import face_frame, face_token
from vtb_common.node_main import run_node
from vtb_detector.models import ModelError
from vtb_common.parameters import any_value, declare_parameters, in_range
from vtb_msgs.msg import FaceArray, FaceState, FaceStateArray, Gaze, GazeArray, HeadPoseArray
from vtb_pose.face_model import load_metric_face
from vtb_pose.frames import rotation_from_quaternion
from vtb_pose.pnp import camera_from_info, default_intrinsics
from vtb_pose.tf_broadcast import TransformBroadcaster, make_transform

from .blendshapes import NAMES as BLENDSHAPE_NAMES
from .blendshapes import BlendshapeEstimator, agree_with_state
from .face_state import FaceStateEstimator
from .gaze import GazeEstimator, gaze_frame_rotation

PARAMETERS = [
    ("eyeball_radius_m", 0.012, "eyeball radius of the average eye model, metres"),
    ("interpupillary_distance_m", 0.063, "pupil distance scaling the face model (as vtb_pose's), metres"),
    ("blink_close_threshold", 0.25, "eye openness below which an open eye counts as closed, 0..1"),
    ("blink_open_threshold", 0.35, "eye openness above which a closed eye counts as open again, 0..1 (hysteresis)"),
    ("calibration_frames", 15, "frames used by the 'look at the camera' gaze calibration"),
    ("pose_wait_s", 0.2, "how long a face waits for its head pose before its state goes out without gaze, s"),
    ("publish_tf", True, "broadcast gaze_<id> frames on /tf"),
    ("publish_markers", True, "publish gaze arrows as visualization_msgs markers"),
    ("blendshapes", True, "compute the 52 ARKit blendshapes (FaceState.blendshapes) with MediaPipe's blendshape model"),
    ("max_faces", 8, "faces handled per FaceArray, the first in the message (as the pose node's max_faces); the "
     "rest are skipped (logged) so that one message with many faces cannot hold the graph up"),
]

# every parameter is live: the face model reloaded, the faces' gaze or state estimators made
# afresh with the new values (their calibrations restart), the outputs made or removed
LIVE = {
    "eyeball_radius_m": in_range(0.005, 0.02),
    "interpupillary_distance_m": in_range(0.03, 0.1),
    "blink_close_threshold": in_range(0.0, 1.0),
    "blink_open_threshold": in_range(0.0, 1.0),
    "calibration_frames": in_range(1, 1000),
    "pose_wait_s": in_range(0.0, 10.0),
    "publish_tf": any_value,
    "publish_markers": any_value,
    "blendshapes": any_value,
    "max_faces": in_range(1, 1000),
}
GAZE_PARAMETERS = {"eyeball_radius_m", "interpupillary_distance_m", "calibration_frames"}
STATE_PARAMETERS = {"blink_close_threshold", "blink_open_threshold"}


def _vec(v) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _point(v) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def thresholds_in_order(p: dict):
    """The blink hysteresis needs close < open: checked at start and on every set."""
    if not p["blink_close_threshold"] < p["blink_open_threshold"]:
        return (f"blink_close_threshold ({p['blink_close_threshold']}) must be below blink_open_threshold "
                f"({p['blink_open_threshold']})")
    return None


class GazeNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_gaze", **kwargs)
        p = declare_parameters(self, PARAMETERS, LIVE, self._apply_parameters, together=thresholds_in_order)
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in p.items()))
        self.p = p
        # the face the pose node's estimator uses: the eyeballs sit in the frame it defines
        self.model = load_metric_face(p["interpupillary_distance_m"])
        self.gazes = {}        # face id -> GazeEstimator (per-user calibration)
        self.states = {}       # face id -> FaceStateEstimator
        self.pending = {}      # stamp -> (FaceArray, arrival time)
        self.camera_matrix = None
        self.calibration_requested = False
        self._blendshapes = None   # BlendshapeEstimator (False: the model is missing)
        self.blendshape_estimator()    # loaded now: a missing model is said at start

        self._broadcaster = TransformBroadcaster(self) if p["publish_tf"] else None
        self.tf = self._broadcaster
        self.gaze_pub = self.create_publisher(GazeArray, "gaze", 10)
        self.state_pub = self.create_publisher(FaceStateArray, "face_state", 10)
        self.marker_pub = self.create_publisher(MarkerArray, "gaze_markers", 10) if p["publish_markers"] else None
        self.create_subscription(FaceArray, "faces", self.on_faces, 10)
        self.create_subscription(HeadPoseArray, "head_poses", self.on_poses, 10)
        self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, qos_profile_sensor_data)
        self.create_service(Trigger, "calibrate_gaze", self.on_calibrate)
        self.create_service(Trigger, "reset_eye_calibration", self.on_reset)
        self.create_timer(0.05, self.flush_unmatched)
        # outputs may wait pose_wait_s for their pose: a stall is well beyond that
        self.health = StageHealth("gaze and face state", latency_warn_s=0.05)
        self.diagnostics = DiagnosticsPublisher(self, [self.health], values=lambda: {
            "faces": str(len(self.states)), "waiting for a pose": str(len(self.pending)),
            "blendshapes": "on" if self._blendshapes else "off"})

    def _apply_parameters(self, p: dict, changed: set):
        """A parameter set (the executor's thread, as the callbacks): see LIVE."""
        if "interpupillary_distance_m" in changed:
            self.model = load_metric_face(p["interpupillary_distance_m"])
        if changed & GAZE_PARAMETERS:
            self.gazes.clear()
        if changed & STATE_PARAMETERS:
            self.states.clear()
        if "publish_tf" in changed:
            if p["publish_tf"] and self._broadcaster is None:
                self._broadcaster = TransformBroadcaster(self)   # made once, kept while off
            self.tf = self._broadcaster if p["publish_tf"] else None
        if "publish_markers" in changed:
            if p["publish_markers"] and self.marker_pub is None:
                self.marker_pub = self.create_publisher(MarkerArray, "gaze_markers", 10)
            elif not p["publish_markers"] and self.marker_pub is not None:
                self.destroy_publisher(self.marker_pub)
                self.marker_pub = None
        return None

    # inputs -------------------------------------------------------------------------------
    def on_camera_info(self, msg: CameraInfo):
        """A usable K replaces the last; a bad one is logged and skipped, as in the pose node."""
        camera = camera_from_info(msg.k, msg.d)
        if camera is None:
            self.get_logger().warning(f"camera_info skipped: K {list(msg.k)} is not a usable camera",
                                      throttle_duration_sec=10.0)
            return
        self.camera_matrix = camera[0]

    def on_faces(self, msg: FaceArray):
        self.health.note_input()
        self.pending[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = (msg, time.monotonic())

    def on_poses(self, msg: HeadPoseArray):
        entry = self.pending.pop((msg.header.stamp.sec, msg.header.stamp.nanosec), None)
        if entry is not None:
            self.guarded(entry[0], msg)

    def flush_unmatched(self):
        now = time.monotonic()
        for stamp, (faces, arrived) in list(self.pending.items()):
            if now - arrived > self.p["pose_wait_s"]:
                del self.pending[stamp]
                self.guarded(faces, None)

    def on_calibrate(self, request, response):
        self.calibration_requested = True
        for g in self.gazes.values():
            g.start_calibration()
        response.success = True
        response.message = f"look at the camera: calibrating gaze over the next {self.p['calibration_frames']} frames"
        return response

    def on_reset(self, request, response):
        for s in self.states.values():
            s.reset_calibration()
        response.success, response.message = True, f"eye-openness calibration reset for {len(self.states)} face(s)"
        return response

    # processing ---------------------------------------------------------------------------
    def guarded(self, faces, poses):
        t0 = time.monotonic()
        try:
            self.process(faces, poses)
            self.health.note_output(time.monotonic() - t0)
        except Exception as e:  # one bad message must not stop the node
            self.get_logger().error(f"gaze failed: {e!r}", throttle_duration_sec=5.0)

    def process(self, faces: FaceArray, poses: HeadPoseArray | None):
        t = faces.header.stamp.sec + 1e-9 * faces.header.stamp.nanosec
        by_id = {p.face_id: p for p in poses.poses if p.valid} if poses else {}
        k = self.camera_matrix if self.camera_matrix is not None else default_intrinsics(
            faces.image_width, faces.image_height)
        states = FaceStateArray(header=faces.header)
        gazes = GazeArray(header=faces.header)
        transforms, markers = [], []
        crowd = faces.faces
        if len(crowd) > self.p["max_faces"]:
            self.get_logger().warning(f"FaceArray has {len(crowd)} faces; taking the first {self.p['max_faces']} "
                                      f"(max_faces)", throttle_duration_sec=5.0)
            crowd = crowd[:self.p["max_faces"]]
        for face in crowd:
            if len(face.landmarks) < 2 * 478:
                continue
            lm = np.asarray(face.landmarks, np.float32).reshape(-1, 2)
            lm = np.column_stack([lm, np.asarray(face.landmarks_z, np.float32)]) if len(face.landmarks_z) == len(lm) \
                else np.column_stack([lm, np.zeros(len(lm), np.float32)])
            pose = by_id.get(face.id)
            ypr = (pose.yaw_deg, pose.pitch_deg, pose.roll_deg) if pose else None
            estimator = self.blendshape_estimator() if face.landmark_scheme == face.SCHEME_MEDIAPIPE_478 else None
            values = estimator(lm) if estimator is not None else None   # None: non-finite points (the state copes)
            # the model's smile and frown give the state's mouth form (face_state: measured on real faces)
            shapes = dict(zip(BLENDSHAPE_NAMES, values.tolist())) if values is not None else None
            state = self.state_estimator(face.id).update(lm, ypr, t, shapes=shapes)
            states.states.append(self.state_msg(face.id, state))
            if values is not None:
                values = agree_with_state(values, state)
                states.states[-1].blendshape_names = list(BLENDSHAPE_NAMES)
                states.states[-1].blendshapes = values.tolist()
            if pose is None:
                continue
            # this frame's own pose: the filtered one lags a moving head, and a few degrees of
            # lag misplace the eyeball centres by millimetres (measured: 40 deg of gaze error)
            m = pose.measured_pose
            if m.position.z <= 0.0:
                m = pose.pose          # not filled in (a face is never at the camera's centre)
            rotation = rotation_from_quaternion([m.orientation.w, m.orientation.x, m.orientation.y, m.orientation.z])
            translation = np.array([m.position.x, m.position.y, m.position.z])
            g = self.gaze_estimator(face.id).estimate(
                lm, rotation, translation, k, openness=(state.eye_right_open, state.eye_left_open),
                open_threshold=self.p["blink_close_threshold"])
            gazes.gazes.append(self.gaze_msg(face.id, g))
            if self.tf is not None:
                transforms.append(make_transform(faces.header.stamp, faces.header.frame_id,
                                                 face_frame("gaze_", face.id),
                                                 gaze_frame_rotation(g.direction, rotation), g.origin))
            if markers_lib.wanted(self.marker_pub):
                markers += self.arrows(faces.header, face.id, g)
        self.forget({f.id for f in crowd})
        self.state_pub.publish(states)
        if poses is not None:
            self.gaze_pub.publish(gazes)
        if transforms:
            self.tf.send(transforms)
        if markers:
            self.marker_pub.publish(MarkerArray(markers=markers))

    def state_estimator(self, face_id):
        if face_id not in self.states:
            self.states[face_id] = FaceStateEstimator(blink_close_threshold=self.p["blink_close_threshold"],
                                                      blink_open_threshold=self.p["blink_open_threshold"])
        return self.states[face_id]

    def blendshape_estimator(self) -> BlendshapeEstimator | None:
        """The model (loaded once); None while `blendshapes` is off or the model is missing
        (said once: the rest of FaceState still goes out)."""
        if not self.p["blendshapes"] or self._blendshapes is False:
            return None
        if self._blendshapes is None:
            try:
                self._blendshapes = BlendshapeEstimator()
            except ModelError as e:
                self.get_logger().error(f"blendshapes off: {e}")
                self._blendshapes = False
                return None
        return self._blendshapes

    def gaze_estimator(self, face_id):
        if face_id not in self.gazes:
            g = GazeEstimator(self.model, self.p["eyeball_radius_m"], self.p["calibration_frames"])
            if self.calibration_requested:
                g.start_calibration()
            self.gazes[face_id] = g
        return self.gazes[face_id]

    def forget(self, seen):
        for table in (self.states, self.gazes):
            for face_id in set(table) - seen:
                del table[face_id]

    @staticmethod
    def state_msg(face_id, s) -> FaceState:
        msg = FaceState(face_id=face_id)
        for name in FaceState.get_fields_and_field_types():
            if name not in ("face_id", "blendshape_names", "blendshapes"):
                value = getattr(s, name)
                setattr(msg, name, bool(value) if isinstance(value, (bool, np.bool_)) else float(value))
        return msg

    @staticmethod
    def gaze_msg(face_id, g) -> Gaze:
        right, left = g.eyes
        return Gaze(face_id=face_id, left_direction=_vec(left.direction), right_direction=_vec(right.direction),
                    combined_direction=_vec(g.direction), left_eyeball_center=_point(left.eyeball_centre),
                    right_eyeball_center=_point(right.eyeball_centre), combined_origin=_point(g.origin),
                    left_yaw_deg=left.yaw_deg, left_pitch_deg=left.pitch_deg, right_yaw_deg=right.yaw_deg,
                    right_pitch_deg=right.pitch_deg, combined_yaw_deg=g.yaw_deg, combined_pitch_deg=g.pitch_deg,
                    left_valid=left.valid, right_valid=right.valid, left_confidence=left.confidence,
                    right_confidence=right.confidence)

    @staticmethod
    def arrows(header, face_id, g):
        """One arrow per eye, 15 cm along its gaze; faint when the eye is not valid."""
        return [markers_lib.arrow(header, f"gaze/{face_token(face_id)}", i, eye.eyeball_centre,
                                  eye.eyeball_centre + 0.15 * eye.direction,
                                  (1.0, 0.8 if eye.valid else 0.2, 0.1, 1.0 if eye.valid else 0.4), (0.003, 0.006, 0.01))
                for i, eye in enumerate(g.eyes)]


def main(args=None):
    sys.exit(run_node(GazeNode, args, name="gaze_node"))


if __name__ == "__main__":
    main()
