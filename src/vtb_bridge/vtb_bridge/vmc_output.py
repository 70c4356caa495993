"""VMC protocol output: an AvatarFrame as one OSC bundle over UDP. No rclpy here.

The VMC protocol (https://protocol.vmc.info/) is OSC over UDP; receivers (VSeeFace, VNyan,
Warudo, VirtualMotionCapture, EVMC4U in Unity, Blender add-ons, ...) listen on 39539 by
default. Per frame this sends ONE bundle (time tag "immediately") holding, in this order:

    /VMC/Ext/OK        (i loaded, i calibration state, i calibration mode, i tracking status)
                       1 (a model is loaded and available), 3 (calibrated: vtb needs no
                       calibration), 0 (normal mode), 1 while the face is tracked, 0 while the
                       frame eases back to neutral after the face was lost
    /VMC/Ext/T         (f time) seconds since this output started
    /VMC/Ext/Bone/Pos  (s name, f px, f py, f pz, f qx, f qy, f qz, f qw)   Head, LeftEye, RightEye
    /VMC/Ext/Blend/Val (s name, f value)   blink left/right, the five vowels, look up/down/left/right,
                                           then (perfect_sync) the 52 ARKit blendshapes
    /VMC/Ext/Blend/Apply                   (no arguments)

Mirroring is not decided here: the frame already holds the avatar's motion after the bridge's
`mirror` choice (AvatarMapper), and this output sends exactly that (the README's mirroring table).

Blend shapes, with `expressions` "vrm0" (VRM 0.x preset names, the default) or "vrm1" (VRM 1.0
expression names):

    vrm0       vrm1         value
    Blink_L    blinkLeft    1 - openness of the avatar's own left eye (blink[1]: the screen's right)
    Blink_R    blinkRight   1 - openness of the avatar's own right eye (blink[0]: the screen's left)
    A I U E O  aa ih ou ee oh   ParamA .. ParamO (0..1; missing ones send 0)
    LookUp     lookUp       ParamEyeBallY > 0, LookDown / lookDown its negative part
    LookLeft   lookLeft     the avatar looks to its OWN left: ParamEyeBallX > 0 (the screen's
                            right); LookRight / lookRight its negative part

Perfect sync (`perfect_sync`, on by default, the bridge parameter vmc_perfect_sync): after the
presets, the frame's 52 ARKit blendshapes under ARKit's own names (eyeBlinkLeft, jawOpen,
mouthSmileLeft, ..., 0..1; the avatar's own sides after the bridge's mirror choice), the blend
shape clip names VSeeFace, VNyan and Warudo map a perfect-sync model's shapes by. Receivers
without such clips ignore them. Nothing extra is sent while the frame has none.

The Look* shapes are for models whose eyes are blend shapes; models with eye bones take the
LeftEye/RightEye bones. Without the Live2D parameters in the frame they come from frame.eye
(`look_range_deg` degrees = 1).

Bones are Unity humanoid bones (HumanBodyBones names); VMC carries each bone's LOCAL pose
(relative to its parent: Head to Neck, the eyes to Head) in Unity's coordinates: left-handed,
metres, with the avatar facing +z, +y up and +x to the avatar's OWN right. A quaternion in Unity
is the usual one (same formulas, x, y, z, w order) applied to those left-handed coordinates, so
a positive angle about +y turns the avatar to its own right, about +x makes it look down, about
+z tilts it to its own LEFT shoulder.

Head rotation, from the frame's angles: frame.euler = (pitch, yaw, roll) degrees in
vtb_msgs/HeadPose's signs for the avatar's own head (intrinsic Z-Y'-X'' in its face frame: x
forward out of the face, y to its own left, z up): yaw > 0 turns it to its own left, pitch > 0
looks down, roll > 0 tilts it to its right shoulder. The rotation matrix R_f = Rz(yaw) Ry(pitch)
Rx(roll) (transforms3d, axes 'rzyx') is carried into Unity's axes by the change of basis C
(Unity x = -face y, Unity y = face z, Unity z = face x; det C = -1, the handedness flip):
R_u = C R_f C^T. Yaw +30 turns the avatar to its own left, i.e. -30 degrees about Unity's +y.
With the bridge's mirror on, a user turning to their own left gives yaw -30: the avatar turns
+30 about +y, to ITS right, the same side of the screen the user turned to.

Eyes: frame.eye = (theta, phi), radians, yaw and pitch of the gaze relative to the head with
the head's signs (theta > 0 looks to the avatar's own left, phi > 0 looks down). Both eye bones
get the rotation Rz(theta) Ry(phi) carried over like the head's (no roll).

Bone positions. A /VMC/Ext/Bone/Pos message always carries a local position (the protocol has no
rotation-only bone message; vmcp, the receiving library in the tests, rejects one without it),
and vtb does not know your model's rest pose. Receivers either apply only the rotation of these
bones, or also set the bone's local position (EVMC4U's "Bone Position Synchronize", on by
default): made-up offsets would then move the head and push the eyes out of the face. So:

- by default (`bone_positions` empty: rotations only) the bones go with position (0, 0, 0), a
  placeholder, for receivers that apply rotations only; with EVMC4U, switch Bone Position
  Synchronize off;
- with `bone_positions` {bone: (x, y, z)} (your model's own rest local positions, metres, Unity
  axes; the bridge's YAML `vmc.bone_positions`), only the bones that have one are sent, at that
  position: a receiver that synchronises positions keeps the model's shape, and a bone you leave
  out (say the eyes) is not displaced (the Look* blend shapes still carry the gaze).

Sending never blocks: the UDP socket is non-blocking (python-osc's UDPClient) and the host is
resolved once in the constructor; a send the kernel refuses (buffer full, no route) is counted
in `errors` and dropped. A port outside 1..65535 is refused by the constructor (ValueError; before,
every frame failed with OverflowError). A frame holding NaN or infinity is not sent (counted in
`not_finite`, logged at most every 5 s): a receiver is never told a made-up pose.
"""
from __future__ import annotations

import logging
import math
import socket
import time

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat

from vtb_bridge.avatar_frame import AvatarFrame, finite as _finite

log = logging.getLogger("vtb_bridge.vmc_output")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 39539

OK = "/VMC/Ext/OK"
TIME = "/VMC/Ext/T"
BLEND_VAL = "/VMC/Ext/Blend/Val"
BLEND_APPLY = "/VMC/Ext/Blend/Apply"
BONE_POS = "/VMC/Ext/Bone/Pos"

# /VMC/Ext/OK arguments: loaded, calibration state (3: calibrated), calibration mode (0: normal)
MODEL_LOADED, CALIBRATED, NORMAL_MODE = 1, 3, 0

# blend shape names: vtb's key -> the name in each VRM version (`expressions`)
EXPRESSIONS = {
    "vrm0": {"blink_left": "Blink_L", "blink_right": "Blink_R",
             "a": "A", "i": "I", "u": "U", "e": "E", "o": "O",
             "look_up": "LookUp", "look_down": "LookDown", "look_left": "LookLeft",
             "look_right": "LookRight"},
    "vrm1": {"blink_left": "blinkLeft", "blink_right": "blinkRight",
             "a": "aa", "i": "ih", "u": "ou", "e": "ee", "o": "oh",
             "look_up": "lookUp", "look_down": "lookDown", "look_left": "lookLeft",
             "look_right": "lookRight"},
}
VOWELS = (("a", "ParamA"), ("i", "ParamI"), ("u", "ParamU"), ("e", "ParamE"), ("o", "ParamO"))
BONES = ("Head", "LeftEye", "RightEye")
NO_POSITION = (0.0, 0.0, 0.0)     # the placeholder of rotations-only mode (see the module doc)

# Change of basis from vtb's face frame (x forward, y left, z up; right-handed) to Unity's
# avatar axes (x the avatar's right, y up, z forward; left-handed): v_unity = C @ v_face.
FACE_TO_UNITY = np.array([[0.0, -1.0, 0.0],
                          [0.0, 0.0, 1.0],
                          [1.0, 0.0, 0.0]])


def face_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """vtb's head rotation as a matrix in the face frame: intrinsic Z-Y'-X'' (HeadPose.msg)."""
    return euler2mat(math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg),
                     axes="rzyx")


def unity_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The same rotation as a matrix acting on Unity avatar coordinates (see the module doc)."""
    return FACE_TO_UNITY @ face_rotation(yaw_deg, pitch_deg, roll_deg) @ FACE_TO_UNITY.T


def unity_quaternion(yaw_deg: float, pitch_deg: float, roll_deg: float) -> tuple:
    """(qx, qy, qz, qw) as Unity and VMC write them, qw >= 0."""
    w, x, y, z = mat2quat(unity_rotation(yaw_deg, pitch_deg, roll_deg))
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    return (float(x), float(y), float(z), float(w))


def _clamp01(v) -> float:
    v = float(v)
    if not math.isfinite(v):
        return 0.0
    return min(1.0, max(0.0, v))


def _frame_finite(frame) -> bool:
    try:
        values = (*frame.euler, *frame.eye, *frame.blink, frame.mouth, *frame.params.values(), *frame.blendshapes.values())
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


class VMCOutput:
    """Sends each AvatarFrame as one VMC bundle. `send` never blocks and never raises on
    network trouble (counted in `errors`). `expressions`: "vrm0" or "vrm1" blend shape names;
    `bone_positions`: {bone: (x, y, z)} to send positions (only those bones), else rotations
    only; `look_blendshapes`: also send the gaze as LookUp/Down/Left/Right."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 expressions: str = "vrm0", bone_positions: dict | None = None,
                 send_eyes: bool = True, look_blendshapes: bool = True,
                 look_range_deg: float = 30.0, perfect_sync: bool = True):
        if expressions not in EXPRESSIONS:
            raise ValueError(f"expressions must be one of {sorted(EXPRESSIONS)}, not {expressions!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"port must be an integer 1..65535, not {port!r}")
        self.host, self.port, self.send_eyes = host, int(port), bool(send_eyes)
        self.expressions, self.names = expressions, EXPRESSIONS[expressions]
        self.look_blendshapes, self.look_range_deg = bool(look_blendshapes), float(look_range_deg)
        self.perfect_sync = bool(perfect_sync)
        self.bone_positions = {}
        for bone, pos in (bone_positions or {}).items():
            if bone not in BONES:
                raise ValueError(f"bone_positions: {bone!r} is not one of {BONES}")
            pos = tuple(float(v) for v in pos)
            if len(pos) != 3 or not all(math.isfinite(v) for v in pos):
                raise ValueError(f"bone_positions[{bone!r}] must be three finite numbers (x, y, z)")
            self.bone_positions[bone] = pos
        # Resolve once: sendto() with a host name would resolve (and could block) every frame.
        family, _, _, _, sockaddr = socket.getaddrinfo(host, self.port, type=socket.SOCK_DGRAM)[0]
        self._client = UDPClient(sockaddr[0], self.port, family=family)   # non-blocking socket
        self._t0 = time.monotonic()
        self.sent = 0      # bundles handed to the kernel
        self.errors = 0    # bundles dropped (the socket refused them)
        self.not_finite = 0   # frames not sent: NaN or infinity in them
        self.last_error = ""
        self._last_warning = -math.inf

    # -- building -------------------------------------------------------------------------
    def blend_values(self, frame: AvatarFrame) -> list:
        """[(name, value)] in sending order: blink left, blink right, the vowels, then (with
        look_blendshapes) look up, down, left, right."""
        n = self.names
        screen_left_open, screen_right_open = frame.blink
        # the avatar faces the viewer: its own left eye is the one on the screen's right
        out = [(n["blink_left"], 1.0 - _clamp01(screen_right_open)),
               (n["blink_right"], 1.0 - _clamp01(screen_left_open))]
        out += [(n[key], _clamp01(frame.params.get(param, 0.0))) for key, param in VOWELS]
        if self.look_blendshapes:
            x, y = self.look(frame)
            out += [(n["look_up"], _clamp01(y)), (n["look_down"], _clamp01(-y)),
                    (n["look_left"], _clamp01(x)), (n["look_right"], _clamp01(-x))]
        if self.perfect_sync:
            out += [(name, _clamp01(v)) for name, v in frame.blendshapes.items()]
        return out

    def look(self, frame: AvatarFrame) -> tuple:
        """(x, y) of the gaze, -1..1: x > 0 to the avatar's own left (the screen's right), y > 0
        up; ParamEyeBallX/Y when the frame has them, else from frame.eye."""
        theta, phi = (_finite(v) for v in frame.eye)
        x = _finite(frame.params.get("ParamEyeBallX", math.degrees(theta) / self.look_range_deg))
        y = _finite(frame.params.get("ParamEyeBallY", -math.degrees(phi) / self.look_range_deg))
        return x, y

    def bone_poses(self, frame: AvatarFrame) -> list:
        """[(bone, (px, py, pz), (qx, qy, qz, qw))] in sending order: Head, LeftEye, RightEye;
        with bone_positions, only the bones that have one."""
        pitch, yaw, roll = (_finite(v) for v in frame.euler)
        rotations = {"Head": unity_quaternion(yaw, pitch, roll)}
        if self.send_eyes:
            theta, phi = (_finite(v) for v in frame.eye)
            rotations["LeftEye"] = rotations["RightEye"] = unity_quaternion(
                math.degrees(theta), math.degrees(phi), 0.0)
        if not self.bone_positions:
            return [(bone, NO_POSITION, q) for bone, q in rotations.items()]
        return [(bone, self.bone_positions[bone], q) for bone, q in rotations.items()
                if bone in self.bone_positions]

    def build(self, frame: AvatarFrame):
        """The frame's OSC bundle (pythonosc OscBundle; `.dgram` is the datagram)."""
        bundle = OscBundleBuilder(IMMEDIATELY)
        msg = OscMessageBuilder(OK)
        for v in (MODEL_LOADED, CALIBRATED, NORMAL_MODE, 1 if frame.tracked else 0):
            msg.add_arg(int(v), "i")
        bundle.add_content(msg.build())
        msg = OscMessageBuilder(TIME)
        msg.add_arg(float(time.monotonic() - self._t0), "f")
        bundle.add_content(msg.build())
        for bone, pos, quat in self.bone_poses(frame):
            msg = OscMessageBuilder(BONE_POS)
            msg.add_arg(bone, "s")
            for v in (*pos, *quat):
                msg.add_arg(float(v), "f")
            bundle.add_content(msg.build())
        for name, value in self.blend_values(frame):
            msg = OscMessageBuilder(BLEND_VAL)
            msg.add_arg(name, "s")
            msg.add_arg(float(value), "f")
            bundle.add_content(msg.build())
        bundle.add_content(OscMessageBuilder(BLEND_APPLY).build())
        return bundle.build()

    # -- sending --------------------------------------------------------------------------
    def send(self, frame: AvatarFrame) -> bool:
        """Send one frame; True if the kernel took the datagram."""
        if not _frame_finite(frame):
            self.not_finite += 1
            if time.monotonic() - self._last_warning >= 5.0:
                self._last_warning = time.monotonic()
                log.warning("VMC: a frame holding NaN or infinity was not sent (%d so far)", self.not_finite)
            return False
        try:
            self._client.send(self.build(frame))
        except OSError as e:   # BlockingIOError (buffer full), ECONNREFUSED, no route, ...
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        self.sent += 1
        return True

    def counters(self) -> dict:
        return {"sent": self.sent, "errors": self.errors, "not_finite": self.not_finite,
                "last_error": self.last_error}

    def close(self):
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
