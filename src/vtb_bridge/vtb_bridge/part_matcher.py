"""Gather the parts of one image's perception by header stamp. No rclpy here.

The bridge gets an image's faces, head poses, gaze and face state on four topics. An image goes
out once all its parts are there, or once it has waited `wait_s` for the missing ones (a node
that is off or slow). It goes out ONCE: a part that arrives after its image went out (face_state
more than `wait_s` after head_poses, on a starved CPU) does not send that image again.

Nor is it thrown away: it is held, and the next image that goes out without that part of its
own carries it (entry["held"]), so a blink or an open mouth seen only in a late face state still
reaches the avatar, one image later. A held part is dropped, and counted in `late`, only when a
newer part of its kind replaced it, or when it is more than `hold_s` older than the image.
"""
from __future__ import annotations

from collections import OrderedDict


class PartMatcher:
    """`add(key, part, msg, now)` returns the image's parts {part: msg, "arrived": t} when it is
    complete, else None; `due(now)` returns [(key, parts)] of the images that waited long
    enough. Keys (stamps) already handed out are remembered (the last `remember`)."""

    def __init__(self, parts, wait_s: float, remember: int = 512, hold_s: float = 0.5):
        self.parts, self.wait_s, self.remember = tuple(parts), float(wait_s), int(remember)
        self.hold_s = float(hold_s)
        self.pending = {}             # key -> {part: msg, "arrived": monotonic time}
        self._done = OrderedDict()    # keys handed out, oldest first
        self.held = {}                # part -> (key, msg): came after its image went out
        self.late = 0                 # parts dropped: replaced by a newer one, or too old
        self.carried = 0              # late parts that went out with a later image
        self.images = 0               # images handed out
        self.without = {p: 0 for p in self.parts}   # images out with no part of that kind, own or held

    def add(self, key, part, msg, now: float):
        if key in self._done:
            old = self.held.get(part)
            if old is not None and old[0] >= key:
                self.late += 1        # a newer one of its kind is already held
            else:
                self.late += old is not None
                self.held[part] = (key, msg)
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
        entry = self.pending.pop(key)
        for part, (held_key, msg) in list(self.held.items()):
            if held_key > key:
                continue              # for a later image
            del self.held[part]
            if part in entry or stamp_seconds(key) - stamp_seconds(held_key) > self.hold_s:
                self.late += 1        # this image has its own (newer), or it is too old
            else:
                entry.setdefault("held", {})[part] = msg
                self.carried += 1
        self.images += 1
        for part in self.parts:
            if part_of(entry, part) is None:
                self.without[part] += 1
        return entry

    def stats(self) -> dict:
        """What became of the parts: images out, late parts carried by a later image, dropped
        (late), and images that went out with no part of a kind (neither own nor held)."""
        return {"images": self.images, "late_parts_carried": self.carried, "late_parts_dropped": self.late,
                "images_without": dict(self.without)}


def stamp_seconds(key) -> float:
    """A (sec, nanosec) stamp key in seconds; any other key as a number."""
    return key[0] + 1e-9 * key[1] if isinstance(key, tuple) else float(key)


def part_of(entry, part):
    """The image's own part, else the newest one that came too late for its own image."""
    own = entry.get(part)
    return own if own is not None else entry.get("held", {}).get(part)


def header_source(entry, order=("face_state", "faces", "head_poses", "gaze")):
    """The part whose header (stamp, frame_id) the image's output carries: any part there is,
    so a pose-only image keeps its stamp (it went out with stamp 0 and no frame_id)."""
    return next((entry[p] for p in order if p in entry), None)
