"""Run MediaPipe's FaceMesh over frames and write what it found. Runs inside .venv-mediapipe.

Standalone on purpose: it imports only numpy and mediapipe from its own venv (numpy<2), never
vtb, so mediapipe_peer.py starts it as a subprocess with that venv's python:

    python -I _mediapipe_worker.py FRAMES.npy RESULT.npz [--refine 0|1] [--static 0|1]
        [--max-faces N] [--warmup N] [--task FACE_LANDMARKER.task]

FRAMES.npy: (N, H, W, 3) uint8 RGB. RESULT.npz holds `times_ms` (N,), `landmarks` (N, K, 2)
float32 in pixels of the frame (NaN where no face), `z` (N, K) MediaPipe's relative depth scaled
like x (pixels), `version`, and `faces` (N, max_faces, K, 3): every face found, x, y, z as above
(NaN rows where fewer faces were found).

With --task the Face Landmarker task (mediapipe.tasks, blendshapes on) runs instead of FaceMesh:
image mode with --static 1, video mode otherwise; RESULT.npz then also holds `blendshapes`
(N, max_faces, 52) in MediaPipe's order (NaN where no face) and `blendshape_names`.
"""
import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frames")
    ap.add_argument("result")
    ap.add_argument("--refine", type=int, default=1)
    ap.add_argument("--static", type=int, default=0)
    ap.add_argument("--max-faces", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--task", default="")
    args = ap.parse_args()

    import mediapipe as mp  # late: its import alone takes about a second

    frames = np.load(args.frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise SystemExit(f"frames must be (N, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    n, h, w, _ = frames.shape
    k = 478 if args.refine else 468
    landmarks = np.full((n, k, 2), np.nan, np.float32)
    z = np.full((n, k), np.nan, np.float32)
    times_ms = np.zeros(n, np.float64)
    faces = np.full((n, args.max_faces, k, 3), np.nan, np.float32)

    extra = {}
    if args.task:
        extra = landmarker(mp, args, frames, faces, times_ms)
        landmarks[:], z[:] = faces[:, 0, :, :2], faces[:, 0, :, 2]
        np.savez(args.result, times_ms=times_ms, landmarks=landmarks, z=z, faces=faces,
                 version=np.array(mp.__version__), **extra)
        return

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=bool(args.static),
                                         max_num_faces=args.max_faces,
                                         refine_landmarks=bool(args.refine)) as mesh:
        # Warm-up: the first frames played backwards, so the tracker (video mode) ends on frame
        # 0 and the timed pass continues a smooth sequence instead of jumping back to its start.
        for frame in frames[:min(args.warmup, n)][::-1]:
            mesh.process(frame)
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame)
            t0 = time.perf_counter()
            result = mesh.process(frame)
            times_ms[i] = (time.perf_counter() - t0) * 1e3
            for j, face in enumerate((result.multi_face_landmarks or [])[:args.max_faces]):
                xyz = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32)
                # normalized image coordinates (0 = left/top edge, 1 = right/bottom edge)
                # to pixels; MediaPipe scales z like x
                faces[i, j] = xyz * (w, h, w)
            # landmarks and z: the first face (vtb's benchmark and reference are single-face)
            landmarks[i], z[i] = faces[i, 0, :, :2], faces[i, 0, :, 2]

    np.savez(args.result, times_ms=times_ms, landmarks=landmarks, z=z, faces=faces,
             version=np.array(mp.__version__))


def landmarker(mp, args, frames, faces, times_ms) -> dict:
    """MediaPipe's Face Landmarker task over the frames: fills `faces` and `times_ms`, returns
    the blendshapes."""
    vision = mp.tasks.vision
    n, h, w, _ = frames.shape
    blendshapes = np.full((n, args.max_faces, 52), np.nan, np.float32)
    names = []
    video = not args.static
    options = vision.FaceLandmarkerOptions(
        base_options=mp.tasks.BaseOptions(model_asset_path=args.task),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=args.max_faces, output_face_blendshapes=True)
    with vision.FaceLandmarker.create_from_options(options) as task:
        def run(frame, i):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            # video mode wants rising timestamps: 30 fps ones (the warm-up runs before frame 0)
            return task.detect_for_video(image, int((i + args.warmup + 1) * 1000 / 30)) if video else task.detect(image)
        for k, frame in enumerate(frames[:min(args.warmup, n)][::-1]):
            run(frame, k - args.warmup)
        for i, frame in enumerate(frames):
            t0 = time.perf_counter()
            result = run(frame, i)
            times_ms[i] = (time.perf_counter() - t0) * 1e3
            for j, face in enumerate(result.face_landmarks[:args.max_faces]):
                faces[i, j] = np.array([(p.x, p.y, p.z) for p in face], np.float32) * (w, h, w)
            for j, shapes in enumerate(result.face_blendshapes[:args.max_faces]):
                blendshapes[i, j] = [c.score for c in shapes]
                names = names or [c.category_name for c in shapes]
    return {"blendshapes": blendshapes, "blendshape_names": np.array(names)}


if __name__ == "__main__":
    main()
