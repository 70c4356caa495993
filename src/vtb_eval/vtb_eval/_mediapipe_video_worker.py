"""MediaPipe's Face Landmarker in a plain decode-and-track loop over a video, for `./vtb bench
cpu`. Runs inside .venv-mediapipe: imports only numpy, OpenCV and mediapipe from that venv.

    python -I _mediapipe_video_worker.py VIDEO RESULT.json --task FACE_LANDMARKER.task
        [--seconds S] [--warmup N]

Decodes the video with OpenCV (again from the start when it ends), converts each frame to RGB
and runs the Face Landmarker task in video mode with blendshapes on, at the video's frame rate
(as `./vtb run --video` plays it; a frame that comes late is not skipped), for `seconds` after
`warmup` frames. Writes frames, CPU seconds of this process over the timed loop
(every thread: time.process_time), wall seconds, the video's frame rate and size, per-frame
wall times (decode + track) and how many frames had a face.
"""
import argparse
import json
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("result")
    ap.add_argument("--task", required=True)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    import cv2
    import mediapipe as mp  # late: its import alone takes about a second
    vision = mp.tasks.vision
    options = vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=args.task),
        running_mode=vision.RunningMode.VIDEO, num_faces=1, output_face_blendshapes=True)
    cap = cv2.VideoCapture(args.video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
    frames = found = 0
    times_ms = []
    with vision.FaceLandmarker.create_from_options(options) as task:
        n, cpu0, wall0 = 0, None, None
        while True:
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:                    # the end: from the start again
                cap.release()
                cap = cv2.VideoCapture(args.video)
                ok, bgr = cap.read()
                if not ok:
                    raise SystemExit(f"OpenCV decodes no frames of {args.video}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = task.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb),
                                           int(n * 1000 / fps))
            n += 1
            if n == args.warmup:          # the timed loop starts after the warm-up frames
                cpu0, wall0 = time.process_time(), time.monotonic()
                continue
            if cpu0 is None:
                continue
            times_ms.append((time.perf_counter() - t0) * 1e3)
            frames += 1
            found += bool(result.face_landmarks) and bool(result.face_blendshapes)
            if time.monotonic() - wall0 >= args.seconds:
                break
            ahead = wall0 + frames / fps - time.monotonic()
            if ahead > 0:                 # the next frame is not due yet: a camera's pace
                time.sleep(ahead)
        cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    cap.release()
    with open(args.result, "w") as f:
        json.dump({"frames": frames, "cpu_s": cpu_s, "wall_s": wall_s, "fps": fps, "size": size,
                   "faces_found": found, "times_ms": [round(t, 3) for t in times_ms],
                   "version": mp.__version__, "p50_ms": float(np.median(times_ms)),
                   "p99_ms": float(np.percentile(times_ms, 99))}, f)


if __name__ == "__main__":
    main()
