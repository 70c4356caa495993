"""`vtb eval real`: accuracy on real labelled faces, with MediaPipe and a textbook baseline beside
vtb on the same images. No rclpy here.

Stills (datasets.py reads the layouts): faces found and missed; NME over the 68 iBUG points and
the 51 inner ones (no jaw contour), in % of the outer-eye-corner distance (points 36 and 45),
after mapping MediaPipe's 478 points to iBUG's 68 (MEDIAPIPE_TO_68). Head pose on AFLW2000-3D,
the literature's protocol: faces whose |pitch|, |yaw| or |roll| label is over 99 degrees are
dropped (counted); then the mean absolute error of pitch, yaw and roll in AFLW's own
decomposition (datasets.aflw_angles), the geodesic angle between predicted and labelled rotation,
the slope of predicted on labelled angle (1 = no shrinkage), and the error per |yaw| band (0-30,
30-60, 60-90). The published numbers come from crops given by the labels, so they never miss a
face; a face a method here did not find (or got no pose for) is a miss, counted apart (and per
band), never in the error. Methods, each on the same images:
- vtb: the pipeline (a still: detect, landmarks, then landmarks again from the first pass's
  crop, as `./vtb detect` does) and vtb_pose's default estimator;
- MediaPipe FaceMesh (refine_landmarks, static_image_mode; its own venv, mediapipe_peer.py), its
  landmarks through vtb's estimator;
- a textbook 6-point PnP (the generic 6-point face of OpenCV tutorials) on vtb's, MediaPipe's
  and the labels' own 68 points. Solved with SQPnP, OpenCV's global solver: the tutorials'
  SOLVEPNP_ITERATIVE without a guess lands in a wrong minimum on some of these faces (mean
  MAE 9.6 against 5.6 deg with the labels' own points).
Camera: focal length = image width, principal point = image centre (the labels have no camera).

Videos (no labels): faces found, face ids and losses per detector model; landmark jitter (median
second difference over frames, % of the eye distance); head-pose jitter after vtb's One-Euro
filter (median absolute second difference per angle, degrees), for vtb's and MediaPipe's
(video mode) landmarks through the same estimator and filter, over all frames and over the
frames where the head holds still (still_frames: the same frames for both; over all frames a
turn's own acceleration counts as jitter); agreement with MediaPipe (NME68 between the two).

Real faces held still (held_still_jitter): AFLW2000-3D photos each shown for a second with fresh
pixel noise per frame, tracked by vtb and by MediaPipe (video mode), the filtered pose's jitter
through the same estimator and filter, paired per photo with a bootstrap interval: the clip's
still frames are too few to tell the two apart.

A few AFLW2000-3D images (under SMALL_SAMPLE) are far too few to compare with whole-set numbers
published in papers; compare methods with each other on the same images. The shared data's
development half (aflw2000/dev + prnet, 1007 faces) is large enough to read beside them.
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path

import numpy as np

from . import datasets

# MediaPipe's 478 mesh points -> iBUG's 68: each iBUG point is the mean of one or two mesh
# points (the correspondence of PeizhiYan/Mediapipe_2_Dlib_Landmarks, the one in common use).
MEDIAPIPE_TO_68 = [
    [127], [234], [93], [132, 58], [58, 172], [136], [150], [176], [152], [400], [379], [365], [397, 288],
    [361], [323], [454], [356],                                          # jaw 0-16
    [70], [63], [105], [66], [107], [336], [296], [334], [293], [300],    # brows 17-26
    [168, 6], [197, 195], [5], [4], [75], [97], [2], [326], [305],        # nose 27-35
    [33], [160], [158], [133], [153], [144], [362], [385], [387], [263], [373], [380],  # eyes 36-47
    [61], [39], [37], [0], [267], [269], [291], [321], [314], [17], [84], [91],       # outer lips 48-59
    [78], [82], [13], [312], [308], [317], [14], [87],                                # inner lips 60-67
]
_PAIRS = np.array([p if len(p) == 2 else p * 2 for p in MEDIAPIPE_TO_68])
INNER_51 = np.arange(17, 68)
# OpenCV tutorials' generic face for 6-point PnP (millimetres; x right, y up, z towards the
# camera): nose tip, chin, outer eye corners (image left, image right), mouth corners
# (learnopencv.com, "Head Pose Estimation using OpenCV and Dlib").
SIX_POINTS = np.array([30, 8, 36, 45, 48, 54])
SIX_POINT_MODEL = np.array([[0.0, 0.0, 0.0], [0.0, -330.0, -65.0], [-225.0, 170.0, -135.0],
                            [225.0, 170.0, -135.0], [-150.0, -150.0, -125.0], [150.0, -150.0, -125.0]])
# the literature's protocol on AFLW2000-3D: labels beyond this are dropped (2000 -> 1969 faces)
POSE_LIMIT_DEG = 99.0
# |yaw| bands of the label, degrees; a kept face over 90 (none in AFLW2000-3D's dev half) goes
# into the last
YAW_BANDS = ((0, 30), (30, 60), (60, 90))
# published whole-set numbers (mean of the pitch, yaw and roll MAE, degrees; 1969 faces, crops
# from the labels: no misses)
PUBLISHED = {"HopeNet": 6.16, "FSA-Net": 5.07, "WHENet": 5.42, "6DRepNet": 3.97, "img2pose": 3.91}
PUBLISHED_FACES = 1969
# fewer AFLW2000-3D faces than this: too few to read beside the published numbers
SMALL_SAMPLE = 200
# jitter on the frames where the head holds still: yaw and pitch speed under STILL_DEG_S, from a
# local quadratic over STILL_WINDOW frames (a third of a second at 25 fps)
STILL_WINDOW = 9
STILL_DEG_S = 25.0

# real faces held still (held_still_jitter): photos within these angles, frames each, pixel noise
# (sigma, 8-bit levels) and frames left out at the start of each photo while tracker and filter settle
HELD_STILL = {"photos": 60, "frames": 30, "sigma": 4.0, "settle": 8, "max_yaw_deg": 45.0, "max_pitch_deg": 30.0}

GOALS = {"pose_mae_deg": 3.2, "slope": (0.95, 1.05), "max_missed_pct": 2.0}
ANGLES = ("pitch", "yaw", "roll")


def to68(landmarks: np.ndarray) -> np.ndarray:
    """(478+, 2+) MediaPipe-layout points -> (68, 2) iBUG points."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    return (lm[_PAIRS[:, 0]] + lm[_PAIRS[:, 1]]) / 2


def nme(pred68: np.ndarray, label68: np.ndarray, points=slice(None)) -> float:
    """Mean point error in % of the label's outer-eye-corner distance."""
    norm = np.linalg.norm(label68[36] - label68[45])
    return float(100 * np.linalg.norm(pred68[points] - label68[points], axis=1).mean() / norm)


def intrinsics(width: int, height: int) -> np.ndarray:
    from vtb_pose.pnp import default_intrinsics
    return default_intrinsics(width, height)


def six_point_rotation(points68: np.ndarray, k: np.ndarray):
    """The textbook head pose: 6 points of the 68, OpenCV's iterative PnP. Returns the face
    frame's rotation in the optical frame (vtb's convention) or None."""
    import cv2
    from vtb_pose.frames import FRONTAL
    model = SIX_POINT_MODEL * [1.0, -1.0, -1.0] / 1000.0  # to x right, y down, z away; metres
    ok, rvec, _ = cv2.solvePnP(model, points68[SIX_POINTS] - 0.5, k, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return None
    # the model's axes are a frontal face's camera axes: FRONTAL takes the face frame to them
    return cv2.Rodrigues(rvec)[0] @ FRONTAL


def _match(pred68s: list, label68: np.ndarray):
    """The prediction nearest the label (centroids within one eye-corner distance)."""
    if not pred68s:
        return None
    norm = np.linalg.norm(label68[36] - label68[45])
    d = [np.linalg.norm(p.mean(0) - label68.mean(0)) for p in pred68s]
    i = int(np.argmin(d))
    return i if d[i] < norm else None


def depth_scales(estimator_class) -> tuple:
    """The depth factors swept: the estimator's own default (read, not copied: the estimator is
    re-fitted elsewhere) and three twelfths of it in steps either side; none when it has no
    depth_scale."""
    p = inspect.signature(estimator_class).parameters.get("depth_scale")
    if p is None or not isinstance(p.default, (int, float)) or p.default <= 0:
        return ()
    return tuple(round(float(p.default) * (1 + k / 12), 3) for k in range(-3, 4))


def correction_steps(estimator_class, name: str) -> tuple:
    """The values swept of one of the estimator's corrections (turn_gain, pixel_weight in
    vtb_pose.pnp): none, half, the default, one and a half and twice it (a weight at most 1);
    none when the estimator has no such parameter."""
    p = inspect.signature(estimator_class).parameters.get(name)
    if p is None or not isinstance(p.default, (int, float)) or p.default <= 0:
        return ()
    top = 1.0 if name.endswith("weight") else float("inf")
    return tuple(sorted({0.0, *(min(top, round(float(p.default) * f, 3)) for f in (0.5, 1, 1.5, 2))}))


CORRECTIONS = ("turn_gain", "pixel_weight")


def yaw_band(yaw_deg) -> np.ndarray:
    """Index into YAW_BANDS of each |yaw| label (faces over the last band's end go into it)."""
    edges = [lo for lo, _ in YAW_BANDS[1:]]
    return np.searchsorted(edges, np.abs(np.asarray(yaw_deg, np.float64)), side="right")


def band_names() -> list:
    return [f"{lo}-{hi}" for lo, hi in YAW_BANDS]


def over_limit(pose_deg) -> np.ndarray:
    """True where any of |pitch|, |yaw|, |roll| is over POSE_LIMIT_DEG (the protocol drops it)."""
    return (np.abs(np.asarray(pose_deg, np.float64).reshape(-1, 3)) > POSE_LIMIT_DEG).any(1)


def score_pose(truth, pred, geodesic=None, sets=None) -> dict:
    """One method on the kept faces: truth (F, 3) labelled pitch/yaw/roll, pred (F, 3) the
    method's, NaN rows where it missed (no face or no pose). MAE, slopes and geodesic over the
    faces found; misses counted apart, overall, per |yaw| band and per set."""
    truth, pred = np.asarray(truth, np.float64).reshape(-1, 3), np.asarray(pred, np.float64).reshape(-1, 3)
    found = np.isfinite(pred).all(1)
    err = (pred - truth + 180.0) % 360.0 - 180.0  # angle differences, never 359 for -1
    e = np.abs(err[found])
    faces, n = len(truth), int(found.sum())
    out = {"n": n, "missed": faces - n, "missed_pct": _pct(faces - n, faces)}
    for i, a in enumerate(ANGLES):
        out[f"mae_{a}"] = _mean(e[:, i])
    out["mae_mean"] = _mean(e.mean(1))
    geo = None if geodesic is None else np.asarray(geodesic, np.float64)[found]
    out["geodesic_mean"] = None if geo is None else _mean(geo)
    for i, a in enumerate(ANGLES):
        out[f"slope_{a}"] = _slope(truth[found, i], pred[found, i])
    bands = yaw_band(truth[:, 1])
    out["bands"] = {}
    for b, name in enumerate(band_names()):
        inb = bands == b
        got = int((inb & found).sum())
        out["bands"][name] = {"faces": int(inb.sum()), "n": got, "missed": int(inb.sum()) - got,
                              "missed_pct": _pct(int(inb.sum()) - got, int(inb.sum())),
                              "mae_mean": _mean(np.abs(err[inb & found]).mean(1))}
    if sets is not None:
        sets = np.asarray(sets)
        out["by_set"] = {}
        for name in dict.fromkeys(sets.tolist()):
            ins = sets == name
            out["by_set"][name] = {"faces": int(ins.sum()), "n": int((ins & found).sum()),
                                   "mae_mean": _mean(np.abs(err[ins & found]).mean(1))}
    out["errors"] = [[round(float(v), 3) for v in row] if ok else None for row, ok in zip(err, found)]
    return out


def _pct(part, whole):
    return round(100.0 * part / whole, 2) if whole else None


def run_real_eval(data: Path, model: str = "short", with_mediapipe: bool = True, echo=print,
                  landmark_model: str | None = None) -> dict:
    """landmark_model: vtb's (default vtb_detector.landmarks.DEFAULT_LANDMARK_MODEL)."""
    if landmark_model is None:
        from vtb_detector.landmarks import DEFAULT_LANDMARK_MODEL
        landmark_model = DEFAULT_LANDMARK_MODEL
    data = Path(data)
    samples = datasets.real_data_samples(data)
    clips = datasets.videos(data)
    if not samples and not clips:
        raise FileNotFoundError(f"no labelled images or videos under {data} (layouts: vtb_eval/datasets.py)")
    t0 = time.monotonic()
    stills = _eval_stills(samples, model, landmark_model, with_mediapipe, echo) if samples else {}
    videos = [_eval_video(p, model, landmark_model, with_mediapipe, echo) for p in clips]
    held = held_still_jitter(samples, model, landmark_model, with_mediapipe, echo) if samples else None
    return {"data": str(data), "model": model, "landmark_model": landmark_model, "stills": stills, "videos": videos,
            "held_still": held, "seconds": round(time.monotonic() - t0, 1), "goals": _goals(stills, videos, held)}


def _eval_stills(samples, model, landmark_model, with_mediapipe, echo) -> dict:
    import cv2
    from vtb_detector.pipeline import FacePipeline
    from vtb_pose.pnp import HeadPoseEstimator

    def read(i):
        bgr = cv2.imread(str(samples[i].image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read {samples[i].image}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    # images are read again where needed, not kept: 1000 AFLW crops are 600 MB
    pipeline = FacePipeline(detector=model, max_faces=10, threads=2, landmark_model=landmark_model)
    echo(f"eval real: vtb on {len(samples)} labelled images")
    vtb, shapes = [], []
    for i in range(len(samples)):
        rgb = read(i)
        shapes.append(rgb.shape)
        vtb.append([f.landmarks for f in pipeline.process_still(rgb)])
        if (i + 1) % 250 == 0:
            echo(f"eval real: vtb {i + 1}/{len(samples)}")
    mp = _mediapipe_stills(read, shapes, echo) if with_mediapipe else None

    methods = {"vtb": vtb} | ({"mediapipe": mp} if mp is not None else {})
    rows = []
    for i, s in enumerate(samples):
        for j, label in enumerate(s.faces):
            row = {"image": s.image.name, "set": s.set, "face": j, "labels": s.label_source, "_sample": i}
            for name, per_image in methods.items():
                found = per_image[i]
                k = _match([to68(lm) for lm in found], label)
                row[name] = None if k is None else {
                    "nme68": nme(to68(found[k]), label), "nme51": nme(to68(found[k]), label, INNER_51),
                    "landmarks": found[k]}
            rows.append(row)

    out = {"images": len(samples), "faces": len(rows), "by_set": {}, "landmarks": {}, "pose": None}
    for name in methods:
        out["landmarks"][name] = _landmark_summary(rows, name)
        for set_name in dict.fromkeys(r["set"] for r in rows):
            rs = [r for r in rows if r["set"] == set_name]
            out["by_set"].setdefault(set_name, {"faces": len(rs)})[name] = _landmark_summary(rs, name)
    # the AFLW2000-3D sets together (the shared data's development half: dev + prnet)
    aflw = [r for r in rows if r["set"].startswith(datasets.AFLW)]
    if aflw:
        out["aflw"] = {"name": aflw_label(r["set"] for r in aflw), "faces": len(aflw),
                       **{m: _landmark_summary(aflw, m) for m in methods}}
    # landmarks compared on the faces every method found
    both = [r for r in rows if all(r.get(m) for m in methods)]
    out["landmarks_common"] = {"faces": len(both), **{m: {"nme68": _mean(r[m]["nme68"] for r in both),
                                                          "nme51": _mean(r[m]["nme51"] for r in both)}
                                                      for m in methods}}

    if any(s.pose is not None for s in samples):
        echo("eval real: head pose")
        out["pose"] = _eval_pose(rows, samples, shapes, methods, HeadPoseEstimator)
    for r in rows:  # the JSON keeps the errors, not the points
        r.pop("_sample")
        for m in methods:
            if r.get(m):
                r[m].pop("landmarks")
    out["rows"] = rows
    return out


def aflw_label(set_names) -> str:
    """The AFLW2000-3D sets by name: both parts of the shared data's development half are "the
    dev half"."""
    names = list(dict.fromkeys(set_names))
    if set(names) == set(datasets.AFLW_SETS.values()):
        return f"{datasets.AFLW} dev half"
    return " + ".join(names)


def _landmark_summary(rows, method) -> dict:
    got = [r[method] for r in rows if r.get(method)]
    return {"found": len(got), "missed": len(rows) - len(got),
            "nme68": _mean(g["nme68"] for g in got), "nme51": _mean(g["nme51"] for g in got)}


def _mediapipe_stills(read, shapes, echo) -> list:
    """MediaPipe in static mode over the images (read(i) gives image i, shapes[i] its shape):
    every face it found in each."""
    from .mediapipe_peer import run_mediapipe_stills
    rows = run_mediapipe_stills(read, shapes, echo=lambda m: echo(f"eval real: {m}"), max_num_faces=10)
    return [[f for f in r["faces"] if np.isfinite(f).all()] for r in rows]


def _eval_pose(rows, samples, shapes, methods, HeadPoseEstimator) -> dict:
    """Head pose on the faces with a pose label, by the literature's protocol (the module's
    docstring). `shapes[i]` is sample i's image shape; each row names its sample by "_sample"."""
    from vtb_pose.frames import angle_between
    posed = [r for r in rows if samples[r["_sample"]].pose is not None]
    labelled = np.array([samples[r["_sample"]].pose for r in posed], np.float64).reshape(-1, 3)
    over = over_limit(labelled)
    kept = [r for r, o in zip(posed, over) if not o]
    truth = labelled[~over]

    options = inspect.signature(HeadPoseEstimator).parameters
    estimator = HeadPoseEstimator()
    pnp = HeadPoseEstimator(method="sqpnp") if "method" in options else None
    sweep = {ds: HeadPoseEstimator(depth_scale=ds) for ds in depth_scales(HeadPoseEstimator)}
    corrections = {f"vtb {name} {v}": HeadPoseEstimator(**{name: v})
                   for name in CORRECTIONS for v in correction_steps(HeadPoseEstimator, name)}

    def rotation_of(est, lm, k):
        e = est.estimate(lm, k)
        return None if e is None else e.rotation

    rotations = {}  # method -> rotation per kept face, None where it missed
    for f, r in enumerate(kept):
        s, shape = samples[r["_sample"]], shapes[r["_sample"]]
        k = intrinsics(shape[1], shape[0])
        label = s.faces[r["face"]]
        cands = {"6-point PnP on the labels' 68": lambda: six_point_rotation(label, k)}
        lm = (r.get("vtb") or {}).get("landmarks")
        cands["vtb"] = lambda: rotation_of(estimator, lm, k) if lm is not None else None
        if pnp is not None:
            cands["vtb landmarks, PnP on pixels (sqpnp)"] = lambda: rotation_of(pnp, lm, k) if lm is not None else None
        cands["6-point PnP on vtb's 68"] = lambda: six_point_rotation(to68(lm), k) if lm is not None else None
        cands |= {f"vtb depth_scale {ds}": (lambda e=e: rotation_of(e, lm, k) if lm is not None else None)
                  for ds, e in sweep.items()}
        cands |= {label: (lambda e=e: rotation_of(e, lm, k) if lm is not None else None)
                  for label, e in corrections.items()}
        if "mediapipe" in methods:
            mlm = (r.get("mediapipe") or {}).get("landmarks")
            cands["MediaPipe landmarks + vtb's estimator"] = lambda: (
                rotation_of(estimator, mlm, k) if mlm is not None else None)
            cands["6-point PnP on MediaPipe's 68"] = lambda: six_point_rotation(to68(mlm), k) if mlm is not None else None
        for name, fn in cands.items():
            rotations.setdefault(name, [None] * len(kept))[f] = fn()

    true_rot = [datasets.from_aflw(datasets.aflw_rotation(np.radians(p))) for p in truth]
    sets = [r["set"] for r in kept]
    table, angles = {}, {}
    for name, rots in rotations.items():
        pred, geo = np.full((len(kept), 3), np.nan), np.full(len(kept), np.nan)
        for f, rot in enumerate(rots):
            if rot is not None:
                pred[f] = datasets.aflw_angles(datasets.to_aflw(rot))
                geo[f] = angle_between(rot, true_rot[f])
        angles[name] = pred
        table[name] = score_pose(truth, pred, geo, sets)
    bands = yaw_band(truth[:, 1])
    return {"faces": len(posed), "label": aflw_label(r["set"] for r in posed), "limit_deg": POSE_LIMIT_DEG,
            "dropped": int(over.sum()), "dropped_images": [r["image"] for r, o in zip(posed, over) if o],
            "kept": len(kept), "kept_images": [r["image"] for r in kept],
            "bands": {name: int((bands == b).sum()) for b, name in enumerate(band_names())},
            "published": {"faces": PUBLISHED_FACES, "mae_mean": PUBLISHED},
            "depth_scale_default": inspect.signature(HeadPoseEstimator).parameters["depth_scale"].default
            if "depth_scale" in options else None,
            "corrections_default": {c: options[c].default for c in CORRECTIONS if c in options},
            "methods": table,
            "depth_scale_loo": leave_one_out({ds: angles[f"vtb depth_scale {ds}"] for ds in sweep}, truth)}


def leave_one_out(preds: dict, truth) -> dict | None:
    """The depth factor chosen on all faces but one, scored on that one, for every face: what
    choosing it on this sample is worth on a face not in it. preds: {depth factor: (F, 3)
    angles, NaN where missed}; only the faces every factor got are used. Vectorised: the mean
    over all but face f is (sum - own) / (F - 1)."""
    if not preds:
        return None
    scales = list(preds)
    err = np.array([np.abs((np.asarray(preds[d]) - truth + 180.0) % 360.0 - 180.0).mean(1) for d in scales])
    err = err[:, np.isfinite(err).all(0)]  # (scales, faces every factor got)
    faces = err.shape[1]
    if faces < 2:
        return None
    rest = (err.sum(1, keepdims=True) - err) / (faces - 1)
    best = rest.argmin(0)
    return {"faces": faces, "mae_mean": float(err[best, np.arange(faces)].mean()),
            "picked": sorted({scales[b] for b in best})}


def _eval_video(path: Path, model: str, landmark_model: str, with_mediapipe: bool, echo) -> dict:
    from vtb_detector.pipeline import FacePipeline
    frames, fps = datasets.video_frames(path)
    echo(f"eval real: {path.name}: {len(frames)} frames, {frames.shape[2]}x{frames.shape[1]} at {fps:g} fps")
    from vtb_detector.blazeface import MODELS
    models = list(dict.fromkeys([model, *MODELS]))
    tracking, landmarks = {}, {}
    for m in models:
        pipeline = FacePipeline(detector=m, max_faces=1, threads=2, landmark_model=landmark_model)
        per_frame = [pipeline.process(f) for f in frames]
        tracking[m] = _continuity(per_frame)
        landmarks[m] = np.full((len(frames), 478, 3), np.nan)
        for i, faces in enumerate(per_frame):
            if faces and len(faces[0].landmarks) >= 478:
                landmarks[m][i] = faces[0].landmarks[:478]
    # jitter with the detector model asked for, or the one that finds the face most often if
    # that finds it in more frames
    best = max(models, key=lambda m: (tracking[m]["frames_found"], m == model))
    jitter_model = model if tracking[model]["frames_found"] >= tracking[best]["frames_found"] else best
    landmarks = landmarks[jitter_model]
    out = {"video": path.name, "frames": len(frames), "fps": fps, "size": [frames.shape[2], frames.shape[1]],
           "tracking": tracking, "jitter_model": jitter_model}
    series = {"vtb": _pose_series(landmarks, frames.shape, fps)}
    if with_mediapipe:
        from .mediapipe_peer import run_mediapipe
        r = run_mediapipe(frames, static_image_mode=False, warmup=0, echo=echo)
        mp = _mediapipe_points(r)
        found = np.isfinite(mp).all((1, 2))
        out["tracking"]["mediapipe"] = {"frames_found": int(found.sum()), "ids": None, "losses": _losses(found)}
        series["mediapipe"] = _pose_series(mp, frames.shape, fps)
        both = [i for i in range(len(frames)) if found[i] and np.isfinite(landmarks[i]).all()]
        out["agreement_nme68"] = _mean(nme(to68(landmarks[i]), to68(mp[i])) for i in both) if both else None
    # from every method that found the face (MediaPipe finds none in the dance clip)
    posed = [s["raw"] for s in series.values() if np.isfinite(s["raw"]).any()]
    still = still_frames(posed, fps) if posed else np.zeros(len(frames), bool)
    out["still_frames"] = int(still.sum())
    out["jitter"] = {m: _jitter(s, still) for m, s in series.items()}
    return out


def _continuity(per_frame) -> dict:
    found = np.array([bool(f) for f in per_frame])
    ids = [f[0].id for f in per_frame if f]
    return {"frames_found": int(found.sum()), "ids": len(set(ids)), "losses": _losses(found),
            "id_changes": int(sum(a != b for a, b in zip(ids, ids[1:])))}


def _losses(found: np.ndarray) -> int:
    return int(np.sum(found[:-1] & ~found[1:]))


def _pose_series(landmarks: np.ndarray, shape, fps: float) -> dict:
    """Per frame: the landmarks in iBUG's 68 (None without a face), and yaw/pitch/roll from vtb's
    estimator raw and after vtb's One-Euro filter (NaN without a face; a gap restarts the filter)."""
    from vtb_pose.filters import PoseFilter
    from vtb_pose.frames import quaternion_wxyz, rotation_from_quaternion, ypr_from_rotation
    from vtb_pose.pnp import HeadPoseEstimator
    k = intrinsics(shape[2], shape[1])
    estimator = HeadPoseEstimator()
    raw, filtered, lm68, filt = np.full((len(landmarks), 3), np.nan), np.full((len(landmarks), 3), np.nan), [], None
    for i, lm in enumerate(landmarks):
        e = estimator.estimate(lm, k) if np.isfinite(lm).all() else None
        lm68.append(None if e is None else to68(lm))
        if e is None:
            filt = None
            continue
        filt = filt or PoseFilter()
        q, _ = filt(quaternion_wxyz(e.rotation), e.translation, i / fps)
        filtered[i] = ypr_from_rotation(rotation_from_quaternion(q))
        raw[i] = ypr_from_rotation(e.rotation)
    return {"lm68": lm68, "raw": raw, "filtered": filtered}


def still_frames(raws: list, fps: float) -> np.ndarray:
    """The frames where the head holds still, the same frames for every method: each method's raw
    yaw and pitch smoothed over STILL_WINDOW frames (a local quadratic), their speed averaged over
    the methods, under STILL_DEG_S throughout the STILL_WINDOW frames around the frame. Jitter is
    the noise of a pose that should not move; on a clip with a fast turn the second difference of
    all frames is mostly the turn itself, and how closely each filter follows it."""
    from scipy.ndimage import maximum_filter1d
    from scipy.signal import savgol_filter
    n = len(raws[0])
    still = np.zeros(n, bool)
    ok = np.all([np.isfinite(r).all(1) for r in raws], axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):   # each run of frames every method posed
        if b - a < STILL_WINDOW:
            continue
        speed = np.mean([np.abs(savgol_filter(r[a:b, :2], STILL_WINDOW, 2, deriv=1, axis=0)).max(1) for r in raws],
                        axis=0) * fps
        # and no motion anywhere in the window around it: a head shaking stops for an instant at each turn
        still[a:b] = maximum_filter1d(speed, STILL_WINDOW) < STILL_DEG_S
    return still


def _jitter(series: dict, still: np.ndarray) -> dict:
    """Landmark and pose jitter over the runs of consecutive frames with a face; the filtered
    pose's also over the still frames alone."""
    lm_jitter, run68 = [], []
    for lm in series["lm68"] + [None]:
        if lm is None:  # a gap ends the run: second differences never straddle it
            lm_jitter += _second_diff_pct(run68)
            run68 = []
        else:
            run68.append(lm)
    return {"landmark_pct": float(np.median(lm_jitter)) if lm_jitter else None,
            "pose_filtered_deg": _pose_jitter(series["filtered"]),
            "pose_filtered_still_deg": _pose_jitter(series["filtered"], still),
            "pose_unfiltered_deg": _pose_jitter(series["raw"])}


def _second_diff_pct(run68) -> list:
    if len(run68) < 3:
        return []
    a = np.array(run68)
    eye = np.linalg.norm(a[:, 36] - a[:, 45], axis=1)[1:-1, None]
    d2 = np.linalg.norm(a[2:] - 2 * a[1:-1] + a[:-2], axis=2) / eye
    return list(100 * d2.ravel())


def _second_diff(ypr: np.ndarray) -> np.ndarray:
    """Second difference over consecutive frames (rows), NaN where a frame has no pose."""
    return ypr[2:] - 2 * ypr[1:-1] + ypr[:-2]


def _mediapipe_points(r: dict) -> np.ndarray:
    """run_mediapipe's first face per frame as (N, K, 3) x, y, z (NaN rows: no face)."""
    return np.concatenate([r["landmarks"], r["z"][..., None]], axis=2).astype(np.float64)


def _pose_jitter(ypr: np.ndarray, frames: np.ndarray | None = None) -> list | None:
    """Median absolute second difference of yaw, pitch, roll over consecutive frames (NaN: no
    pose), centred on the given frames only if `frames` (a mask) is given."""
    d = _second_diff(ypr)
    keep = np.isfinite(d).all(1) & (True if frames is None else frames[1:-1])
    return [float(v) for v in np.median(np.abs(d[keep]), axis=0)] if keep.any() else None


def held_still_jitter(samples, model: str, landmark_model: str, with_mediapipe: bool, echo=print,
                      photos: int = HELD_STILL["photos"], frames: int = HELD_STILL["frames"],
                      sigma: float = HELD_STILL["sigma"], seed: int = 0) -> dict | None:
    """Filtered head-pose jitter on real faces held still: each of `photos` AFLW2000-3D photos
    (within HELD_STILL's yaw and pitch, picked with a fixed seed) shown for `frames` frames at
    30 fps, each frame with its own Gaussian pixel noise (sigma, 8-bit levels: a webcam's sensor
    noise), tracked by vtb (a fresh tracker per photo) and by MediaPipe FaceMesh in video mode (one
    stream, a black frame between photos so that it detects each face anew), both through vtb's
    estimator and One-Euro filter. The first HELD_STILL["settle"] frames of each photo are left
    out (the tracker and the filter settle). The head does not move, so every second difference
    of the pose is noise; the talking-head clip holds still for only 25 frames, these give
    thousands. Per method: the median absolute second difference (yaw, pitch, roll) over all
    photos; vtb minus MediaPipe of each photo's median, its mean and a paired bootstrap's 95 %
    interval over the photos."""
    import cv2
    from vtb_detector.pipeline import FacePipeline
    pool = sorted((s for s in samples if s.set.startswith(datasets.AFLW) and s.pose is not None
                   and abs(s.pose[1]) <= HELD_STILL["max_yaw_deg"] and abs(s.pose[0]) <= HELD_STILL["max_pitch_deg"]),
                  key=lambda s: str(s.image))
    rng = np.random.default_rng(seed)
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), min(photos, len(pool)), replace=False))]
    shape = None
    clips = []
    for s in chosen:
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is None or (shape is not None and bgr.shape != shape):
            continue    # one stream for MediaPipe: one image size (AFLW2000-3D's crops are all 450x450)
        shape = bgr.shape
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
        clips.append(np.stack([np.clip(rgb + rng.normal(0.0, sigma, rgb.shape), 0, 255).astype(np.uint8)
                               for _ in range(frames)]))
    if not clips:
        return None
    echo(f"eval real: jitter on {len(clips)} photos held still, {frames} frames each")
    n = len(clips)
    landmarks = {"vtb": np.full((n, frames, 478, 3), np.nan)}
    for p, clip in enumerate(clips):
        pipeline = FacePipeline(detector=model, max_faces=1, threads=2, landmark_model=landmark_model)
        for t, frame in enumerate(clip):
            found = pipeline.process(frame)
            if found and len(found[0].landmarks) >= 478:
                landmarks["vtb"][p, t] = found[0].landmarks[:478]
    if with_mediapipe:
        from .mediapipe_peer import run_mediapipe
        black = np.zeros((1, *clips[0].shape[1:]), np.uint8)
        stream = np.concatenate([x for clip in clips for x in (black, clip)])
        r = run_mediapipe(stream, static_image_mode=False, warmup=0, echo=echo)
        mp = _mediapipe_points(r)
        landmarks["mediapipe"] = mp.reshape(n, frames + 1, *mp.shape[1:])[:, 1:]
    size = (clips[0].shape[0], *clips[0].shape[1:])
    diffs = {}
    for m, lm in landmarks.items():
        diffs[m] = []
        for p in range(n):
            ypr = _pose_series(lm[p], size, 30.0)["filtered"][HELD_STILL["settle"]:]
            diffs[m].append(_second_diff(ypr))
    # photos every method posed in every frame counted
    kept = [p for p in range(n) if all(np.isfinite(diffs[m][p]).all() for m in diffs)]
    out = {"photos": len(kept), "photos_tried": n, "frames": frames, "sigma": sigma, "settle": HELD_STILL["settle"],
           "median_deg": {m: [float(v) for v in np.median(np.abs(np.concatenate([d[p] for p in kept])), axis=0)]
                          if kept else None for m, d in diffs.items()}}
    if "mediapipe" in diffs and len(kept) >= 2:
        per = {m: np.array([np.median(np.abs(diffs[m][p]), axis=0) for p in kept]) for m in diffs}
        out["vtb_minus_mediapipe"] = paired_difference(per["vtb"], per["mediapipe"], rng)
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, rng, resamples: int = 5000) -> dict:
    """a - b of paired per-item values ((items, k) arrays): the mean difference, a bootstrap 95 %
    interval over the items, and how many items a is below b in."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    return {"mean": [float(v) for v in d.mean(axis=0)],
            "ci95": [[float(v) for v in np.percentile(means, 2.5, axis=0)],
                     [float(v) for v in np.percentile(means, 97.5, axis=0)]],
            "items_lower": [int(v) for v in (d < 0).sum(axis=0)], "items": len(d)}


def _slope(x, y) -> float:
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 and np.ptp(x) > 0 else float("nan")


def _mean(values):
    v = list(values)
    return float(np.mean(v)) if v else None


def _goals(stills: dict, videos: list, held: dict | None = None) -> dict:
    """The goals, each on the set it is about: head pose and misses on the AFLW2000-3D faces kept
    by the protocol (the shared data's development half), NME68 on the AFLW2000-3D sets together,
    the filtered pose jitter against MediaPipe's on the talking head's still frames and on real
    faces held still (vtb no worse: the mean per-photo difference at most 0 on every angle)."""
    goals = {}
    pose = (stills or {}).get("pose")
    vtb = pose and pose["methods"].get("vtb")
    if vtb and vtb["n"]:
        where = f"{pose['label']}, {pose['kept']} faces kept"
        goals[f"pose MAE <= {GOALS['pose_mae_deg']} deg ({where})"] = (
            vtb["mae_mean"] <= GOALS["pose_mae_deg"], round(vtb["mae_mean"], 2))
        lo, hi = GOALS["slope"]
        for a in ANGLES:
            goals[f"{a} slope {lo}-{hi}"] = (lo <= vtb[f"slope_{a}"] <= hi, round(vtb[f"slope_{a}"], 3))
    if vtb:
        goals[f"missed <= {GOALS['max_missed_pct']:g} % ({pose['label']}, of {pose['kept']} faces kept)"] = (
            vtb["missed_pct"] is not None and vtb["missed_pct"] <= GOALS["max_missed_pct"],
            f"{vtb['missed']} = {vtb['missed_pct']} %")
    lm = (stills or {}).get("aflw", {})
    if lm.get("vtb") and lm.get("mediapipe") and lm["vtb"]["nme68"] is not None and lm["mediapipe"]["nme68"] is not None:
        goals[f"NME68 on {lm['name']} no worse than MediaPipe"] = (
            lm["vtb"]["nme68"] <= lm["mediapipe"]["nme68"],
            [round(lm["vtb"]["nme68"], 2), round(lm["mediapipe"]["nme68"], 2)])
    for v in videos:
        if "obama" in v["video"] and v["jitter"].get("mediapipe"):
            a, b = v["jitter"]["vtb"]["pose_filtered_still_deg"], v["jitter"]["mediapipe"]["pose_filtered_still_deg"]
            if a and b:
                goals[f"talking head: filtered pose jitter <= MediaPipe's ({v['still_frames']} still frames)"] = (
                    all(x <= y for x, y in zip(a, b)), [[round(x, 3) for x in a], [round(y, 3) for y in b]])
    d = (held or {}).get("vtb_minus_mediapipe")
    if d:
        goals[f"real faces held still: filtered pose jitter <= MediaPipe's ({d['items']} photos)"] = (
            all(x <= 0 for x in d["mean"]), {"vtb - MediaPipe": [round(x, 4) for x in d["mean"]],
                                             "95 % interval": [[round(x, 4) for x in b] for b in d["ci95"]]})
    return {k: {"reached": bool(ok), "value": val} for k, (ok, val) in goals.items()}


def sample_size_note(aflw_faces: int) -> str | None:
    """The warning for a small AFLW2000-3D sample (under SMALL_SAMPLE faces), else None."""
    if not aflw_faces or aflw_faces >= SMALL_SAMPLE:
        return None
    return (f"{aflw_faces} AFLW2000-3D images are far too few to compare with whole-set numbers in papers; "
            "compare the methods on the same images.")


def format_table(r: dict) -> str:
    lines = [f"real faces from {r['data']} (vtb: detector {r['model']}, landmarks {r['landmark_model']}; "
             f"{r['seconds']} s)"]
    s = r["stills"]
    if s:
        lines += ["", f"landmarks on {s['faces']} labelled faces in {s['images']} images "
                      f"(NME, % of the outer-eye-corner distance; 51 = without the jaw contour)",
                  f"{'set':<22}{'faces':>6}  " + "".join(f"{m + ' found':>16}{'NME68':>7}{'NME51':>7}"
                                                          for m in s["landmarks"])]
        sets = list(s["by_set"].items())
        aflw = s.get("aflw")
        if aflw and aflw["name"] not in s["by_set"]:
            sets.append((aflw["name"], aflw))
        for name, v in sets + [("all", {"faces": s["faces"], **s["landmarks"]})]:
            cells = ""
            for m in s["landmarks"]:
                x = v.get(m, {})
                cells += f"{x.get('found', 0):>16}{_f(x.get('nme68')):>7}{_f(x.get('nme51')):>7}"
            lines.append(f"{name:<22}{v['faces']:>6}  {cells}")
        c = s["landmarks_common"]
        lines.append(f"on the {c['faces']} faces every method found: " + ", ".join(
            f"{m} NME68 {_f(c[m]['nme68'])} NME51 {_f(c[m]['nme51'])}" for m in s["landmarks"]))
        p = s.get("pose")
        if p:
            lines += _pose_lines(p)
    for v in r["videos"]:
        lines += ["", f"{v['video']}: {v['frames']} frames {v['size'][0]}x{v['size'][1]} at {v['fps']:g} fps (no labels)",
                  f"{'tracker':<12}{'found':>7}{'ids':>5}{'losses':>8}"]
        for m, t in v["tracking"].items():
            lines.append(f"{m:<12}{t['frames_found']:>7}{'-' if t['ids'] is None else t['ids']:>5}{t['losses']:>8}")
        for m, j in v["jitter"].items():
            pf, pu = j["pose_filtered_deg"], j["pose_unfiltered_deg"]
            who = f"vtb ({v['jitter_model']})" if m == "vtb" else m
            lines.append(f"jitter {who:<16} landmarks {_f(j['landmark_pct'])} % of eye distance; pose y/p/r filtered "
                         f"{_triple(pf)} (still frames {_triple(j['pose_filtered_still_deg'])}), "
                         f"unfiltered {_triple(pu)} deg")
        lines.append(f"(still frames: {v['still_frames']} of {v['frames']}, head speed under {STILL_DEG_S:g} deg/s "
                     "in every method's pose)")
        if v.get("agreement_nme68") is not None:
            lines.append(f"vtb vs MediaPipe landmarks: NME68 {v['agreement_nme68']:.2f}")
    h = r.get("held_still")
    if h:
        lines += ["", f"real faces held still: {h['photos']} AFLW2000-3D photos (of {h['photos_tried']}) each shown "
                      f"{h['frames']} frames with fresh pixel noise (sigma {h['sigma']:g}), first {h['settle']} left out; "
                      "filtered pose, median |second difference| y/p/r:"]
        lines += [f"  {m:<10} {_triple(v, 3)} deg" for m, v in h["median_deg"].items()]
        d = h.get("vtb_minus_mediapipe")
        if d:
            lines.append(f"  vtb - MediaPipe per photo: {_triple(d['mean'], 3)} deg, 95 % interval "
                         f"{_triple(d['ci95'][0], 3)} to {_triple(d['ci95'][1], 3)}; vtb steadier on "
                         f"{'/'.join(str(v) for v in d['items_lower'])} of {d['items']} photos")
    if r["goals"]:
        lines += ["", "goals:"] + [f"  {k}: {'reached' if g['reached'] else 'NOT reached'} ({g['value']})"
                                   for k, g in r["goals"].items()]
    note = sample_size_note(((s or {}).get("pose") or {}).get("faces", 0))
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _pose_lines(p: dict) -> list:
    methods = {n: v for n, v in p["methods"].items() if not n.startswith(("vtb depth_scale", *(f"vtb {c}" for c in CORRECTIONS)))}
    lines = ["", f"head pose on {p['label']}: {p['faces']} faces, {p['dropped']} dropped (a |pitch|, |yaw| or "
                 f"|roll| label over {p['limit_deg']:g} deg), {p['kept']} kept",
             "(AFLW's pitch/yaw/roll, degrees, MAE over the faces each method found; missed: no face found or no "
             "pose, never in the MAE; f = image width)",
             f"{'method':<40}{'n':>5}{'missed':>7}{'%':>6}{'pitch':>7}{'yaw':>7}{'roll':>7}{'mean':>7}{'geo':>7}"
             f"{'slope p':>9}{'y':>6}{'r':>6}"]
    for name, v in methods.items():
        lines.append(f"{name:<40}{v['n']:>5}{v['missed']:>7}{_f(v['missed_pct'], 1):>6}{_f(v['mae_pitch']):>7}"
                     f"{_f(v['mae_yaw']):>7}{_f(v['mae_roll']):>7}{_f(v['mae_mean']):>7}{_f(v['geodesic_mean']):>7}"
                     f"{_f(v['slope_pitch']):>9}{_f(v['slope_yaw']):>6}{_f(v['slope_roll']):>6}")
    pub = p.get("published")
    if pub:
        lines.append(f"published, whole set ({pub['faces']} faces, crops from the labels: no misses), mean MAE: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in pub["mae_mean"].items()))
    lines += ["", "by |yaw| label (degrees): faces found, missed (%), mean MAE",
              f"{'method':<40}" + "".join(f"{f'{b} ({n} faces)':>24}" for b, n in p["bands"].items())]
    for name, v in methods.items():
        cells = "".join(f"{x['n']:>5}{x['missed']:>5} ({_f(x['missed_pct'], 1):>4}){_f(x['mae_mean']):>7}"
                        for x in v["bands"].values())
        lines.append(f"{name:<40}{cells}")
    if len(next(iter(methods.values()), {}).get("by_set", {})) > 1:
        lines.append("by set, mean MAE (found of faces): " + "; ".join(
            f"{name}: " + ", ".join(f"{sn} {_f(x['mae_mean'])} ({x['n']} of {x['faces']})"
                                    for sn, x in methods[name]["by_set"].items())
            for name in ("vtb", "MediaPipe landmarks + vtb's estimator") if name in methods))
    sweep = [(n.split()[-1], v) for n, v in p["methods"].items() if n.startswith("vtb depth_scale")]
    if sweep:
        lines.append(f"vtb's depth_scale (default {p.get('depth_scale_default')}): " + ", ".join(
            f"{d}: {_f(v['mae_mean'])} (yaw slope {_f(v['slope_yaw'])})" for d, v in sweep))
    for c, default in (p.get("corrections_default") or {}).items():
        steps = [(n.split()[-1], v) for n, v in p["methods"].items() if n.startswith(f"vtb {c} ")]
        lines.append(f"vtb's {c} (default {default}): " + ", ".join(
            f"{g}: {_f(v['mae_mean'])} (slopes {_f(v['slope_pitch'])}/{_f(v['slope_yaw'])}/{_f(v['slope_roll'])})"
            for g, v in steps))
    loo = p.get("depth_scale_loo")
    if loo:
        lines.append(f"  chosen on {loo['faces'] - 1} faces, scored on the one left out, for each of the {loo['faces']} "
                     f"(leave-one-out): mean MAE {loo['mae_mean']:.2f} (picked {', '.join(map(str, loo['picked']))})")
    return lines


def _f(v, digits: int = 2):
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def _triple(v, digits: int = 2):
    return "-" if not v else "/".join(f"{x:.{digits}f}" for x in v)
