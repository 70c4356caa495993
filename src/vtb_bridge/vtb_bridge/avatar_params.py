"""Avatar parameters from vtb's perception: Live2D standard parameters and robot-head joints.
No rclpy here.

Inputs per image (any may be missing): head pose (yaw, pitch, roll in degrees, vtb_msgs/HeadPose
signs), gaze relative to the head (yaw, pitch in degrees), and the face state (eye openness,
mouth, vowels, brows). Each Live2D parameter is `gain * source + offset`, clipped to its range,
smoothed; `mirror` swaps left and right so the avatar moves like the user's mirror image. When
the face is lost, every parameter eases back to its neutral value. The table, gains, ranges
and smoothing come from YAML (config/avatar.yaml).

Signs are Live2D's, as seen on the screen: ParamAngleX > 0 turns the face towards the screen's
right, ParamAngleY > 0 looks up, ParamAngleZ > 0 tilts the top of the head towards the screen's
right, ParamEyeBallX > 0 looks towards the screen's right; ParamEyeLOpen is the model's own left
eye (on the screen's right). With mirror off the avatar copies the user as a camera shows them:
ParamAngleX = yaw (the user turned to their own left), ParamAngleY = -pitch, ParamAngleZ = -roll
(the user tilted to their own right shoulder: the screen's left), ParamEyeBallX = gaze yaw / 30,
ParamEyeLOpen = the user's left eye. Mirror on negates yaw, roll and gaze yaw and swaps the eyes
and brows. This is the only place that mirrors: every output sends what the frame holds (the
README's mirroring table). The body follows the head (ParamBodyAngle*, gain 0.3).

Neutral (`calibrate_neutral()`, the bridge node's `calibrate_neutral` service and the built-in
page's button): the head pose and gaze of the last `neutral_window_s` (median) become the
avatar's rest; from then on the head's rotation is taken relative to that rest pose and the gaze
minus that rest gaze, before mirroring, so every output (and the robot head) starts from the
user's own "straight ahead". Kept until `reset_neutral()` or the process ends.

Before any calibration the gaze's rest is learned (`gaze_neutral_learn_s`, default 60 s; 0: off):
the median of the gaze over that last stretch (sampled at 10 Hz, used from the fifth sample, half
a second into tracking). Users mostly look at their screen beside the camera, and the eye model
reads a user's straight-ahead look 7-13 degrees down (the issue-21 check; it differs by person
and camera), so without it the avatar looked down until someone clicked "calibrate". An
explicit calibration replaces it; `reset_neutral()` goes back to the learned one.

Settings (the built-in page's, also bridge parameters; `config` keys of the same names):
`head_sensitivity` and `eye_sensitivity` scale the head's and the gaze's angles (after the
neutral, before the gains), `smoothing` scales every time constant (1: as configured, 0: none).

The 52 ARKit blendshapes (FaceState.blendshapes, "perfect sync") pass through to every output
as `AvatarFrame.blendshapes`: clipped to 0..1, followed with `blendshape_smoothing_s` (YAML,
default 0.03 s), the Left/Right names swapped with mirror on (as the eyes), eased to 0 when the
face is lost.

Bad inputs never poison the state: `update()` drops every source that is not a finite number
or is out of its range (`SOURCE_LIMITS`: head angles within 180 deg, gaze within 90 deg, the face
state within a few units), counting them in `rejected`; a smoothing filter never takes a
non-finite value, and a value that somehow went non-finite is reset to its neutral. Every frame
holds finite numbers only.
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml
from transforms3d.euler import euler2mat, mat2euler

from .avatar_frame import AvatarFrame


def swap_sides(name: str) -> str:
    """eyeBlinkLeft <-> eyeBlinkRight, jawLeft <-> jawRight (ARKit names, for mirroring); other
    names unchanged."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name

# Live2D parameter -> (source, default gain, min, max, neutral)
DEFAULT_TABLE = {
    "ParamAngleX": ("head_yaw", 1.0, -30.0, 30.0, 0.0),
    "ParamAngleY": ("head_pitch", -1.0, -30.0, 30.0, 0.0),
    "ParamAngleZ": ("head_roll", -1.0, -30.0, 30.0, 0.0),    # roll > 0 (own right shoulder): screen's left
    "ParamBodyAngleX": ("head_yaw", 0.3, -10.0, 10.0, 0.0),
    "ParamBodyAngleY": ("head_pitch", -0.3, -10.0, 10.0, 0.0),
    "ParamBodyAngleZ": ("head_roll", -0.3, -10.0, 10.0, 0.0),
    "ParamEyeLOpen": ("eye_left_open", 1.0, 0.0, 1.0, 1.0),
    "ParamEyeROpen": ("eye_right_open", 1.0, 0.0, 1.0, 1.0),
    "ParamEyeBallX": ("gaze_yaw", 1 / 30, -1.0, 1.0, 0.0),
    "ParamEyeBallY": ("gaze_pitch", -1 / 30, -1.0, 1.0, 0.0),
    "ParamMouthOpenY": ("mouth_open", 1.0, 0.0, 1.0, 0.0),
    "ParamMouthForm": ("mouth_form", 1.0, -1.0, 1.0, 0.0),
    "ParamBrowLY": ("brow_left_raise", 1.0, -1.0, 1.0, 0.0),
    "ParamBrowRY": ("brow_right_raise", 1.0, -1.0, 1.0, 0.0),
    "ParamA": ("vowel_a", 1.0, 0.0, 1.0, 0.0),
    "ParamI": ("vowel_i", 1.0, 0.0, 1.0, 0.0),
    "ParamU": ("vowel_u", 1.0, 0.0, 1.0, 0.0),
    "ParamE": ("vowel_e", 1.0, 0.0, 1.0, 0.0),
    "ParamO": ("vowel_o", 1.0, 0.0, 1.0, 0.0),
}
# what mirroring swaps (left <-> right sources) and negates (sideways motions)
MIRROR_SWAP = {"eye_left_open": "eye_right_open", "eye_right_open": "eye_left_open",
               "brow_left_raise": "brow_right_raise", "brow_right_raise": "brow_left_raise"}
MIRROR_NEGATE = {"head_yaw", "head_roll", "gaze_yaw"}
# largest magnitude a source may have; a value beyond it (or not finite) is a bad input
SOURCE_LIMITS = {"head_yaw": 180.0, "head_pitch": 180.0, "head_roll": 180.0, "gaze_yaw": 90.0, "gaze_pitch": 90.0}
STATE_LIMIT = 10.0        # face-state fields are 0..1 or -1..1 (ratios a little more)


def source_ok(name: str, value) -> bool:
    """A finite number within the source's range (booleans count as numbers)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and abs(v) <= SOURCE_LIMITS.get(name, STATE_LIMIT)


@dataclass
class ParamSpec:
    name: str
    source: str
    gain: float
    min: float
    max: float
    neutral: float
    smoothing: float = 0.0     # seconds (time constant of an exponential follow); 0: none


@dataclass
class Inputs:
    """One image's perception for one face; None where a topic did not come."""
    face_id: str
    stamp: float
    head: tuple | None = None          # (yaw, pitch, roll) degrees
    gaze: tuple | None = None          # (yaw, pitch) degrees relative to the head
    state: dict | None = None          # FaceState fields
    blendshapes: dict | None = None    # ARKit name -> 0..1 (FaceState.blendshapes), the subject's sides


def load_config(path: str | Path | None = None) -> dict:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"avatar configuration {path} does not exist")
    return yaml.safe_load(path.read_text()) or {}


def specs_from_config(config: dict) -> dict:
    params = config.get("parameters", {})
    default_smoothing = float(config.get("smoothing_s", 0.05))
    specs = {}
    for name, (source, gain, lo, hi, neutral) in DEFAULT_TABLE.items():
        c = params.get(name, {})
        specs[name] = ParamSpec(name, c.get("source", source), float(c.get("gain", gain)), float(c.get("min", lo)),
                                float(c.get("max", hi)), float(c.get("neutral", neutral)),
                                float(c.get("smoothing_s", default_smoothing)))
    for name, c in params.items():  # extra parameters for a custom rig
        if name not in specs:
            specs[name] = ParamSpec(name, c["source"], float(c.get("gain", 1.0)), float(c.get("min", -1e9)),
                                    float(c.get("max", 1e9)), float(c.get("neutral", 0.0)),
                                    float(c.get("smoothing_s", default_smoothing)))
    return specs


@dataclass
class AvatarMapper:
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        self.specs = specs_from_config(self.config)
        self.mirror = bool(self.config.get("mirror", True))
        self.ease_s = float(self.config.get("ease_to_neutral_s", 0.5))
        self.values = {n: s.neutral for n, s in self.specs.items()}
        self.last_stamp = None
        self.face_id = ""
        self.last_raw = {}
        self.rejected = 0          # input values dropped: not finite or out of range
        # ARKit blendshapes: passed through (mirrored like the eyes), followed with this time
        # constant; eased to 0 when the face is lost
        self.blendshape_smoothing_s = float(self.config.get("blendshape_smoothing_s", 0.03))
        # the page's settings (also bridge parameters): the head's and the eyes' motion scaled,
        # every time constant scaled (1: as the YAML says, 0: none)
        self.head_sensitivity = float(self.config.get("head_sensitivity", 1.0))
        self.eye_sensitivity = float(self.config.get("eye_sensitivity", 1.0))
        self.smoothing = float(self.config.get("smoothing", 1.0))
        self.blendshapes = {}
        self._init_neutral()

    def sources(self, inputs: Inputs) -> dict:
        src = {}
        if inputs.head is not None:
            src["head_yaw"], src["head_pitch"], src["head_roll"] = (self.head_sensitivity * v for v in inputs.head[:3])
        if inputs.gaze is not None:
            src["gaze_yaw"], src["gaze_pitch"] = (self.eye_sensitivity * v for v in inputs.gaze[:2])
        if inputs.state:
            src.update(inputs.state)
        if self.mirror:
            src = {MIRROR_SWAP.get(k, k): (-v if k in MIRROR_NEGATE else v) for k, v in src.items()}
        return src

    # ---- neutral pose: the user's rest is the avatar's rest --------------------------------------
    def _init_neutral(self):
        self.neutral_window_s = float(self.config.get("neutral_window_s", 0.5))
        self.neutral_head = None      # rotation (3x3, of the yaw-pitch-roll angles) of the rest pose
        self.neutral_head_ypr = None
        self.neutral_gaze = None      # (yaw, pitch) degrees
        self.gaze_learn_s = float(self.config.get("gaze_neutral_learn_s", 60.0))
        self._gaze_seen = deque(maxlen=max(1, int(self.gaze_learn_s * 10)))   # (stamp, yaw, pitch) at <= 10 Hz
        self._recent = deque(maxlen=240)   # (stamp, head, gaze) of the latest inputs, unmirrored
        self._neutral_lock = threading.Lock()

    def calibrate_neutral(self) -> tuple[bool, str]:
        """The head pose and gaze of the last `neutral_window_s` seconds of input (median) become
        the neutral. Safe to call from any thread. Returns (success, message)."""
        with self._neutral_lock:
            if not self._recent:
                return False, "no face seen yet: nothing to take as neutral"
            last = self._recent[-1][0]
            recent = [r for r in self._recent if last - r[0] <= self.neutral_window_s]
            heads = [r[1] for r in recent if r[1] is not None]
            gazes = [r[2] for r in recent if r[2] is not None]
            if not heads and not gazes:
                return False, "no head pose or gaze in the last frames: nothing to take as neutral"
            said = []
            if heads:
                ypr = tuple(float(v) for v in np.median(np.array(heads, float), axis=0))
                self.neutral_head_ypr, self.neutral_head = ypr, euler2mat(*np.radians(ypr), axes="rzyx")
                said.append("head yaw/pitch/roll " + "/".join(f"{v:.1f}" for v in ypr) + " deg")
            if gazes:
                self.neutral_gaze = tuple(float(v) for v in np.median(np.array(gazes, float), axis=0))
                said.append("gaze yaw/pitch " + "/".join(f"{v:.1f}" for v in self.neutral_gaze) + " deg")
            return True, "neutral: " + ", ".join(said) + f" (median of {len(recent)} frames)"

    def reset_neutral(self) -> tuple[bool, str]:
        with self._neutral_lock:
            self.neutral_head = self.neutral_head_ypr = self.neutral_gaze = None
        return True, "neutral cleared: head and gaze as measured"

    def neutralised(self, inputs: Inputs) -> Inputs:
        """Remember `inputs` for a later calibration; return them relative to the neutral."""
        with self._neutral_lock:
            self._recent.append((inputs.stamp, inputs.head, inputs.gaze))
            head, gaze = inputs.head, inputs.gaze
            if head is not None and self.neutral_head is not None:
                rel = self.neutral_head.T @ euler2mat(*np.radians(head[:3]), axes="rzyx")
                head = tuple(float(v) for v in np.degrees(mat2euler(rel, axes="rzyx")))
            rest = self.neutral_gaze if self.neutral_gaze is not None else self._learn_gaze(inputs.stamp, gaze)
            if gaze is not None and rest is not None:
                gaze = (gaze[0] - rest[0], gaze[1] - rest[1])
        return replace(inputs, head=head, gaze=gaze)

    def learned_gaze(self):
        """The gaze's learned rest (yaw, pitch) degrees, or None (too few samples, or off)."""
        if self.gaze_learn_s <= 0 or len(self._gaze_seen) < 5:
            return None
        return tuple(float(v) for v in np.median(np.array(self._gaze_seen, float)[:, 1:], axis=0))

    def _learn_gaze(self, stamp, gaze):
        if self.gaze_learn_s > 0 and gaze is not None:
            seen = self._gaze_seen
            if seen and stamp < seen[-1][0]:   # time went back (a looped clip, a new bag): start over
                seen.clear()
            if not seen or stamp - seen[-1][0] >= 0.1:
                seen.append((stamp, gaze[0], gaze[1]))
            while seen and stamp - seen[0][0] > self.gaze_learn_s:
                seen.popleft()
        return self.learned_gaze()

    def checked(self, inputs: Inputs) -> Inputs:
        """`inputs` without the parts that hold a bad value (not finite, out of range): a head
        pose or a gaze goes as a whole, a face-state field alone. Counts them in `rejected`."""
        head, gaze, state = inputs.head, inputs.gaze, inputs.state
        if head is not None and not (len(head) >= 3 and all(
                source_ok(n, v) for n, v in zip(("head_yaw", "head_pitch", "head_roll"), head))):
            head = None
            self.rejected += 1
        if gaze is not None and not (len(gaze) >= 2 and all(
                source_ok(n, v) for n, v in zip(("gaze_yaw", "gaze_pitch"), gaze))):
            gaze = None
            self.rejected += 1
        if state:
            good = {k: v for k, v in state.items() if source_ok(k, v)}
            if len(good) != len(state):
                self.rejected += 1
            state = good
        shapes = inputs.blendshapes
        if shapes:
            good = {k: v for k, v in shapes.items() if isinstance(k, str) and source_ok(k, v) and -0.01 <= float(v) <= 1.01}
            if len(good) != len(shapes):
                self.rejected += 1
            shapes = {k: min(1.0, max(0.0, float(v))) for k, v in good.items()}
        stamp = inputs.stamp if isinstance(inputs.stamp, (int, float)) and math.isfinite(inputs.stamp) \
            else (self.last_stamp or 0.0)
        return replace(inputs, head=head, gaze=gaze, state=state, blendshapes=shapes, stamp=stamp)

    def update(self, inputs: Inputs) -> AvatarFrame:
        inputs = self.neutralised(self.checked(inputs))
        dt = 0.0 if self.last_stamp is None else max(0.0, inputs.stamp - self.last_stamp)
        self.last_stamp, self.face_id = inputs.stamp, inputs.face_id
        src = self.sources(inputs)
        for name, spec in self.specs.items():
            if spec.source not in src:
                continue  # keep the last value of a parameter whose input did not come
            target = float(np.clip(spec.gain * float(src[spec.source]), spec.min, spec.max))
            if not math.isfinite(target):
                continue
            self.values[name] = self._follow(self.values[name], target, self.smoothing * spec.smoothing, dt)
        for name, value in (inputs.blendshapes or {}).items():
            name = swap_sides(name) if self.mirror else name
            self.blendshapes[name] = self._follow(self.blendshapes.get(name, value), value,
                                                  self.smoothing * self.blendshape_smoothing_s, dt)
        self.last_raw = src
        return self.frame(inputs.stamp, tracked=True)

    def ease_to_neutral(self, stamp: float) -> AvatarFrame:
        """A step towards neutral (the face is lost), `stamp` seconds."""
        dt = 0.0 if self.last_stamp is None else max(0.0, stamp - self.last_stamp)
        self.last_stamp = stamp
        for name, spec in self.specs.items():
            self.values[name] = self._follow(self.values[name], spec.neutral, self.ease_s / 3, dt)
        for name in self.blendshapes:
            self.blendshapes[name] = self._follow(self.blendshapes[name], 0.0, self.ease_s / 3, dt)
        return self.frame(stamp, tracked=False)

    def at_neutral(self, tolerance: float = 1e-3) -> bool:
        return all(abs(self.values[n] - s.neutral) <= tolerance * max(1.0, abs(s.max - s.min))
                   for n, s in self.specs.items()) and all(abs(v) <= tolerance for v in self.blendshapes.values())

    @staticmethod
    def _follow(current: float, target: float, tau: float, dt: float) -> float:
        if not math.isfinite(target):
            return current if math.isfinite(current) else 0.0
        if not math.isfinite(current):
            return target
        if tau <= 0 or dt <= 0:
            return target if tau <= 0 else current
        return current + (1 - math.exp(-dt / tau)) * (target - current)

    def frame(self, stamp: float, tracked: bool) -> AvatarFrame:
        for name, spec in self.specs.items():     # last line of defence: only finite numbers out
            if not math.isfinite(self.values[name]):
                self.values[name] = spec.neutral
        for name, value in self.blendshapes.items():
            if not math.isfinite(value):
                self.blendshapes[name] = 0.0
        v = self.values
        # NodeServer fields (the avatar's motion after the mirror choice, in the original sender's
        # signs: HeadPose's): euler (pitch, yaw, roll) deg, eye (theta, phi) rad
        yaw = v["ParamAngleX"] / self.specs["ParamAngleX"].gain if self.specs["ParamAngleX"].gain else 0.0
        pitch = v["ParamAngleY"] / self.specs["ParamAngleY"].gain if self.specs["ParamAngleY"].gain else 0.0
        roll = v["ParamAngleZ"] / self.specs["ParamAngleZ"].gain if self.specs["ParamAngleZ"].gain else 0.0
        gx = v["ParamEyeBallX"] / self.specs["ParamEyeBallX"].gain if self.specs["ParamEyeBallX"].gain else 0.0
        gy = v["ParamEyeBallY"] / self.specs["ParamEyeBallY"].gain if self.specs["ParamEyeBallY"].gain else 0.0
        return AvatarFrame(face_id=self.face_id, stamp=stamp, params=dict(v), euler=(pitch, yaw, roll),
                           eye=(math.radians(gx), math.radians(gy)), mouth=v["ParamMouthOpenY"],
                           # (screen-left eye, screen-right eye): the model's right eye is on the
                           # screen's left
                           blink=(v["ParamEyeROpen"], v["ParamEyeLOpen"]), tracked=tracked,
                           blendshapes=dict(self.blendshapes))


@dataclass
class JointSpec:
    name: str
    source: str           # head_yaw, head_pitch, head_roll, gaze_yaw, gaze_pitch
    gain: float = 1.0     # joint radians per source radian
    min: float = -1.0     # radians
    max: float = 1.0
    max_velocity: float = 3.0   # rad/s


DEFAULT_JOINTS = [
    JointSpec("neck_yaw", "head_yaw", 1.0, -1.2, 1.2, 3.0),
    JointSpec("neck_pitch", "head_pitch", 1.0, -0.6, 0.6, 3.0),
    JointSpec("neck_roll", "head_roll", 1.0, -0.5, 0.5, 3.0),
    JointSpec("eye_pan", "gaze_yaw", 1.0, -0.6, 0.6, 10.0),
    JointSpec("eye_tilt", "gaze_pitch", 1.0, -0.4, 0.4, 10.0),
]


class RobotHead:
    """Joint positions for a robot head from the (unmirrored) head and gaze angles: gains,
    limits and rate limits from YAML (`robot_head.joints`)."""

    def __init__(self, config: dict | None = None):
        joints = (config or {}).get("joints")
        self.joints = [JointSpec(**j) for j in joints] if joints else list(DEFAULT_JOINTS)
        self.positions = {j.name: 0.0 for j in self.joints}
        self.last = None

    def update(self, sources_deg: dict, stamp: float) -> dict:
        dt = 0.0 if self.last is None else max(0.0, stamp - self.last)
        self.last = stamp
        for j in self.joints:
            if j.source not in sources_deg:
                continue
            target = float(np.clip(j.gain * math.radians(sources_deg[j.source]), j.min, j.max))
            step = j.max_velocity * dt if dt > 0 else float("inf")
            current = self.positions[j.name]
            self.positions[j.name] = current + float(np.clip(target - current, -step, step)) if dt > 0 else target
        return dict(self.positions)
