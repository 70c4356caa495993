"""VMC protocol output: an AvatarFrame as one OSC bundle over UDP. No rclpy here.

The VMC protocol (https://protocol.vmc.info/) is OSC over UDP; receivers (VSeeFace, VNyan,
Warudo, VMC itself, Blender add-ons, ...) listen on 39539 by default. Per frame this sends ONE
bundle (time tag "immediately") holding, in this order:

    /VMC/Ext/Blend/Val  (s name, f value)   Blink_L, Blink_R, A, I, U, E, O
    /VMC/Ext/Blend/Apply                     (no arguments)
    /VMC/Ext/Bone/Pos   (s name, f px, f py, f pz, f qx, f qy, f qz, f qw)   Head, LeftEye, RightEye

Blend shapes are VRM 0.x preset names: blink is 1 when the eye is CLOSED, so Blink_L/R are
1 - openness; the vowels A I U E O are the frame's ParamA..ParamO (0..1; missing ones send 0).

Bones are Unity humanoid bones (HumanBodyBones names); VMC carries each bone's LOCAL pose
(relative to its parent: Head to Neck, the eyes to Head) in Unity's coordinates: left-handed,
metres, with the avatar facing +z, +y up and +x to the avatar's OWN right. A quaternion in Unity
is the usual one (same formulas, x, y, z, w order) applied to those left-handed coordinates, so
a positive angle about +y turns the avatar to its own right, about +x makes it look down, about
+z tilts it to its own LEFT shoulder.

Head rotation, from vtb's angles (vtb_msgs/HeadPose): frame.euler = (pitch, yaw, roll) degrees,
intrinsic Z-Y'-X'' in the face frame (x forward out of the face, y to the subject's left, z up):
yaw > 0 turns the face to its own left, pitch > 0 looks down, roll > 0 tilts it to its right
shoulder. The rotation matrix R_f = Rz(yaw) Ry(pitch) Rx(roll) (transforms3d, axes 'rzyx') is
carried into Unity's axes by the change of basis C (Unity x = -face y, Unity y = face z,
Unity z = face x; det C = -1, the handedness flip): R_u = C R_f C^T. That copies the user's
motion onto the avatar: yaw +30 turns the avatar to its own left, i.e. -30 degrees about
Unity's +y.

Mirroring (`mirror=True`, the default, like the bridge node's `mirror` parameter): the avatar
moves like the user's mirror image, as VTuber apps show it. The rotation is reflected in the
avatar's left-right plane, R = M R_u M with M = diag(-1, 1, 1): yaw and roll change sign
(yaw +30, the user turning to their own left, turns the avatar +30 about +y, to ITS right,
which is the same side of the screen the user turned to), pitch does not; and the eyes swap:
Blink_L (the avatar's left eye) comes from the user's RIGHT eye. With mirror=False the avatar
copies the user (Blink_L from the user's left eye).

Eyes: frame.eye = (theta, phi), radians, yaw and pitch of the gaze relative to the head with
the same signs as the head (theta > 0 looks to the subject's left, phi > 0 looks down). Both eye
bones get the rotation Rz(theta) Ry(phi) carried over like the head's (no roll).

Positions: receivers apply the rotations of these bones and generally ignore (or only use) the
positions of non-root bones; the defaults below are typical local offsets of a ~1.6 m VRM
(`bone_positions` replaces them).

Sending never blocks: the UDP socket is non-blocking (python-osc's UDPClient) and the host is
resolved once in the constructor; a send the kernel refuses (buffer full, no route) is counted
in `errors` and dropped.
"""
from __future__ import annotations

import math
import socket

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat

from vtb_bridge.avatar_frame import AvatarFrame

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 39539

BLEND_VAL = "/VMC/Ext/Blend/Val"
BLEND_APPLY = "/VMC/Ext/Blend/Apply"
BONE_POS = "/VMC/Ext/Bone/Pos"

VOWELS = (("A", "ParamA"), ("I", "ParamI"), ("U", "ParamU"), ("E", "ParamE"), ("O", "ParamO"))

# Typical local offsets (metres, Unity axes) of a humanoid VRM: Head from Neck, eyes from Head.
# LeftEye is the avatar's own left, Unity -x.
DEFAULT_BONE_POSITIONS = {
    "Head": (0.0, 0.06, 0.0),
    "LeftEye": (-0.03, 0.06, 0.06),
    "RightEye": (0.03, 0.06, 0.06),
}

# Change of basis from vtb's face frame (x forward, y left, z up; right-handed) to Unity's
# avatar axes (x the avatar's right, y up, z forward; left-handed): v_unity = C @ v_face.
FACE_TO_UNITY = np.array([[0.0, -1.0, 0.0],
                          [0.0, 0.0, 1.0],
                          [1.0, 0.0, 0.0]])
MIRROR_X = np.diag([-1.0, 1.0, 1.0])


def face_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """vtb's head rotation as a matrix in the face frame: intrinsic Z-Y'-X'' (HeadPose.msg)."""
    return euler2mat(math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg),
                     axes="rzyx")


def unity_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float,
                   mirror: bool = True) -> np.ndarray:
    """The same rotation as a matrix acting on Unity avatar coordinates (see the module doc)."""
    r = FACE_TO_UNITY @ face_rotation(yaw_deg, pitch_deg, roll_deg) @ FACE_TO_UNITY.T
    if mirror:
        r = MIRROR_X @ r @ MIRROR_X
    return r


def unity_quaternion(yaw_deg: float, pitch_deg: float, roll_deg: float,
                     mirror: bool = True) -> tuple:
    """(qx, qy, qz, qw) as Unity and VMC write them, qw >= 0."""
    w, x, y, z = mat2quat(unity_rotation(yaw_deg, pitch_deg, roll_deg, mirror))
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    return (float(x), float(y), float(z), float(w))


def _clamp01(v) -> float:
    v = float(v)
    if not math.isfinite(v):
        return 0.0
    return min(1.0, max(0.0, v))


class VMCOutput:
    """Sends each AvatarFrame as one VMC bundle. `send` never blocks and never raises on
    network trouble (counted in `errors`)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, mirror: bool = True,
                 bone_positions: dict | None = None, send_eyes: bool = True):
        self.host, self.port, self.mirror, self.send_eyes = host, int(port), bool(mirror), send_eyes
        self.bone_positions = dict(DEFAULT_BONE_POSITIONS)
        if bone_positions:
            self.bone_positions.update(bone_positions)
        # Resolve once: sendto() with a host name would resolve (and could block) every frame.
        family, _, _, _, sockaddr = socket.getaddrinfo(host, self.port, type=socket.SOCK_DGRAM)[0]
        self._client = UDPClient(sockaddr[0], self.port, family=family)   # non-blocking socket
        self.sent = 0      # bundles handed to the kernel
        self.errors = 0    # bundles dropped (the socket refused them)
        self.last_error = ""

    # -- building -------------------------------------------------------------------------
    def blend_values(self, frame: AvatarFrame) -> list:
        """[(name, value)] in sending order: Blink_L, Blink_R, A, I, U, E, O."""
        left_open, right_open = frame.blink
        if self.mirror:   # the avatar's left eye is the user's right one
            left_open, right_open = right_open, left_open
        out = [("Blink_L", 1.0 - _clamp01(left_open)), ("Blink_R", 1.0 - _clamp01(right_open))]
        out += [(name, _clamp01(frame.params.get(param, 0.0))) for name, param in VOWELS]
        return out

    def bone_poses(self, frame: AvatarFrame) -> list:
        """[(bone, (px, py, pz), (qx, qy, qz, qw))] in sending order: Head, LeftEye, RightEye."""
        pitch, yaw, roll = (float(v) for v in frame.euler)
        out = [("Head", self.bone_positions["Head"], unity_quaternion(yaw, pitch, roll, self.mirror))]
        if self.send_eyes:
            theta, phi = (float(v) for v in frame.eye)
            q = unity_quaternion(math.degrees(theta), math.degrees(phi), 0.0, self.mirror)
            out += [("LeftEye", self.bone_positions["LeftEye"], q),
                    ("RightEye", self.bone_positions["RightEye"], q)]
        return out

    def build(self, frame: AvatarFrame):
        """The frame's OSC bundle (pythonosc OscBundle; `.dgram` is the datagram)."""
        bundle = OscBundleBuilder(IMMEDIATELY)
        for name, value in self.blend_values(frame):
            msg = OscMessageBuilder(BLEND_VAL)
            msg.add_arg(name, "s")
            msg.add_arg(float(value), "f")
            bundle.add_content(msg.build())
        bundle.add_content(OscMessageBuilder(BLEND_APPLY).build())
        for bone, pos, quat in self.bone_poses(frame):
            msg = OscMessageBuilder(BONE_POS)
            msg.add_arg(bone, "s")
            for v in (*pos, *quat):
                msg.add_arg(float(v), "f")
            bundle.add_content(msg.build())
        return bundle.build()

    # -- sending --------------------------------------------------------------------------
    def send(self, frame: AvatarFrame) -> bool:
        """Send one frame; True if the kernel took the datagram."""
        try:
            self._client.send(self.build(frame))
        except OSError as e:   # BlockingIOError (buffer full), ECONNREFUSED, no route, ...
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        self.sent += 1
        return True

    def counters(self) -> dict:
        return {"sent": self.sent, "errors": self.errors, "last_error": self.last_error}

    def close(self):
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
