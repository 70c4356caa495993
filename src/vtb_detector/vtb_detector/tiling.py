"""Tiled and multi-scale detection: for faces too small for one pass of a detector.

A detector with a small square input (BlazeFace short range: 128 x 128) shrinks a whole
1280 x 886 photo by 10x, and 100 px faces become 10 px, below what it was trained on. Running
it on overlapping tiles gives each face more input pixels; with `include_full` the whole image
is searched as well, for faces larger than a tile. Detections from every window are mapped
back to image pixels and merged by non-maximum suppression that also treats a box mostly
inside a better one as a duplicate (a face cut by a tile edge gives such a partial box).

Works with any detector whose `detect(rgb)` returns `Detection`s (BlazeFaceDetector,
AnchorDetector). No rclpy here.
"""
from __future__ import annotations

import numpy as np

from .blazeface import Detection


def tile_windows(height: int, width: int, tiles=(2, 2), overlap: float = 0.35) -> list[tuple]:
    """(x0, y0, x1, y1) of `tiles` = (columns, rows) windows that cover the image, neighbours
    sharing `overlap` of a tile's width / height."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    nx, ny = tiles
    if nx < 1 or ny < 1:
        raise ValueError(f"tiles must be at least (1, 1), got {tiles}")
    # n tiles of size t overlapping by overlap * t span t * (n - (n - 1) * overlap)
    tw = width / (nx - (nx - 1) * overlap)
    th = height / (ny - (ny - 1) * overlap)
    windows = []
    for iy in range(ny):
        for ix in range(nx):
            x0, y0 = round(ix * tw * (1 - overlap)), round(iy * th * (1 - overlap))
            x1 = width if ix == nx - 1 else min(width, round(x0 + tw))
            y1 = height if iy == ny - 1 else min(height, round(y0 + th))
            windows.append((x0, y0, x1, y1))
    return windows


def merge_detections(detections: list[Detection], iou_threshold: float = 0.3,
                     containment: float = 0.7) -> list[Detection]:
    """Greedy suppression, best score first: a detection goes when its IoU with a kept one
    exceeds `iou_threshold`, or when more than `containment` of its own area lies inside a kept
    one (partial faces from tile edges)."""
    if not detections:
        return []
    order = sorted(detections, key=lambda d: -d.score)
    boxes = np.array([d.box for d in order], np.float64)
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    areas = boxes[:, 2] * boxes[:, 3]
    keep = []
    rest = np.arange(len(order))
    while rest.size:
        i, others = rest[0], rest[1:]
        keep.append(order[i])
        w = np.minimum(corners[i, 2], corners[others, 2]) - np.maximum(corners[i, 0], corners[others, 0])
        h = np.minimum(corners[i, 3], corners[others, 3]) - np.maximum(corners[i, 1], corners[others, 1])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        iou = inter / np.maximum(areas[i] + areas[others] - inter, 1e-12)
        inside = inter / np.maximum(areas[others], 1e-12)
        rest = others[(iou <= iou_threshold) & (inside <= containment)]
    return keep


def _shifted(d: Detection, dx: float, dy: float) -> Detection:
    offset = np.array([dx, dy], np.float32)
    box = d.box.copy()
    box[:2] += offset
    return Detection(box=box, score=d.score, keypoints=d.keypoints + offset)


def detect_tiled(detector, rgb: np.ndarray, tiles=(2, 2), overlap: float = 0.35,
                 include_full: bool = True, iou_threshold: float = 0.3,
                 containment: float = 0.7) -> list[Detection]:
    """Faces in `rgb` found by `detector` on overlapping tiles (and on the whole image when
    `include_full`), merged; boxes and keypoints in image pixels, best first."""
    h, w = rgb.shape[:2]
    found = list(detector.detect(rgb)) if include_full else []
    for x0, y0, x1, y1 in tile_windows(h, w, tiles, overlap):
        if (x0, y0, x1, y1) == (0, 0, w, h) and include_full:
            continue
        # a view, not a copy: cv2 reads strided rows, and the detectors resize the tile anyway
        found += [_shifted(d, x0, y0) for d in detector.detect(rgb[y0:y1, x0:x1])]
    return merge_detections(found, iou_threshold, containment)


def detect_multiscale(detector_for_scale, rgb: np.ndarray, scales=(1.0, 2.0),
                      iou_threshold: float = 0.3, containment: float = 0.7) -> list[Detection]:
    """Faces found at several input scales, merged. `detector_for_scale(scale)` gives a
    detector for that scale (e.g. lambda s: AnchorDetector(path, config, scale=s), built once
    per scale by the caller and looked up here)."""
    found = []
    for s in scales:
        found += list(detector_for_scale(s).detect(rgb))
    return merge_detections(found, iou_threshold, containment)
