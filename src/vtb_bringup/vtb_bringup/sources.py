"""Where `./vtb run` and the demo get images when they do not come from a ROS topic.

A source is an iterable of Frame plus how fast to play it. No rclpy here: the runner's
source node publishes these frames on the graph's image topic, so every input goes through
the same topics as a real camera driver's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class SourceError(RuntimeError):
    """An input that cannot be opened or read; the message names it."""


@dataclass
class Frame:
    rgb: np.ndarray                       # HxWx3 uint8, RGB
    camera_matrix: np.ndarray | None      # 3x3 intrinsics when known (the rendered clip)
    truth: dict | None = None             # what the clip rendered (yaw/pitch/roll, gaze, eyelids)


@dataclass
class Source:
    name: str
    frames: callable                      # () -> Iterator[Frame]: a fresh pass over the input
    rate: float | None                    # frames per second to play at; None: as they come (a camera)
    finite: bool = True


# the clip's frames are kept JPEG-encoded: 150 raw 640x480 frames are 138 MB of the graph's
# RSS (./vtb run --clip went over 400 MB), JPEG at 95 is ~50 KB a frame (mean error < 1 level)
# and decoding one costs ~2-3 ms, a few % of one core at 30 fps
CLIP_JPEG_QUALITY = 95


def clip_source(frames: int = 150, rate: float = 30.0, size=(640, 480)) -> Source:
    """The rendered clip of a real face (skimage's astronaut photo on a 3D head: turning,
    nodding, moving, eyes sweeping, a blink every two seconds). Rendered once, kept in memory
    as JPEG, decoded as it is played."""
    import cv2
    from vtb_pose.frames import ypr_from_rotation
    from vtb_eval.render import HeadRenderer, default_intrinsics, trajectory

    renderer, k = HeadRenderer(), default_intrinsics(*size)
    encoded = []    # (JPEG bytes, truth)
    for i, (rotation, t) in enumerate(trajectory(frames, rate)):
        gaze = (15.0 * np.sin(i / rate * 1.3), 6.0 * np.sin(i / rate * 0.9))
        eyelids = 1.0 if i % int(2 * rate) in (40, 41, 42) else 0.0
        rgb = renderer.render(rotation, t, k, size, gaze=gaze, eyelids=eyelids)
        truth = {"ypr_deg": ypr_from_rotation(rotation), "gaze_deg": gaze, "eyes_closed": eyelids > 0.5}
        # RGB stored as if BGR and decoded back the same way: no channel swap either way
        ok, jpeg = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, CLIP_JPEG_QUALITY])
        encoded.append((jpeg, truth))

    def play() -> Iterator[Frame]:
        for jpeg, truth in encoded:
            yield Frame(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), k, truth)
    return Source("rendered clip", play, rate)


def video_source(path: str | Path, rate: float | None = None) -> Source:
    """A video file, played at its own frame rate unless `rate` is given."""
    import cv2
    path = Path(path)
    if path.is_dir():
        raise SourceError(f"{path} is a folder, not a video file (a folder of images: --images {path})")
    if not path.is_file():
        raise SourceError(f"video file {path} does not exist")
    cap = cv2.VideoCapture(str(path))
    ok, _ = cap.read()
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    if not ok:
        raise SourceError(f"video file {path}: OpenCV cannot decode it")

    def frames() -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(path))
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None)
        finally:
            cap.release()
    return Source(f"video {path}", frames, rate or (fps if fps and fps > 0 else 30.0))


def folder_source(path: str | Path, rate: float = 10.0) -> Source:
    """Every image in a folder, in name order, at `rate` frames per second."""
    import cv2
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"image folder {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"image folder {path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def frames() -> Iterator[Frame]:
        for f in files:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if bgr is None:   # one unreadable file does not end the run
                print(f"vtb run: skipping {f}: not a readable image", flush=True)
                continue
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None)
    return Source(f"images in {path}", frames, rate)


def camera_source(device: str, width: int = 640, height: int = 480) -> Source:
    """A webcam through OpenCV: an index (0) or a device path (/dev/video0)."""
    import cv2
    target = int(device) if str(device).isdigit() else str(device)
    # opened here, before the graph starts, so a missing camera is a clear error (exit 2), not
    # a failure in the source thread after an empty latency table
    opened = [_open_camera(cv2, target, device, width, height)]

    def frames() -> Iterator[Frame]:
        cap = opened.pop() if opened else _open_camera(cv2, target, device, width, height)
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    raise SourceError(f"camera {device} stopped delivering frames")
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None)
        finally:
            cap.release()
    return Source(f"camera {device}", frames, None, finite=False)


def _open_camera(cv2, target, device, width, height):
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"camera {device} cannot be opened (is it connected, and free?)")
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    return cap
