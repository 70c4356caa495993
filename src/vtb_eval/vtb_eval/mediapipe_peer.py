"""Google MediaPipe's own FaceMesh as a measured peer of vtb's perception, on the same frames.

mediapipe 0.10.21 (the last with `mp.solutions.face_mesh`) needs numpy<2 and protobuf<5, so it
cannot share vtb's venv: it lives in `.venv-mediapipe` at the repository root, pinned by
`requirements/mediapipe.txt`, and runs as a subprocess (`_mediapipe_worker.py`). This module
imports neither mediapipe nor rclpy.

    from vtb_eval.mediapipe_peer import run_mediapipe
    out = run_mediapipe(frames)          # (N, H, W, 3) uint8 RGB
    out["times_ms"], out["landmarks"]    # per frame; (N, 478, 2) pixels, NaN where no face

The first call creates the venv (about 30 s with pip's cache warm, about 1 GB); later calls
find it by a stamp holding the sha256 of the requirements file.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VENV_NAME = ".venv-mediapipe"
REQUIREMENTS = Path("requirements") / "mediapipe.txt"
STAMP = ".vtb-requirements-sha256"
WORKER = Path(__file__).resolve().with_name("_mediapipe_worker.py")

# vtb's environment points at its own venv, its colcon install and the ROS wheels' libraries;
# the worker must see only .venv-mediapipe's packages.
_VTB_ENV_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "LD_LIBRARY_PATH",
                 "LD_PRELOAD", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "AMENT_PREFIX_PATH",
                 "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE",
                 "__PYVENV_LAUNCHER__")


def repository_root() -> Path:
    """The checkout holding requirements/mediapipe.txt: $VTB_ROOT (set by activate.bash), else
    the first parent of this file that has it (src/ through colcon's symlink install)."""
    env = os.environ.get("VTB_ROOT")
    candidates = [Path(env)] if env else []
    candidates += Path(__file__).resolve().parents
    for c in candidates:
        if (c / REQUIREMENTS).is_file():
            return c
    raise RuntimeError(f"cannot find {REQUIREMENTS} (looked in $VTB_ROOT and above {__file__}); "
                       "pass root= the vtb checkout")


def clean_environment() -> dict:
    """os.environ without vtb's venv, workspace and library paths."""
    env = {k: v for k, v in os.environ.items() if k not in _VTB_ENV_VARS}
    venv_bin = os.environ.get("VIRTUAL_ENV")
    if venv_bin:
        venv_bin = str(Path(venv_bin) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def base_python() -> str:
    """The interpreter behind vtb's venv: .venv's own python would load vtb's site-packages
    (and the ROS wheels' re-exec .pth) just to create the new venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def venv_python(root: Path) -> Path:
    return root / VENV_NAME / "bin" / "python"


def _run(cmd, what, retry, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          env=clean_environment(), **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{tail}\n{retry}")
    return proc


def ensure_venv(root: Path | None = None, echo=print) -> Path:
    """Create or update .venv-mediapipe from requirements/mediapipe.txt; return its python.
    Skipped (in milliseconds) when the stamp says the requirements are unchanged."""
    root = Path(root) if root else repository_root()
    requirements = root / REQUIREMENTS
    if not requirements.is_file():
        raise RuntimeError(f"{requirements} is missing: is {root} a vtb checkout?")
    venv = root / VENV_NAME
    python = venv_python(root)
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / STAMP
    if python.exists() and stamp.is_file() and stamp.read_text().strip() == want:
        return python

    retry = (f"Fix the cause and call again, or start over: rm -rf {venv} "
             "(it is rebuilt on the next run)")
    venv.mkdir(exist_ok=True)
    with open(venv / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two benchmarks at once must not pip into each other
        if stamp.is_file() and stamp.read_text().strip() == want and python.exists():
            return python  # the other one just finished it
        t0 = time.monotonic()
        if not python.exists():
            echo(f"[mediapipe] creating {venv} with {base_python()}")
            _run([base_python(), "-m", "venv", venv], "creating the MediaPipe venv", retry)
        echo(f"[mediapipe] installing {REQUIREMENTS} into {venv} (a fresh venv: about 30 s, 1 GB)")
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
              "-r", requirements], "installing MediaPipe's packages", retry)
        stamp.write_text(want + "\n")
        echo(f"[mediapipe] {venv} ready in {time.monotonic() - t0:.1f} s")
    return python


def run_mediapipe(frames: np.ndarray, refine_landmarks: bool = True, static_image_mode: bool = False,
                  max_num_faces: int = 1, warmup: int = 10, root: Path | None = None,
                  echo=print, timeout_s: float | None = None, task: Path | None = None) -> dict:
    """MediaPipe FaceMesh over `frames` ((N, H, W, 3) uint8 RGB) in one FaceMesh instance.

    Returns {"times_ms": [N floats], "landmarks": (N, K, 2) float32, "z": (N, K) float32,
    "version": str}. K is 478 with refine_landmarks, else 468. times_ms is the wall time of each
    FaceMesh.process call. Landmarks are MediaPipe's normalized coordinates times the frame's
    width and height (0 is the image's left/top edge, so pixel i's centre is at i + 0.5); rows
    are NaN where no face was found; the first face only. "faces" (N, max_num_faces, K, 3): every
    face found, x, y as above and z, NaN rows for faces not found.

    Warm-up: before the timed pass the first `warmup` frames are processed once, backwards, so
    one-time costs (allocations, XNNPACK packing) are paid and, in video mode, the tracker
    arrives at frame 0 exactly as if the timed sequence had been running: the times are steady
    state. MediaPipe picks its own CPU threads (the solutions API has no thread setting).

    task: a Face Landmarker `.task` file; MediaPipe's Face Landmarker (blendshapes on) runs
    instead of FaceMesh, and the result also has "blendshapes" ((N, max_num_faces, 52), NaN
    where no face, MediaPipe's order) and "blendshape_names".
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}")
    python = ensure_venv(root, echo)
    if timeout_s is None:
        timeout_s = 120 + 0.5 * (len(frames) + warmup)  # start-up, then far above ~3 ms a frame
    tmp = Path(tempfile.mkdtemp(prefix="vtb-mediapipe-"))
    try:
        np.save(tmp / "frames.npy", np.ascontiguousarray(frames))
        cmd = [python, "-I", WORKER, tmp / "frames.npy", tmp / "result.npz",
               "--refine", int(refine_landmarks), "--static", int(static_image_mode),
               "--max-faces", max_num_faces, "--warmup", warmup] + (["--task", task] if task else [])
        try:
            _run(cmd, "the MediaPipe worker",
                 f"Retry; if it persists, recreate the venv: rm -rf {python.parent.parent}",
                 timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the MediaPipe worker took longer than {timeout_s:.0f} s: "
                               f"{' '.join(map(str, cmd))}") from None
        with np.load(tmp / "result.npz") as r:
            out = {"times_ms": r["times_ms"].tolist(), "landmarks": r["landmarks"],
                   "z": r["z"], "faces": r["faces"], "version": str(r["version"])}
            if "blendshapes" in r:
                out["blendshapes"] = r["blendshapes"]
                out["blendshape_names"] = [str(n) for n in r["blendshape_names"]]
            return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_mediapipe_stills(read, shapes, echo=print, batch: int = 200, **options) -> list[dict]:
    """run_mediapipe in static mode over images of several sizes: one worker per image size (a
    worker's frames share a shape) and per `batch` images of it (450x450 crops: 120 MB a batch).
    read(i) gives image i, shapes[i] its shape. Returns, per image, its row of the worker's
    per-frame results ("faces", and with a `task` "blendshapes" and "blendshape_names")."""
    out = [None] * len(shapes)
    by_shape = {}
    for i, shape in enumerate(shapes):
        by_shape.setdefault(tuple(shape), []).append(i)
    echo(f"MediaPipe on {len(shapes)} images ({len(by_shape)} image sizes)")
    for idx in by_shape.values():
        for b in range(0, len(idx), batch):
            part = idx[b:b + batch]
            r = run_mediapipe(np.stack([read(i) for i in part]), static_image_mode=True, warmup=0, echo=echo,
                              **options)
            for n, i in enumerate(part):
                out[i] = {"faces": r["faces"][n]}
                if "blendshapes" in r:
                    out[i].update(blendshapes=r["blendshapes"][n], blendshape_names=r["blendshape_names"])
            if len(idx) > batch:
                echo(f"MediaPipe {min(b + batch, len(idx))}/{len(idx)} images")
    return out
