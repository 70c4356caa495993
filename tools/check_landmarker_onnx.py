#!/usr/bin/env python3
"""Check the Face Landmarker's ONNX model (converted by `./vtb models fetch`) on each ONNX Runtime
execution provider against LiteRT running the original tflite, and time both.

    source activate.bash && python tools/check_landmarker_onnx.py                      # CPU
    source activate.bash && python tools/check_landmarker_onnx.py --provider cuda tensorrt --require

On a GPU machine this needs an onnxruntime with the CUDA/TensorRT providers in the venv
(onnxruntime-gpu in place of onnxruntime, as the Docker image has it; TensorRT also needs its
own libraries, else it falls back to CUDA).
Inputs: the astronaut's face as vtb's pipeline crops it, and its mirror image. Per provider it
prints the provider ONNX Runtime really used (a missing one falls back to the next with a
warning, as vtb's create_session does), the largest |ONNX Runtime - LiteRT| of the landmarks
(pixels of the 256 crop) and of the presence logit, with both inputs in one batch and each
alone, and the median time of --runs calls for a batch of 1 and of 2 (after --warmup calls:
TensorRT builds its engine on the first ones). --require exits 1 when a provider fell back or
an output differs by more than vtb_detector.models.BUNDLE_TOLERANCE.
"""
import argparse
import json
import sys
import time

import numpy as np

from vtb_detector import models
from vtb_detector.inference import PROVIDERS, ModelRunner

NAME = "face_landmarker"


def median_ms(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--provider", nargs="+", default=["cpu"], choices=["cpu", "cuda", "tensorrt"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU threads (default 1 2)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--require", action="store_true", help="exit 1 on a fallback or a difference over tolerance")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args()

    manifest = json.loads((models.models_dir() / models.MANIFEST).read_text()).get(NAME, {})
    print(f"{NAME}.onnx: sha256 {manifest.get('onnx_sha256', '?')[:12]}, converted in "
          f"{manifest.get('conversion_s', '?')} s, fetch-time check {manifest.get('max_abs_diff_vs_litert')}")
    faces = models.reference_face_crops(models.BUNDLE_MODELS[NAME].input_size)
    one = np.ascontiguousarray(faces[:1])
    results, failed = [], False
    for threads in args.threads:
        ref = ModelRunner(NAME, "litert", "cpu", threads)
        want = [np.concatenate(o) for o in zip(*(ref(faces[i:i + 1]) for i in range(len(faces))))]
        row = {"backend": "litert", "provider": "cpu", "used": "XNNPACK", "threads": threads,
               "batch1_ms": median_ms(lambda: ref(one), args.runs, args.warmup),
               "batch2_ms": median_ms(lambda: ref(faces), args.runs, args.warmup)}
        results.append(row)
        for provider in args.provider:
            runner = ModelRunner(NAME, "onnxruntime", provider, threads)
            used = runner._session.get_providers()[0]
            fell_back = used != PROVIDERS[provider][0]
            batched = runner(faces)
            alone = [np.concatenate(o) for o in zip(*(runner(faces[i:i + 1]) for i in range(len(faces))))]
            diff = {f"{what}_{out}": float(np.abs(got[k] - want[k]).max())
                    for what, got in (("batch", batched), ("alone", alone))
                    for k, out in enumerate(("landmarks_px", "presence_logit"))}
            row = {"backend": "onnxruntime", "provider": provider, "used": used, "threads": threads,
                   "batch1_ms": median_ms(lambda: runner(one), args.runs, args.warmup),
                   "batch2_ms": median_ms(lambda: runner(faces), args.runs, args.warmup), **diff}
            results.append(row)
            if fell_back or max(diff.values()) > models.BUNDLE_TOLERANCE:
                failed = True
    print(f"{'backend':12} {'provider':9} {'used':28} {'thr':>3} {'b1 ms':>7} {'b2 ms':>7}  max |onnx - litert|")
    for r in results:
        diffs = ", ".join(f"{k} {v:.2g}" for k, v in r.items() if k.endswith(("_px", "_logit")))
        print(f"{r['backend']:12} {r['provider']:9} {r['used']:28} {r['threads']:>3} {r['batch1_ms']:7.2f} "
              f"{r['batch2_ms']:7.2f}  {diffs}")
    print(f"median of {args.runs} calls after {args.warmup} warm-up calls; landmarks in pixels of the 256 crop")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"manifest": manifest, "runs": args.runs, "results": results}, f, indent=2)
    if failed:
        print("a provider fell back or an output differs by more than "
              f"{models.BUNDLE_TOLERANCE}", file=sys.stderr)
        return 1 if args.require else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
