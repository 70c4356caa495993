"""BlazeFace face detection (MediaPipe's short- and full-range models) on ONNX Runtime.

Pipeline: letterbox the RGB image into the model's square input, run the network, decode the
anchor-relative boxes and 6 keypoints, keep scores above a threshold, and merge overlapping
boxes with MediaPipe's weighted non-maximum suppression. Anchors are generated once per model.
`face_detector("auto")` runs both models and merges their faces (AutoDetector). No rclpy here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .inference import ModelRunner
from .tracker import box_iou


@dataclass(frozen=True)
class AnchorOptions:
    """The subset of MediaPipe's SsdAnchorsCalculatorOptions that BlazeFace uses (all anchors
    have a fixed unit size, so only their centres matter)."""
    input_size: int
    strides: tuple
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset: float = 0.5


@dataclass(frozen=True)
class BlazeFaceConfig:
    model: str
    anchors: AnchorOptions
    score_threshold: float
    nms_iou_threshold: float = 0.3


CONFIGS = {
    # values from MediaPipe's face_detection_short_range / full_range graphs (0.5: its default
    # min_detection_confidence for both)
    "short": BlazeFaceConfig("face_detection_short_range",
                             AnchorOptions(128, (8, 16, 16, 16), 1.0), score_threshold=0.5),
    "full": BlazeFaceConfig("face_detection_full_range",
                            AnchorOptions(192, (4,), 0.0), score_threshold=0.5),
}


# what `model` accepts everywhere (pipeline, node parameter, graph argument, CLI); 'retinaface'
# is the trained RetinaFace mobilenet0.25 on AnchorDetector (anchor_detector.retinaface_detector)
MODELS = ("short", "full", "auto", "retinaface")


@dataclass
class Detection:
    box: np.ndarray                 # [x, y, width, height], pixels of the input image
    score: float
    keypoints: np.ndarray = field(repr=False)  # (6, 2) pixels: r-eye, l-eye, nose, mouth, r-ear, l-ear

    @property
    def center(self):
        return self.box[:2] + self.box[2:] / 2


def generate_anchors(opts: AnchorOptions) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order the network emits its boxes: layers with
    the same stride share a grid, and each grid cell holds one anchor per layer and ratio."""
    per_stride = []
    i = 0
    while i < len(opts.strides):
        stride = opts.strides[i]
        j = i
        n_per_cell = 0
        while j < len(opts.strides) and opts.strides[j] == stride:
            n_per_cell += 1 + (1 if opts.interpolated_scale_aspect_ratio > 0 else 0)
            j += 1
        cells = math.ceil(opts.input_size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs + opts.anchor_offset) / cells, (ys + opts.anchor_offset) / cells], -1)
        per_stride.append(np.repeat(centres.reshape(-1, 2), n_per_cell, axis=0))
        i = j
    return np.concatenate(per_stride).astype(np.float32)


def _iou_one_to_many(box, boxes):
    """IoU of one [x0, y0, x1, y1] box with many."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(corners, keypoints, scores, iou_threshold):
    """MediaPipe's WEIGHTED suppression: each cluster of boxes overlapping the best remaining
    one is replaced by their score-weighted mean (boxes and keypoints), with the best score.
    Returns (corners, keypoints, scores) of the kept faces, best first."""
    order = np.argsort(-scores)
    corners, keypoints, scores = corners[order], keypoints[order], scores[order]
    out_c, out_k, out_s = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        ious = _iou_one_to_many(corners[remaining[0]], corners[remaining])
        cluster = remaining[ious > iou_threshold]
        cluster = cluster if cluster.size else remaining[:1]
        w = scores[cluster][:, None]
        out_c.append((corners[cluster] * w).sum(0) / w.sum())
        out_k.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[remaining[0]])
        remaining = remaining[ious <= iou_threshold]
    return np.array(out_c).reshape(-1, 4), np.array(out_k).reshape(-1, 6, 2), np.array(out_s)


class BlazeFaceDetector:
    """Face detector. `detect(rgb)` takes an RGB uint8 image (H, W, 3) and returns Detections in
    that image's pixels, best first."""

    def __init__(self, model: str = "short", score_threshold: float | None = None,
                 provider: str = "cpu", threads: int = 1, backend: str = "auto", models_dir=None, logger=None):
        if model not in CONFIGS:
            raise ValueError(f"model must be one of {sorted(CONFIGS)}, got {model!r}")
        self.config = CONFIGS[model]
        self.score_threshold = self.config.score_threshold if score_threshold is None else score_threshold
        self.runner = ModelRunner(self.config.model, backend, provider, threads, models_dir, logger)
        self.anchors = generate_anchors(self.config.anchors)
        self.size = self.config.anchors.input_size

    def preprocess(self, rgb: np.ndarray):
        """Letterbox into the square input, scaled to [-1, 1], as a (1, S, S, 3) batch. Returns
        the tensor and the (scale, pad_x, pad_y) that map input pixels back to image pixels."""
        h, w = rgb.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        # area averaging when shrinking: bilinear aliases at the usual 4-10x downscale and loses
        # small faces (one of the six in the group photo); the ~0.2 ms it costs is paid only on
        # detection frames, which tracking makes rare
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        pad_x, pad_y = (self.size - nw) // 2, (self.size - nh) // 2
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        # resize straight into the letterbox (no intermediate image)
        cv2.resize(rgb, (nw, nh), dst=canvas[pad_y:pad_y + nh, pad_x:pad_x + nw], interpolation=interp)
        tensor = canvas.astype(np.float32)
        tensor *= 1 / 127.5
        tensor -= 1.0
        return tensor[None], (scale, pad_x, pad_y)

    def decode(self, regressors, classificators, letterbox):
        raw = regressors.reshape(-1, 16)
        # sigmoid written with tanh: no overflow for large negative logits
        scores = 0.5 + 0.5 * np.tanh(0.5 * classificators.reshape(-1))
        keep = scores >= self.score_threshold
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        pts = raw.reshape(-1, 8, 2) / self.size
        centre = pts[:, 0] + anchors
        half = pts[:, 1] / 2
        corners = np.concatenate([centre - half, centre + half], axis=1)
        keypoints = pts[:, 2:] + anchors[:, None, :]
        corners, keypoints, scores = weighted_nms(corners, keypoints, scores, self.config.nms_iou_threshold)
        # from [0, 1] of the letterboxed square to pixels of the original image
        scale, pad_x, pad_y = letterbox
        offset = np.array([pad_x, pad_y], np.float32)
        corners = (corners.reshape(-1, 2, 2) * self.size - offset) / scale
        keypoints = (keypoints * self.size - offset) / scale
        return [Detection(box=np.concatenate([c[0], c[1] - c[0]]).astype(np.float32), score=float(s),
                          keypoints=k.astype(np.float32))
                for c, k, s in zip(corners, keypoints, scores)]

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        tensor, letterbox = self.preprocess(rgb)
        regressors, classificators = self.runner(tensor)
        return self.decode(regressors, classificators, letterbox)


class AutoDetector:
    """Both BlazeFace models on every call, their faces pooled, best score first.

    Each model misses what the other finds: the short-range one (128 px input) every face
    under about 1/10 of the image (the ~100 px faces of 1024 px photos, a dancer's 30 px face),
    the full-range one (192 px, tuned for small faces) many faces that fill the frame. A face
    both find is kept once, as the short-range model saw it (the one vtb is tuned on). Both
    cost about 3 ms together on the CPU, paid only on detection frames, which tracking makes
    rare. Either model's false positives are weeded out by the caller: FacePipeline keeps only
    the candidates the landmark model confirms."""

    def __init__(self, score_threshold: float | None = None, provider: str = "cpu", threads: int = 1,
                 backend: str = "auto", models_dir=None, logger=None):
        self.short = BlazeFaceDetector("short", score_threshold, provider, threads, backend, models_dir, logger)
        self.full = BlazeFaceDetector("full", score_threshold, provider, threads, backend, models_dir, logger)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        near = self.short.detect(rgb)
        far = [d for d in self.full.detect(rgb) if all(box_iou(d.box, n.box) <= 0.3 for n in near)]
        return sorted(near + far, key=lambda d: -d.score)


def face_detector(model: str = "short", score_threshold: float | None = None, provider: str = "cpu",
                  threads: int = 1, backend: str = "auto", models_dir=None, logger=None, **options):
    """The detector for a `model` name of MODELS: one BlazeFace model, both ('auto'), or the
    trained RetinaFace ('retinaface', ONNX Runtime; `options`: scale, drop_levels, anchor_stride)."""
    if model == "retinaface":
        from .anchor_detector import retinaface_detector
        return retinaface_detector(score_threshold, provider, threads, models_dir, logger, **options)
    if options:
        raise ValueError(f"{', '.join(sorted(options))}: RetinaFace options, not for model {model!r}")
    if model == "auto":
        return AutoDetector(score_threshold, provider, threads, backend, models_dir, logger)
    if model not in CONFIGS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return BlazeFaceDetector(model, score_threshold, provider, threads, backend, models_dir, logger)
