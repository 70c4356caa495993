"""Per-frame face perception: detect or track, then the landmarks in MediaPipe's 478-point
layout with stable face ids: by default MediaPipe Face Landmarker's model (478 points in one
pass), or with `landmark_model` "face_mesh" the 468-point mesh and the iris model.

While a face is tracked its next crop comes from its own landmarks and the detector is
skipped. The detector runs when nothing is tracked, every `redetect_every` frames (to find new
faces), on the frame after a tracked face's presence score drops below `redetect_threshold`,
and on the frame a tracked face is lost (its presence below `presence_threshold`), to find it
again at once. A detection becomes a face only where the landmark model confirms it. A face
found where one was lost within `keep_id_frames` frames (counted from the last frame the
detector still saw a face there) takes the lost face's id; a face that comes back later or
elsewhere is a new face with a new id. No rclpy here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .blazeface import face_detector
from .landmarks import DEFAULT_LANDMARK_MODEL, FaceMesh, IrisModel, Roi, refine_with_iris, roi_from_detection, roi_from_landmarks
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
    # with mirrored crops (FaceMesh `mirror`): mean distance between the landmarks of the crop
    # and of its mirror image, in face sizes (0.007 is typical; past 0.06 the model is often lost)
    mirror_disagreement: float | None = None


@dataclass
class _Track:
    id: str
    score: float
    roi: Roi
    tracked: bool = False
    age: int = 0


@dataclass
class _Lost:
    """A face the landmark model lost, kept so that a face found again at its place gets its
    id back."""
    id: str
    score: float
    age: int
    box: list          # [x, y, w, h] where it was last seen: its landmarks, then detections there
    unseen: int = 0    # frames since the detector last saw a face there


def keypoints_from_landmarks(lm: np.ndarray) -> np.ndarray:
    a, b = KEYPOINTS_FROM_LANDMARKS if len(lm) >= 478 else KEYPOINTS_FROM_MESH
    return ((lm[a, :2] + lm[b, :2]) * 0.5).astype(np.float32)


class FacePipeline:
    def __init__(self, detector: str = "short", max_faces: int = 1, redetect_every: int = 30,
                 presence_threshold: float = 0.2, redetect_threshold: float = 0.8,
                 refine_iris: bool = True, backend: str = "auto", provider: str = "cpu",
                 threads: int = 1, score_threshold: float | None = None, models_dir=None, logger=None,
                 keep_id_frames: int = 10, landmark_model: str = DEFAULT_LANDMARK_MODEL, detector_options: dict | None = None,
                 mirror_landmarks: bool = False, max_mirror_disagreement: float = 0.06):
        # detector_options: RetinaFace's scale, drop_levels, anchor_stride (blazeface.face_detector)
        self.detector = face_detector(detector, score_threshold, provider, threads, backend, models_dir, logger,
                                      **(detector_options or {}))
        # mirror_landmarks: every crop also runs mirrored and the two are averaged (FaceMesh)
        self.mesh = FaceMesh(backend, provider, threads, models_dir, logger, model=landmark_model,
                             mirror=mirror_landmarks)
        # the Face Landmarker's model gives the irises itself; the mesh needs the iris model
        with_iris = refine_iris and self.mesh.points < 478
        self.iris = IrisModel(backend, provider, threads, models_dir, logger) if with_iris else None
        self.max_faces = max_faces
        self.max_mirror_disagreement = max_mirror_disagreement
        self.redetect_every = redetect_every
        self.presence_threshold = presence_threshold
        self.redetect_threshold = redetect_threshold
        self.keep_id_frames = keep_id_frames
        self.tracks: list[_Track] = []
        self.lost: list[_Lost] = []
        self.frames_since_detection = 0
        self.force_detection = True
        self.timings: dict[str, float] = {}   # ms per stage of the last frame

    def reset(self):
        self.tracks, self.lost, self.force_detection = [], [], True

    def process_still(self, rgb: np.ndarray, passes: int = 2, mirror: bool = True) -> list[FaceResult]:
        """One image on its own: tracking reset (nothing carries over from another image), then
        detection and landmarks; each further pass runs the landmark model again on the crop
        from the previous pass's landmarks, the crop a tracked face gets in a video (closer to
        the labels on real photos: ./vtb eval real). The first pass keeps every face the
        detector confirms whatever its presence: from a detector's box a turned face's crop is
        poor (a 71-degree profile of AFLW2000-3D with the Face Landmarker's model: presence
        0.04, then 0.42 from its own landmarks), so the later pass's presence decides. A face
        lost in a later pass keeps its earlier landmarks if they passed presence_threshold.
        With `mirror` the last pass also runs each crop mirrored and averages the two (FaceMesh:
        on the AFLW2000-3D development half head pose 3.18 against 3.28 degrees on the faces
        found either way, for one more inference per face), and a face whose two disagree by more
        than max_mirror_disagreement is dropped. timings sums the passes."""
        self.reset()
        mirrored = self.mesh.mirror
        threshold = self.presence_threshold
        if passes > 1:
            self.presence_threshold = 0.0
        try:
            found = self.process(rgb)
        finally:
            self.presence_threshold = threshold
        stages = dict(self.timings)
        try:
            for n in range(passes - 1):
                self.mesh.mirror = mirrored or (mirror and n == passes - 2)
                again = {f.id: f for f in self.process(rgb)}
                found = [again[f.id] if f.id in again else f for f in found
                         if f.id in again or f.presence >= threshold]
                stages = {k: v + self.timings.get(k, 0.0) for k, v in stages.items()}
        finally:
            self.mesh.mirror = mirrored
        self.timings = stages
        # a face whose landmarks and their mirror image's disagree is one the model cannot read
        # (most often a profile past 60 degrees): dropped rather than given a pose off by 25
        # degrees or more. AFLW2000-3D development half, by the limit (faces found of 986, head
        # pose MAE): none 933, 3.35; 0.1 929, 3.25; 0.08 928, 3.23; 0.06 925, 3.20; 0.05 924,
        # 3.19; 0.04 913, 3.17; 0.03 880, 2.99. Without mirroring: 917, 3.31
        return [f for f in found if f.mirror_disagreement is None
                or f.mirror_disagreement <= self.max_mirror_disagreement]

    def _needs_detection(self) -> bool:
        return (self.force_detection or not self.tracks
                or (self.redetect_every > 0 and self.frames_since_detection >= self.redetect_every))

    def _landmarks(self, rgb, rois):
        t0 = time.perf_counter()
        batch = self.mesh.crops(rgb, rois)
        t1 = time.perf_counter()
        meshes = self.mesh.infer(batch, rois)
        self.timings["crop"] += 1e3 * (t1 - t0)
        self.timings["landmarks"] += 1e3 * (time.perf_counter() - t1)
        return meshes

    def _follow(self, rgb):
        """The tracked faces, each from a crop around its previous landmarks. A face whose
        presence falls below presence_threshold is lost: remembered where it was last seen."""
        if not self.tracks:
            return []
        kept = []
        for track, (lm, presence, disagreement) in zip(self.tracks, self._landmarks(rgb, [t.roi for t in self.tracks])):
            if presence < self.presence_threshold:
                self.lost.append(_Lost(track.id, track.score, track.age, _roi_box(track.roi)))
                continue
            if presence < self.redetect_threshold:
                self.force_detection = True
            kept.append((track, lm, presence, disagreement))
        return kept

    def _detect(self, rgb, kept):
        """New faces: detections away from the faces kept, confirmed by the landmark model."""
        t0 = time.perf_counter()
        detections = self.detector.detect(rgb)
        self.timings["detect"] += 1e3 * (time.perf_counter() - t0)
        self.frames_since_detection = 0
        free = self.max_faces - len(kept)
        if free <= 0:
            return []
        boxes = [_landmark_box(k[1]) for k in kept]
        # a face already followed keeps its landmark-based crop (more precise) and its id; two
        # spare candidates beyond the free places, since the landmark model rejects some
        # detections (the short-range model's false positives on a body, in 'auto')
        fresh = [d for d in detections if all(box_iou(d.box, b) <= 0.3 for b in boxes)][:free + 2]
        if not fresh:
            return []
        rois = [roi_from_detection(d) for d in fresh]
        taken = {k[0].id for k in kept} | {m.id for m in self.lost}
        found = []
        for det, roi, (lm, presence, disagreement) in zip(fresh, rois, self._landmarks(rgb, rois)):
            if len(found) >= free:
                break
            if presence < self.presence_threshold:
                # no landmarks there (a small, blurred or covered face), but the detector still
                # sees a face: a lost face's memory follows it until the landmarks come back
                self._remember(det.box)
                continue
            # a face found again where one was lost a moment ago is that face: it keeps its id
            # (the landmark model loses small or covered faces for a few frames at a time)
            old = self._reclaim(_landmark_box(lm))
            if old is not None:
                track = _Track(old.id, old.score, roi, False, old.age)
            else:
                track = _Track(new_face_id(taken), det.score, roi)
                taken.add(track.id)
            found.append((track, lm, presence, disagreement))
        return found

    def _match_lost(self, box):
        """The lost face whose last place is nearest `box`, within one face size of it."""
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        best, best_d = None, None
        for m in self.lost:
            d = np.hypot(m.box[0] + m.box[2] / 2 - cx, m.box[1] + m.box[3] / 2 - cy)
            if d < max(m.box[2], m.box[3]) and (best is None or d < best_d):
                best, best_d = m, d
        return best

    def _remember(self, box):
        m = self._match_lost(box)
        if m is not None:
            m.box, m.unseen = list(box), 0

    def _reclaim(self, box):
        m = self._match_lost(box)
        if m is not None:
            self.lost.remove(m)
        return m

    def process(self, rgb: np.ndarray) -> list[FaceResult]:
        t0 = time.perf_counter()
        self.timings = {"detect": 0.0, "crop": 0.0, "landmarks": 0.0}
        detect = self._needs_detection()   # decided by the previous frame
        if detect:
            self.force_detection = False
        kept = self._follow(rgb)
        # the detector also runs on the frame a tracked face is lost, so a face that slipped out
        # of its crop (a fast head, blur) is found again on this frame rather than the next
        if detect or len(kept) < len(self.tracks):
            kept += self._detect(rgb, kept)
        else:
            self.frames_since_detection += 1
        # a lost face the detector has not seen at its place for keep_id_frames is forgotten
        for m in self.lost:
            m.unseen += 1
        self.lost = [m for m in self.lost if m.unseen <= self.keep_id_frames]
        kept = _drop_duplicates(kept)
        t3b = time.perf_counter()

        eyes = self.iris(rgb, [k[1] for k in kept]) if self.iris and kept else [None] * len(kept)
        t5 = time.perf_counter()
        results, self.tracks = [], []
        for k, (track, lm, presence, disagreement) in enumerate(kept):
            full = refine_with_iris(lm, eyes[k]) if eyes[k] else lm
            lo, hi = full[:468, :2].min(0), full[:468, :2].max(0)
            results.append(FaceResult(track.id, track.score, np.concatenate([lo, hi - lo]),
                                      keypoints_from_landmarks(full), full, presence, track.tracked,
                                      disagreement))
            self.tracks.append(_Track(track.id, track.score, roi_from_landmarks(full), True, track.age + 1))
        t6 = time.perf_counter()
        # crop: the face crops; landmarks: the mesh; iris: eye crops and the iris model
        self.timings.update({"iris": 1e3 * (t5 - t3b), "total": 1e3 * (t6 - t0)})
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
