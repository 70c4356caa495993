"""`vtb eval real`: accuracy on real labelled faces, with MediaPipe and a textbook baseline beside
vtb on the same images. No rclpy here.

Stills (datasets.py reads the layouts): faces found and missed; NME over the 68 iBUG points and
the 51 inner ones (no jaw contour), in % of the outer-eye-corner distance (points 36 and 45),
after mapping MediaPipe's 478 points to iBUG's 68 (MEDIAPIPE_TO_68). Head pose on AFLW2000-3D:
mean absolute error of pitch, yaw and roll in AFLW's own decomposition (datasets.aflw_angles), the
geodesic angle between predicted and labelled rotation, and the slope of predicted on labelled
angle (1 = no shrinkage). Methods, each on the same images:
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
(video mode) landmarks through the same estimator and filter; agreement with MediaPipe (NME68
between the two).

16 AFLW2000-3D images are far too few to compare with whole-set numbers published in papers;
compare methods with each other on the same images.
"""
from __future__ import annotations

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
DEPTH_SCALES = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)

GOALS = {"pose_mae_deg": 3.5, "yaw_slope": (0.95, 1.05), "margin_over_6pt_deg": 1.0, "max_dance_ids": 2}


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


def run_real_eval(data: Path, model: str = "short", with_mediapipe: bool = True, echo=print,
                  landmark_model: str = "face_mesh") -> dict:
    data = Path(data)
    samples = datasets.real_data_samples(data)
    clips = datasets.videos(data)
    if not samples and not clips:
        raise FileNotFoundError(f"no labelled images or videos under {data} (layouts: vtb_eval/datasets.py)")
    t0 = time.monotonic()
    stills = _eval_stills(samples, model, landmark_model, with_mediapipe, echo) if samples else {}
    videos = [_eval_video(p, model, landmark_model, with_mediapipe, echo) for p in clips]
    return {"data": str(data), "model": model, "landmark_model": landmark_model, "stills": stills, "videos": videos,
            "seconds": round(time.monotonic() - t0, 1), "goals": _goals(stills, videos)}


def _eval_stills(samples, model, landmark_model, with_mediapipe, echo) -> dict:
    import cv2
    from vtb_detector.pipeline import FacePipeline
    from vtb_pose.pnp import HeadPoseEstimator

    pipeline = FacePipeline(detector=model, max_faces=10, threads=2, landmark_model=landmark_model)
    images = []
    for s in samples:
        bgr = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read {s.image}")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    echo(f"eval real: vtb on {len(samples)} labelled images")
    vtb = [[f.landmarks for f in pipeline.process_still(rgb)] for rgb in images]
    mp = _mediapipe_stills(images, echo) if with_mediapipe else None

    methods = {"vtb": vtb} | ({"mediapipe": mp} if mp is not None else {})
    rows = []
    for i, s in enumerate(samples):
        for j, label in enumerate(s.faces):
            row = {"image": s.image.name, "set": s.set, "face": j, "labels": s.label_source}
            for name, per_image in methods.items():
                found = per_image[i]
                k = _match([to68(lm) for lm in found], label)
                row[name] = None if k is None else {
                    "nme68": nme(to68(found[k]), label), "nme51": nme(to68(found[k]), label, INNER_51),
                    "landmarks": found[k]}
            rows.append(row)

    out = {"images": len(samples), "faces": len(rows), "by_set": {}, "landmarks": {}, "pose": None}
    for name in methods:
        got = [r[name] for r in rows if r.get(name)]
        out["landmarks"][name] = {"found": len(got), "missed": len(rows) - len(got),
                                  "nme68": _mean(g["nme68"] for g in got), "nme51": _mean(g["nme51"] for g in got)}
        for set_name in dict.fromkeys(r["set"] for r in rows):
            rs = [r for r in rows if r["set"] == set_name]
            g = [r[name] for r in rs if r.get(name)]
            out["by_set"].setdefault(set_name, {"faces": len(rs)})[name] = {
                "found": len(g), "nme68": _mean(x["nme68"] for x in g), "nme51": _mean(x["nme51"] for x in g)}
    # landmarks compared on the faces every method found
    both = [r for r in rows if all(r.get(m) for m in methods)]
    out["landmarks_common"] = {"faces": len(both), **{m: {"nme68": _mean(r[m]["nme68"] for r in both),
                                                          "nme51": _mean(r[m]["nme51"] for r in both)}
                                                      for m in methods}}

    if any(s.pose is not None for s in samples):
        out["pose"] = _eval_pose(rows, samples, images, methods, HeadPoseEstimator)
    for r in rows:  # the JSON keeps the errors, not the points
        for m in methods:
            if r.get(m):
                r[m].pop("landmarks")
    out["rows"] = rows
    return out


def _mediapipe_stills(images, echo) -> list:
    """MediaPipe in static mode, one worker per image size (its frames must share a shape)."""
    from .mediapipe_peer import run_mediapipe
    out = [None] * len(images)
    shapes = {}
    for i, im in enumerate(images):
        shapes.setdefault(im.shape, []).append(i)
    echo(f"eval real: MediaPipe on {len(images)} images ({len(shapes)} image sizes)")
    for shape, idx in shapes.items():
        r = run_mediapipe(np.stack([images[i] for i in idx]), static_image_mode=True, max_num_faces=10,
                          warmup=0, echo=echo)
        for n, i in enumerate(idx):
            out[i] = [f for f in r["faces"][n] if np.isfinite(f).all()]
    return out


def _eval_pose(rows, samples, images, methods, HeadPoseEstimator) -> dict:
    from vtb_pose.frames import angle_between
    by_name = {s.image.name: (s, im) for s, im in zip(samples, images)}
    posed = [r for r in rows if by_name[r["image"]][0].pose is not None]
    estimator = HeadPoseEstimator()
    pnp = HeadPoseEstimator(method="sqpnp")
    sweep = {ds: HeadPoseEstimator(depth_scale=ds) for ds in DEPTH_SCALES}

    def rotation_of(est, lm, k):
        e = est.estimate(lm, k)
        return None if e is None else e.rotation

    preds = {}  # method -> list of (row index, rotation)
    truths = []
    for r in posed:
        s, im = by_name[r["image"]]
        k = intrinsics(im.shape[1], im.shape[0])
        truth = datasets.from_aflw(datasets.aflw_rotation(np.radians(s.pose)))
        truths.append((s.pose, truth))
        label = s.faces[r["face"]]
        cands = {"6-point PnP on the labels' 68": lambda: six_point_rotation(label, k)}
        if r.get("vtb"):
            lm = r["vtb"]["landmarks"]
            cands |= {"vtb": lambda lm=lm: rotation_of(estimator, lm, k),
                      "vtb landmarks, PnP on pixels (sqpnp)": lambda lm=lm: rotation_of(pnp, lm, k),
                      "6-point PnP on vtb's 68": lambda lm=lm: six_point_rotation(to68(lm), k)}
            cands |= {f"vtb depth_scale {ds}": (lambda lm=lm, e=e: rotation_of(e, lm, k)) for ds, e in sweep.items()}
        if r.get("mediapipe"):
            lm = r["mediapipe"]["landmarks"]
            cands |= {"MediaPipe landmarks + vtb's estimator": lambda lm=lm: rotation_of(estimator, lm, k),
                      "6-point PnP on MediaPipe's 68": lambda lm=lm: six_point_rotation(to68(lm), k)}
        for name, fn in cands.items():
            preds.setdefault(name, {})[len(truths) - 1] = fn()

    table = {}
    for name, got in preds.items():
        idx = [i for i, rot in got.items() if rot is not None]
        pred = np.array([datasets.aflw_angles(datasets.to_aflw(got[i])) for i in idx])
        true = np.array([truths[i][0] for i in idx])
        err = np.abs(pred - true)
        geo = [angle_between(got[i], truths[i][1]) for i in idx]
        table[name] = {"n": len(idx), "failed": len(posed) - len(idx),
                       "mae_pitch": float(err[:, 0].mean()), "mae_yaw": float(err[:, 1].mean()),
                       "mae_roll": float(err[:, 2].mean()), "mae_mean": float(err.mean()),
                       "geodesic_mean": float(np.mean(geo)),
                       "slope_pitch": _slope(true[:, 0], pred[:, 0]), "slope_yaw": _slope(true[:, 1], pred[:, 1]),
                       "slope_roll": _slope(true[:, 2], pred[:, 2]),
                       "errors": [[float(v) for v in row] for row in (pred - true)]}
    return {"faces": len(posed), "methods": table, "depth_scale_loo": _leave_one_out(table)}


def _leave_one_out(table) -> dict | None:
    """The depth factor chosen on all images but one, scored on that one: what choosing it on
    this sample is worth on a face not in it."""
    names = [f"vtb depth_scale {ds}" for ds in DEPTH_SCALES]
    if not all(n in table for n in names) or len({table[n]["n"] for n in names}) != 1:
        return None
    err = np.array([np.abs(table[n]["errors"]).mean(1) for n in names])  # (scales, faces)
    picks, scores = [], []
    for f in range(err.shape[1]):
        rest = np.delete(err, f, axis=1).mean(1)
        best = int(np.argmin(rest))
        picks.append(DEPTH_SCALES[best])
        scores.append(err[best, f])
    return {"mae_mean": float(np.mean(scores)), "picked": sorted(set(picks))}


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
           "tracking": tracking, "jitter_model": jitter_model, "jitter": {"vtb": _jitter(landmarks, frames.shape, fps)}}
    if with_mediapipe:
        from .mediapipe_peer import run_mediapipe
        r = run_mediapipe(frames, static_image_mode=False, warmup=0, echo=echo)
        mp = np.concatenate([r["landmarks"], r["z"][..., None]], axis=2).astype(np.float64)
        found = np.isfinite(mp).all((1, 2))
        out["tracking"]["mediapipe"] = {"frames_found": int(found.sum()), "ids": None, "losses": _losses(found)}
        out["jitter"]["mediapipe"] = _jitter(mp, frames.shape, fps)
        both = [i for i in range(len(frames)) if found[i] and np.isfinite(landmarks[i]).all()]
        out["agreement_nme68"] = _mean(nme(to68(landmarks[i]), to68(mp[i])) for i in both) if both else None
    return out


def _continuity(per_frame) -> dict:
    found = np.array([bool(f) for f in per_frame])
    ids = [f[0].id for f in per_frame if f]
    return {"frames_found": int(found.sum()), "ids": len(set(ids)), "losses": _losses(found),
            "id_changes": int(sum(a != b for a, b in zip(ids, ids[1:])))}


def _losses(found: np.ndarray) -> int:
    return int(np.sum(found[:-1] & ~found[1:]))


def _jitter(landmarks: np.ndarray, shape, fps: float) -> dict:
    """Landmark and filtered-pose jitter over the runs of consecutive frames with a face."""
    from vtb_pose.filters import PoseFilter
    from vtb_pose.frames import quaternion_wxyz, rotation_from_quaternion, ypr_from_rotation
    from vtb_pose.pnp import HeadPoseEstimator
    k = intrinsics(shape[2], shape[1])
    estimator = HeadPoseEstimator()
    lm_jitter, ypr, raw_ypr = [], [], []
    run68, filt = [], None
    for i, lm in enumerate(list(landmarks) + [None]):
        ok = lm is not None and np.isfinite(lm).all()
        e = estimator.estimate(lm, k) if ok else None
        if e is None:  # a gap ends the run: second differences never straddle it
            lm_jitter += _second_diff_pct(run68)
            run68, filt = [], None
            ypr.append(None)
            raw_ypr.append(None)
            continue
        run68.append(to68(lm))
        filt = filt or PoseFilter()
        q, _ = filt(quaternion_wxyz(e.rotation), e.translation, i / fps)
        ypr.append(ypr_from_rotation(rotation_from_quaternion(q)))
        raw_ypr.append(ypr_from_rotation(e.rotation))
    return {"landmark_pct": float(np.median(lm_jitter)) if lm_jitter else None,
            "pose_filtered_deg": _pose_jitter(ypr), "pose_unfiltered_deg": _pose_jitter(raw_ypr)}


def _second_diff_pct(run68) -> list:
    if len(run68) < 3:
        return []
    a = np.array(run68)
    eye = np.linalg.norm(a[:, 36] - a[:, 45], axis=1)[1:-1, None]
    d2 = np.linalg.norm(a[2:] - 2 * a[1:-1] + a[:-2], axis=2) / eye
    return list(100 * d2.ravel())


def _pose_jitter(ypr) -> list | None:
    """Median absolute second difference of yaw, pitch, roll over consecutive frames."""
    d = [np.subtract(ypr[i + 1], 2 * np.array(ypr[i])) + ypr[i - 1]
         for i in range(1, len(ypr) - 1) if all(ypr[j] is not None for j in (i - 1, i, i + 1))]
    return [float(v) for v in np.median(np.abs(d), axis=0)] if d else None


def _slope(x, y) -> float:
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 and np.ptp(x) > 0 else float("nan")


def _mean(values):
    v = list(values)
    return float(np.mean(v)) if v else None


def _goals(stills: dict, videos: list) -> dict:
    goals = {}
    pose = (stills or {}).get("pose")
    if pose:
        m = pose["methods"]
        vtb = m.get("vtb")
        six = m.get("6-point PnP on vtb's 68")
        if vtb:
            goals["pose MAE <= 3.5 deg"] = (vtb["mae_mean"] <= GOALS["pose_mae_deg"], round(vtb["mae_mean"], 2))
            lo, hi = GOALS["yaw_slope"]
            goals["yaw slope 0.95-1.05"] = (lo <= vtb["slope_yaw"] <= hi, round(vtb["slope_yaw"], 3))
        if vtb and six:
            margin = six["mae_mean"] - vtb["mae_mean"]
            goals["1 deg better than 6-point PnP on vtb's landmarks"] = (margin >= GOALS["margin_over_6pt_deg"],
                                                                        round(margin, 2))
    lm = (stills or {}).get("by_set", {}).get("AFLW2000-3D", {})
    if lm.get("vtb") and lm.get("mediapipe"):
        goals["NME68 on AFLW no worse than MediaPipe"] = (lm["vtb"]["nme68"] <= lm["mediapipe"]["nme68"],
                                                          [round(lm["vtb"]["nme68"], 2), round(lm["mediapipe"]["nme68"], 2)])
    for v in videos:
        if "deepvtb" in v["video"]:
            vtb_models = {m: t for m, t in v["tracking"].items() if m != "mediapipe"}
            best = max(vtb_models, key=lambda m: vtb_models[m]["frames_found"])
            ids = vtb_models[best]["ids"]
            goals[f"dance clip: <= 2 face ids ({best}, the model finding it most often)"] = (
                ids <= GOALS["max_dance_ids"], ids)
        if "obama" in v["video"] and v["jitter"].get("mediapipe"):
            a, b = v["jitter"]["vtb"]["pose_filtered_deg"], v["jitter"]["mediapipe"]["pose_filtered_deg"]
            if a and b:
                goals["talking head: filtered pose jitter <= MediaPipe's"] = (
                    all(x <= y for x, y in zip(a, b)), [[round(x, 3) for x in a], [round(y, 3) for y in b]])
    return {k: {"reached": bool(ok), "value": val} for k, (ok, val) in goals.items()}


def format_table(r: dict) -> str:
    lines = [f"real faces from {r['data']} (vtb: detector {r['model']}, landmarks {r['landmark_model']}; "
             f"{r['seconds']} s)"]
    s = r["stills"]
    if s:
        lines += ["", f"landmarks on {s['faces']} labelled faces in {s['images']} images "
                      f"(NME, % of the outer-eye-corner distance; 51 = without the jaw contour)",
                  f"{'set':<14}{'faces':>6}  " + "".join(f"{m + ' found':>16}{'NME68':>7}{'NME51':>7}"
                                                          for m in s["landmarks"])]
        for name, v in list(s["by_set"].items()) + [("all", {"faces": s["faces"], **s["landmarks"]})]:
            cells = ""
            for m in s["landmarks"]:
                x = v.get(m, {})
                cells += f"{x.get('found', 0):>16}{_f(x.get('nme68')):>7}{_f(x.get('nme51')):>7}"
            lines.append(f"{name:<14}{v['faces']:>6}  {cells}")
        c = s["landmarks_common"]
        lines.append(f"on the {c['faces']} faces every method found: " + ", ".join(
            f"{m} NME68 {_f(c[m]['nme68'])} NME51 {_f(c[m]['nme51'])}" for m in s["landmarks"]))
        p = s.get("pose")
        if p:
            lines += ["", f"head pose on {p['faces']} AFLW2000-3D faces (AFLW's pitch/yaw/roll, degrees; "
                          f"f = image width)",
                      f"{'method':<40}{'n':>3}{'pitch':>7}{'yaw':>7}{'roll':>7}{'mean':>7}{'geo':>7}"
                      f"{'slope p':>9}{'y':>6}{'r':>6}"]
            for name, v in p["methods"].items():
                if name.startswith("vtb depth_scale"):
                    continue
                lines.append(f"{name:<40}{v['n']:>3}{v['mae_pitch']:>7.2f}{v['mae_yaw']:>7.2f}{v['mae_roll']:>7.2f}"
                             f"{v['mae_mean']:>7.2f}{v['geodesic_mean']:>7.2f}{v['slope_pitch']:>9.2f}"
                             f"{v['slope_yaw']:>6.2f}{v['slope_roll']:>6.2f}")
            sweep = [(n.split()[-1], v["mae_mean"], v["slope_yaw"]) for n, v in p["methods"].items()
                     if n.startswith("vtb depth_scale")]
            if sweep:
                lines.append("vtb's depth_scale: " + ", ".join(f"{d}: {m:.2f} (yaw slope {y:.2f})" for d, m, y in sweep))
            loo = p.get("depth_scale_loo")
            if loo:
                lines.append(f"  chosen on 15 faces, scored on the 16th (leave-one-out): mean MAE {loo['mae_mean']:.2f} "
                             f"(picked {', '.join(map(str, loo['picked']))})")
    for v in r["videos"]:
        lines += ["", f"{v['video']}: {v['frames']} frames {v['size'][0]}x{v['size'][1]} at {v['fps']:g} fps (no labels)",
                  f"{'tracker':<12}{'found':>7}{'ids':>5}{'losses':>8}"]
        for m, t in v["tracking"].items():
            lines.append(f"{m:<12}{t['frames_found']:>7}{'-' if t['ids'] is None else t['ids']:>5}{t['losses']:>8}")
        for m, j in v["jitter"].items():
            pf, pu = j["pose_filtered_deg"], j["pose_unfiltered_deg"]
            who = f"vtb ({v['jitter_model']})" if m == "vtb" else m
            lines.append(f"jitter {who:<16} landmarks {_f(j['landmark_pct'])} % of eye distance; pose y/p/r filtered "
                         f"{_triple(pf)}, unfiltered {_triple(pu)} deg")
        if v.get("agreement_nme68") is not None:
            lines.append(f"vtb vs MediaPipe landmarks: NME68 {v['agreement_nme68']:.2f}")
    if r["goals"]:
        lines += ["", "goals:"] + [f"  {k}: {'reached' if g['reached'] else 'NOT reached'} ({g['value']})"
                                   for k, g in r["goals"].items()]
    lines += ["", "16 AFLW2000-3D images are far too few to compare with whole-set numbers in papers; "
                  "compare the methods on the same images."]
    return "\n".join(lines)


def _f(v):
    return "-" if v is None else f"{v:.2f}"


def _triple(v):
    return "-" if not v else "/".join(f"{x:.2f}" for x in v)
