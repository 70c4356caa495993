"""vtb_pose node: faces with landmarks in, head pose out (TF, poses, markers).

A thin adapter around the rclpy-free HeadPoseEstimator and PoseFilter. Topics (relative):
  faces                    vtb_msgs/FaceArray (from vtb_detector)
  camera_info              sensor_msgs/CameraInfo (optional: without it, focal length = image
                           width and principal point = image centre, logged once)
  head_poses               vtb_msgs/HeadPoseArray
  faces/<id>/head_pose     geometry_msgs/PoseStamped, one topic per tracked face (REP-155 style),
                           kept face_topic_linger_s after the face was last seen
  markers                  visualization_msgs/MarkerArray: face axes and the 3D landmark mesh
  /tf                      face_<id> in the image's frame (tf2_ros, or tf2_msgs on /tf with
                           tf2's QoS where tf2_ros is not installed)
  /diagnostics             "vtb_pose: head pose": faces arriving, poses published, time per
                           message (vtb_common.diagnostics: WARN/ERROR when it stalls)
<id> in a name is the id mapped by vtb_common.face_ids (documented there and in Face.msg): a
detector id such as "f3a9" as it is, "1a2b" as id_1a2b in topics, anything else ('', '/',
unicode, too long) a cleaned prefix and a short hash, so every id gives valid names. At most
max_faces faces are posed per message, so a crowded message cannot stall the node.
"""
import sys
import time

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray
from vtb_common.diagnostics import DiagnosticsPublisher, StageHealth
from vtb_common import markers as markers_lib
from vtb_common.face_ids import face_frame, face_token, face_topic_token
from vtb_common.node_main import run_node
from vtb_common.parameters import any_value, declare_parameters, in_range, one_of
from vtb_msgs.msg import HeadPose, HeadPoseArray, FaceArray

from .filters import PoseFilter
from .frames import quaternion_wxyz, rotation_from_quaternion, ypr_from_rotation
from .lingering import LingeringPool
from .pnp import DEPTH_SCALE, METHODS, HeadPoseEstimator, camera_from_info, default_intrinsics
from .tf_broadcast import TransformBroadcaster, make_transform

PARAMETERS = [
    ("interpupillary_distance_m", 0.063, "distance between the pupils used to scale the 3D face model, metres"),
    ("pnp_method", "procrustes", "procrustes: align the metric face to the landmarks cast back to their own depth "
     "(landmarks_z); sqpnp, iterative or epnp: cv2.solvePnP on the pixels alone (then refined; also used for "
     "faces without landmarks_z)"),
    ("depth_scale", DEPTH_SCALE, "procrustes: factor on the landmark model's relative depth (1 = MediaPipe's "
     "'same scale as x'; see vtb_pose.pnp.DEPTH_SCALE for how the default was measured)"),
    ("filter", True, "One-Euro filter the pose (rotation on quaternions, translation on the vector)"),
    ("filter_min_cutoff", 0.3, "One-Euro minimum cutoff frequency, Hz (lower: steadier when still, more lag)"),
    ("filter_beta_rotation", 3.0, "One-Euro speed coefficient for rotation, per rad/s (higher: less lag when turning)"),
    ("filter_beta_translation", 2.0, "One-Euro speed coefficient for translation, per m/s"),
    ("publish_tf", True, "broadcast face_<id> frames on /tf"),
    ("publish_markers", True, "publish face axes and the 3D landmark mesh as visualization_msgs markers"),
    ("frame_prefix", "face_", "TF child frame name prefix (REP-155: face_<id>, the id mapped by vtb_common.face_ids)"),
    ("max_faces", 8, "faces posed per FaceArray, the first in the message; the rest are skipped (logged) so that "
     "one message with many faces cannot hold the node up for the frames after it"),
    ("face_topic_linger_s", 5.0, "a face's faces/<id>/head_pose publisher is destroyed this long after "
     "the face was last seen (at most 2 x max_faces are kept), not at once: publishers are slow to make"),
]


def _frame_prefix(v):
    if v.startswith("/") or any(c.isspace() for c in v):
        return f"must not start with '/' or contain spaces (tf2 frame ids), got {v!r}"
    return None


# every parameter is live: a new estimator or new filters for every face (they restart), the
# outputs made or removed, the next frame's names
LIVE = {
    "interpupillary_distance_m": in_range(0.03, 0.1),
    "pnp_method": one_of(*METHODS),
    "depth_scale": in_range(0.0, 10.0, lo_open=True),
    "filter": any_value,
    "filter_min_cutoff": in_range(0.0, lo_open=True),
    "filter_beta_rotation": in_range(0.0),
    "filter_beta_translation": in_range(0.0),
    "publish_tf": any_value,
    "publish_markers": any_value,
    "frame_prefix": _frame_prefix,
    "max_faces": in_range(1, 1000),
    "face_topic_linger_s": in_range(0.0, 3600.0),
}
ESTIMATOR_PARAMETERS = {"interpupillary_distance_m", "pnp_method", "depth_scale"}
FILTER_PARAMETERS = {"filter", "filter_min_cutoff", "filter_beta_rotation", "filter_beta_translation"}


class PoseNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vtb_pose", **kwargs)
        p = declare_parameters(self, PARAMETERS, LIVE, self._apply_parameters)
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in p.items()))
        self.p = p
        self.estimator = self._make_estimator(p)
        self.camera_matrix, self.dist = None, None
        self.states = {}          # face id -> (PoseFilter, last PoseEstimate)
        # face id -> PoseStamped publisher, destroyed a while after the face left
        self.face_pubs = LingeringPool(
            lambda face_id: self.create_publisher(PoseStamped, f"faces/{face_topic_token(face_id)}/head_pose", 10),
            self.destroy_publisher, p["face_topic_linger_s"], 2 * p["max_faces"])
        self.warned_intrinsics = False
        self._mesh_points = (None, [])   # (the model they are of, its Points)

        self._broadcaster = TransformBroadcaster(self) if p["publish_tf"] else None
        self.tf = self._broadcaster
        self.pub = self.create_publisher(HeadPoseArray, "head_poses", 10)
        self.marker_pub = self.create_publisher(MarkerArray, "markers", 10) if p["publish_markers"] else None
        self.create_subscription(FaceArray, "faces", self.on_faces, 10)
        self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, qos_profile_sensor_data)
        self.health = StageHealth("head pose", latency_warn_s=0.05)
        self.faces_posed = 0
        self.diagnostics = DiagnosticsPublisher(self, [self.health], values=lambda: {
            "faces posed": str(self.faces_posed), "face topics": str(len(self.face_pubs))})

    @staticmethod
    def _make_estimator(p):
        return HeadPoseEstimator(ipd_m=p["interpupillary_distance_m"], method=p["pnp_method"],
                                 depth_scale=p["depth_scale"])

    def _apply_parameters(self, p: dict, changed: set):
        """A parameter set (the executor's thread, as on_faces): see LIVE."""
        if changed & ESTIMATOR_PARAMETERS:
            self.estimator = self._make_estimator(p)   # a ValueError refuses the set
        if changed & (ESTIMATOR_PARAMETERS | FILTER_PARAMETERS):
            self.states.clear()                        # every face starts afresh with the new values
        self.face_pubs.linger_s, self.face_pubs.max_size = p["face_topic_linger_s"], 2 * p["max_faces"]
        if "publish_tf" in changed:
            if p["publish_tf"] and self._broadcaster is None:
                self._broadcaster = TransformBroadcaster(self)   # made once, kept while off
            self.tf = self._broadcaster if p["publish_tf"] else None
        if "publish_markers" in changed:
            if p["publish_markers"] and self.marker_pub is None:
                self.marker_pub = self.create_publisher(MarkerArray, "markers", 10)
            elif not p["publish_markers"] and self.marker_pub is not None:
                self.destroy_publisher(self.marker_pub)
                self.marker_pub = None
        return None

    def on_camera_info(self, msg: CameraInfo):
        """A usable K replaces the last; a bad one is logged and skipped (pnp.camera_from_info)."""
        camera = camera_from_info(msg.k, msg.d)
        if camera is None:
            self.get_logger().warning(f"camera_info skipped: K {list(msg.k)} / D {list(msg.d)} is not a usable "
                                      f"camera (focal lengths must be finite and positive)",
                                      throttle_duration_sec=10.0)
            return
        self.camera_matrix, self.dist = camera

    def intrinsics(self, msg: FaceArray):
        if self.camera_matrix is not None:
            return self.camera_matrix, self.dist
        if not self.warned_intrinsics:
            self.get_logger().info(f"no camera_info yet: assuming focal length = image width ({msg.image_width} px) "
                                   f"and principal point = image centre")
            self.warned_intrinsics = True
        return default_intrinsics(msg.image_width, msg.image_height), None

    def on_faces(self, msg: FaceArray):
        t_in = time.monotonic()
        self.health.note_input(t_in)
        try:
            self.process(msg)
            self.health.note_output(time.monotonic() - t_in)
        except Exception as e:  # one bad message must not stop the node
            self.get_logger().error(f"faces message failed: {e!r}", throttle_duration_sec=5.0)

    def process(self, msg: FaceArray):
        k, dist = self.intrinsics(msg)
        t = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        out = HeadPoseArray(header=msg.header)
        transforms, markers = [], []
        seen, now = set(), time.monotonic()
        faces = msg.faces
        if len(faces) > self.p["max_faces"]:
            self.get_logger().warning(f"FaceArray has {len(faces)} faces; posing the first {self.p['max_faces']} "
                                      f"(max_faces)", throttle_duration_sec=5.0)
            faces = faces[:self.p["max_faces"]]
        for face in faces:
            if len(face.landmarks) < 2 * 468:
                continue
            if face.id in seen:  # one id, one pose (and one filter update) per image
                self.get_logger().warning(f"face {face.id[:40]!r} appears more than once in a FaceArray; posing "
                                          f"the first", throttle_duration_sec=5.0)
                continue
            seen.add(face.id)
            try:  # one bad face (whatever its id or values) never costs the others their pose
                pose = self.pose_face(msg, face, k, dist, t, transforms, markers)
                if pose.valid:
                    self.face_pubs.get(face.id, now).publish(PoseStamped(header=msg.header, pose=pose.pose))
            except Exception as e:
                self.get_logger().warning(f"face {face.id[:40]!r}: skipped, {e!r}", throttle_duration_sec=5.0)
                self.states.pop(face.id, None)
                pose = HeadPose(face_id=face.id, valid=False)
            out.poses.append(pose)
            self.faces_posed += pose.valid
        self.forget(seen, now)
        self.pub.publish(out)
        if transforms:
            self.tf.send(transforms)
        if markers:
            self.marker_pub.publish(MarkerArray(markers=markers))

    def pose_face(self, msg, face, k, dist, t, transforms, markers) -> HeadPose:
        """The HeadPose of one face; its transform and markers added to the lists."""
        pose_filter, last = self.states.get(face.id, (None, None))
        if pose_filter is None:  # a new face: its own filter, no guess
            pose_filter = PoseFilter(self.p["filter_min_cutoff"], self.p["filter_beta_rotation"],
                                     self.p["filter_beta_translation"])
        lm = np.asarray(face.landmarks, np.float32).reshape(-1, 2)
        if len(face.landmarks_z) == len(lm):  # the mesh's depth, for the procrustes method
            lm = np.column_stack([lm, np.asarray(face.landmarks_z, np.float32)])
        if not np.isfinite(lm).all():  # a malformed face: skipped, its state left as it was
            self.get_logger().warning(f"face {face.id[:40]!r}: landmarks not finite, skipped",
                                      throttle_duration_sec=5.0)
            return HeadPose(face_id=face.id, valid=False)
        estimate = self.estimator.estimate(lm, k, dist, guess=last)
        if estimate is None:
            return HeadPose(face_id=face.id, valid=False)
        q = measured_q = quaternion_wxyz(estimate.rotation)
        position = estimate.translation
        if self.p["filter"]:
            q, position = pose_filter(q, position, t)
        if not (np.isfinite(q).all() and np.isfinite(position).all()):
            # never keep a filter or a guess that went non-finite: the face starts afresh
            self.states.pop(face.id, None)
            return HeadPose(face_id=face.id, valid=False)
        self.states[face.id] = (pose_filter, estimate)
        rotation = rotation_from_quaternion(q)
        yaw, pitch, roll = ypr_from_rotation(rotation)
        pose = HeadPose(face_id=face.id, valid=True, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll,
                        reprojection_error_px=estimate.reprojection_error_px,
                        landmark_count=estimate.landmark_count)
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in position)
        o = pose.pose.orientation
        o.w, o.x, o.y, o.z = (float(v) for v in q)
        m = pose.measured_pose
        m.position.x, m.position.y, m.position.z = (float(v) for v in estimate.translation)
        m.orientation.w, m.orientation.x, m.orientation.y, m.orientation.z = (float(v) for v in measured_q)
        child = face_frame(self.p["frame_prefix"], face.id)
        if self.tf is not None:
            transforms.append(make_transform(msg.header.stamp, msg.header.frame_id, child, rotation, position))
        if markers_lib.wanted(self.marker_pub):
            markers += self.face_markers(msg.header.stamp, child, face_token(face.id))
        return pose

    def forget(self, seen, now):
        """A face that is gone loses its filter state (a new id starts afresh); its topic goes
        face_topic_linger_s later (LingeringPool)."""
        for face_id in set(self.states) - seen:
            del self.states[face_id]
        self.face_pubs.sweep(now)

    def mesh_points(self):
        """The model's 468 points as Points, made once per estimator (468 Points a face was most
        of the time of a many-face message)."""
        model = self.estimator.model
        if self._mesh_points[0] is not model:
            self._mesh_points = model, [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in model[:468]]
        return self._mesh_points[1]

    def face_markers(self, stamp, frame, face_id):
        """Axes (x red, y green, z blue, 10 cm) and the model's landmarks, in the face frame."""
        header = Header(stamp=stamp, frame_id=frame)
        markers = [markers_lib.arrow(header, f"face_axes/{face_id}", i, (0, 0, 0), 0.1 * axis, (*color, 1.0),
                                     (0.005, 0.01, 0.015), frame_locked=True)
                   for i, (axis, color) in enumerate(zip(np.eye(3), [(1, 0, 0), (0, 1, 0), (0, 0, 1)]))]
        markers.append(markers_lib.points(header, f"face_mesh/{face_id}", 0, self.mesh_points(), (0.2, 0.9, 0.9, 1.0),
                                          0.002, frame_locked=True))
        return markers


def main(args=None):
    sys.exit(run_node(PoseNode, args, name="pose_node"))


if __name__ == "__main__":
    main()
