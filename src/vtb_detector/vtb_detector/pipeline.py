"""Per-frame face perception: detect or track, then the 468-point mesh and the iris model,
giving MediaPipe's 478-point layout with stable face ids.

While a face is tracked its next crop comes from its own landmarks and the detector is
skipped. The detector runs when nothing is tracked, every `redetect_every` frames (to find new
faces), and on the frame after a tracked face's presence score drops below
`redetect_threshold`. A face whose presence falls below `presence_threshold` is lost; if it
comes back it is a new face with a new id. No rclpy here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .blazeface import BlazeFaceDetector
from .landmarks import FaceMesh, IrisModel, Roi, refine_with_iris, roi_from_detection, roi_from_landmarks
from .tracker import box_iou, new_face_id

# BlazeFace's 6 keypoints, rebuilt from the landmarks so every face carries them: subject's
# right eye (iris centre, or the eye corners' midpoint without iris), left eye, nose tip, mouth
# centre, right and left ear tragion (face-oval points level with the ears).
# each keypoint is the midpoint of two landmarks (a landmark twice where one is enough)
KEYPOINTS_FROM_LANDMARKS = np.array([[468, 473, 1, 13, 234, 454], [468, 473, 1, 14, 234, 454]])
KEYPOINTS_FROM_MESH = np.array([[33, 362, 1, 13, 234, 454], [133, 263, 1, 14, 234, 454]])


@dataclass
class FaceResult:
    id: str
    score: float                 # score of the detection that started the track
    box: np.ndarray              # [x, y, w, h] pixels (the landmarks' bounding box)
    keypoints: np.ndarray        # (6, 2) pixels, BlazeFace order
    landmarks: np.ndarray = field(repr=False)   # (478, 3) or (468, 3): x, y pixels, z relative
    presence: float = 0.0        # face presence from the mesh model, 0..1
    tracked: bool = False        # True when this frame's crop came from the previous landmarks


@dataclass
class _Track:
    id: str
    score: float
    roi: Roi
    tracked: bool = False
    age: int = 0


def keypoints_from_landmarks(lm: np.ndarray) -> np.ndarray:
    a, b = KEYPOINTS_FROM_LANDMARKS if len(lm) >= 478 else KEYPOINTS_FROM_MESH
    return ((lm[a, :2] + lm[b, :2]) * 0.5).astype(np.float32)


class FacePipeline:
    def __init__(self, detector: str = "short", max_faces: int = 1, redetect_every: int = 30,
                 presence_threshold: float = 0.5, redetect_threshold: float = 0.8,
                 refine_iris: bool = True, backend: str = "auto", provider: str = "cpu",
                 threads: int = 1, score_threshold: float | None = None, models_dir=None, logger=None):
        self.detector = BlazeFaceDetector(detector, score_threshold, provider, threads, backend, models_dir, logger)
        self.mesh = FaceMesh(backend, provider, threads, models_dir, logger)
        self.iris = IrisModel(backend, provider, threads, models_dir, logger) if refine_iris else None
        self.max_faces = max_faces
        self.redetect_every = redetect_every
        self.presence_threshold = presence_threshold
        self.redetect_threshold = redetect_threshold
        self.tracks: list[_Track] = []
        self.frames_since_detection = 0
        self.force_detection = True
        self.timings: dict[str, float] = {}   # ms per stage of the last frame

    def reset(self):
        self.tracks, self.force_detection = [], True

    def _needs_detection(self) -> bool:
        return (self.force_detection or not self.tracks
                or (self.redetect_every > 0 and self.frames_since_detection >= self.redetect_every))

    def _add_detections(self, rgb):
        detections = self.detector.detect(rgb)
        self.frames_since_detection = 0
        self.force_detection = False
        tracked_boxes = [_roi_box(t.roi) for t in self.tracks]
        taken = {t.id for t in self.tracks}
        for det in detections:
            if len(self.tracks) >= self.max_faces:
                break
            # a face already followed keeps its landmark-based crop (more precise) and its id
            if any(box_iou(det.box, b) > 0.3 for b in tracked_boxes):
                continue
            fid = new_face_id(taken)
            taken.add(fid)
            self.tracks.append(_Track(fid, det.score, roi_from_detection(det)))

    def process(self, rgb: np.ndarray) -> list[FaceResult]:
        t0 = time.perf_counter()
        detect_ms = 0.0
        if self._needs_detection():
            self._add_detections(rgb)
            detect_ms = 1e3 * (time.perf_counter() - t0)
        else:
            self.frames_since_detection += 1

        t1 = time.perf_counter()
        rois = [t.roi for t in self.tracks]
        batch = self.mesh.crops(rgb, rois) if rois else None
        t2 = time.perf_counter()
        meshes = self.mesh.infer(batch, rois) if rois else []
        t3 = time.perf_counter()

        kept = []
        for track, (lm, presence) in zip(self.tracks, meshes):
            if presence < self.presence_threshold:
                continue  # lost: a later detection starts a new track with a new id
            if presence < self.redetect_threshold:
                self.force_detection = True
            kept.append((track, lm, presence))
        kept = _drop_duplicates(kept)
        t3b = time.perf_counter()

        eyes = self.iris(rgb, [lm for _, lm, _ in kept]) if self.iris and kept else [None] * len(kept)
        t5 = time.perf_counter()
        results, self.tracks = [], []
        for k, (track, lm, presence) in enumerate(kept):
            full = refine_with_iris(lm, eyes[k]) if eyes[k] else lm
            lo, hi = full[:468, :2].min(0), full[:468, :2].max(0)
            results.append(FaceResult(track.id, track.score, np.concatenate([lo, hi - lo]),
                                      keypoints_from_landmarks(full), full, presence, track.tracked))
            self.tracks.append(_Track(track.id, track.score, roi_from_landmarks(full), True, track.age + 1))
        t6 = time.perf_counter()
        # crop: the face crop; landmarks: the mesh; iris: eye crops and the iris model
        self.timings = {"detect": detect_ms, "crop": 1e3 * (t2 - t1), "landmarks": 1e3 * (t3 - t2),
                        "iris": 1e3 * (t5 - t3b), "total": 1e3 * (t6 - t0)}
        return results


def _roi_box(roi: Roi):
    """The axis-aligned face box inside a face ROI (the ROI is 1.5x the face)."""
    side = roi.size / 1.5
    return [roi.cx - side / 2, roi.cy - side / 2, side, side]


def _drop_duplicates(kept):
    """Two tracks that converged on one face: keep the older (its id came first)."""
    out = []
    for item in sorted(kept, key=lambda k: -k[0].age):
        box = _landmark_box(item[1])
        if all(box_iou(box, _landmark_box(o[1])) < 0.5 for o in out):
            out.append(item)
    order = {id(k[0]): i for i, k in enumerate(kept)}
    return sorted(out, key=lambda k: order[id(k[0])])


def _landmark_box(lm):
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    return [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
