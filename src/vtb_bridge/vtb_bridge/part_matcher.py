"""Gather the parts of one image's perception by header stamp. No rclpy here.

The bridge gets an image's faces, head poses, gaze and face state on four topics. An image goes
out once all its parts are there, or once it has waited `wait_s` for the missing ones (a node
that is off or slow). It goes out ONCE: a part that arrives after its image went out (face_state
more than `wait_s` after head_poses) is dropped and counted in `late`; before, it started a
second, partial entry for the same image, which went out again.
"""
from __future__ import annotations

from collections import OrderedDict


class PartMatcher:
    """`add(key, part, msg, now)` returns the image's parts {part: msg, "arrived": t} when it is
    complete, else None; `due(now)` returns [(key, parts)] of the images that waited long
    enough. Keys (stamps) already handed out are remembered (the last `remember`)."""

    def __init__(self, parts, wait_s: float, remember: int = 512):
        self.parts, self.wait_s, self.remember = tuple(parts), float(wait_s), int(remember)
        self.pending = {}             # key -> {part: msg, "arrived": monotonic time}
        self._done = OrderedDict()    # keys handed out, oldest first
        self.late = 0                 # parts dropped: their image had gone out

    def add(self, key, part, msg, now: float):
        if key in self._done:
            self.late += 1
            return None
        entry = self.pending.setdefault(key, {"arrived": now})
        entry[part] = msg
        if all(p in entry for p in self.parts):
            return self._finish(key)
        return None

    def due(self, now: float) -> list:
        keys = [k for k, e in self.pending.items() if now - e["arrived"] > self.wait_s]
        return [(k, self._finish(k)) for k in keys]

    def _finish(self, key):
        self._done[key] = None
        while len(self._done) > self.remember:
            self._done.popitem(last=False)
        return self.pending.pop(key)


def header_source(entry, order=("face_state", "faces", "head_poses", "gaze")):
    """The part whose header (stamp, frame_id) the image's output carries: any part there is,
    so a pose-only image keeps its stamp (it went out with stamp 0 and no frame_id)."""
    return next((entry[p] for p in order if p in entry), None)
