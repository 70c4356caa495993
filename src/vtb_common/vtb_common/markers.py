"""RViz markers the pose and gaze nodes publish, made one way: arrows and point clouds with a
lifetime, so markers of a face that left vanish on their own.

    arrow(header, "gaze/f3a9", 0, start, end, (1, 0.8, 0.1, 1), (0.003, 0.006, 0.01))
    points(header, "face_mesh/f3a9", 0, [Point(...), ...], (0.2, 0.9, 0.9, 1), 0.002)
"""
from __future__ import annotations

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker

LIFETIME_S = 0.5


def point(v) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _marker(kind, header, ns, marker_id, rgba, scale, lifetime_s, frame_locked) -> Marker:
    seconds = int(lifetime_s)
    m = Marker(ns=ns, id=int(marker_id), type=kind, action=Marker.ADD, frame_locked=frame_locked,
               lifetime=Duration(sec=seconds, nanosec=int(round((lifetime_s - seconds) * 1e9))))
    m.header = header
    m.scale = Vector3(x=float(scale[0]), y=float(scale[1]), z=float(scale[2]))
    m.color = ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]), a=float(rgba[3]))
    m.pose.orientation.w = 1.0
    return m


def arrow(header, ns, marker_id, start, end, rgba, scale, lifetime_s=LIFETIME_S, frame_locked=False) -> Marker:
    """An arrow from `start` to `end` (x, y, z in the header's frame); scale: shaft diameter,
    head diameter, head length (metres)."""
    m = _marker(Marker.ARROW, header, ns, marker_id, rgba, scale, lifetime_s, frame_locked)
    m.points = [point(start), point(end)]
    return m


def wanted(publisher) -> bool:
    """Whether to build markers for `publisher` at all: only while something subscribes (RViz).
    Building and converting the face mesh's 468 points costs about 1 ms a frame, for nobody
    when no one looks."""
    return publisher is not None and publisher.get_subscription_count() > 0


def points(header, ns, marker_id, pts, rgba, size, lifetime_s=LIFETIME_S, frame_locked=False) -> Marker:
    """A POINTS marker of `pts` (geometry_msgs Points, kept as given: build them once), `size`
    metres square."""
    m = _marker(Marker.POINTS, header, ns, marker_id, rgba, (size, size, 0.0), lifetime_s, frame_locked)
    m.points = pts
    return m
