"""Ground truth for head-pose evaluation: a textured 3D head rendered at a known pose.

No head-pose data set is reachable here, so the head is built from one real photo (skimage's
astronaut): its 478 landmarks from vtb's own pipeline give the vertices (the mesh model's x, y
and relative depth, taken into the REP-155 face frame and scaled to a 63 mm pupil distance), the
photo is the texture, and a Delaunay triangulation of the landmarks in the photo is the mesh.
A ring of extra vertices just beyond the face oval, pushed back in depth and textured with the
photo around the face (hairline, temples, jaw), rounds the head's border off (measured: at 1 m
it lowers the pipeline's failure rate over the evaluation grid from 42% to 27%; larger rings,
which bring in the photo's background, did worse).

Rendering: project the vertices, drop back faces, find the nearest triangle at every pixel
centre (a z-buffer, vectorised over all triangles' bounding boxes), then one `cv2.remap` from
the photo through each pixel's perspective-correct barycentric texture position. The
silhouette is anti-aliased by its coverage from a 4x finer mask. No lighting: the photo's own
shading turns with the head.

Conventions: the pose (R, t) is the face frame in the camera's optical frame (x right, y down,
z forward; metres). Pixel coordinates have their origin at the image's top-left corner with
pixel centres at +0.5, like the landmark pipeline. No rclpy here.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import transforms3d
from scipy.spatial import Delaunay

from .face_model import DEFAULT_IPD_M, to_face_frame

N_LANDMARKS = 478
# MediaPipe's face oval, clockwise in the image from the forehead's top
FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                      400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                      54, 103, 67, 109])
# Rings beyond the face oval: (scale from the face centre in the photo at the forehead, the
# same at the chin, push back in depth as a fraction of the face's width).
HEAD_RINGS = ((1.12, 1.12, 0.12),)
MIN_ANGLE_DEG = 4.0       # border triangles thinner than this are slivers, dropped
AA_SUPERSAMPLE = 4        # silhouette coverage from a mask this many times finer
FIXED_POINT_SHIFT = 4     # cv2 polygon vertices at 1/16 pixel


def frontal_rotation() -> np.ndarray:
    """R of a face looking into the camera: face x (forward) -> camera -z, face y (left) ->
    camera +x, face z (up) -> camera -y."""
    return np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


def pose_from_ypr(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R of the face frame in the optical frame for a face that starts frontal and turns by
    yaw (about its up axis, + = to its own left, i.e. to the image's right), then pitch (about
    the new left axis, + = looks down), then roll (about the new forward axis, + = tilts toward
    its right shoulder): intrinsic Z-Y'-X''."""
    return frontal_rotation() @ transforms3d.euler.euler2mat(
        math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg), "rzyx")


def default_intrinsics(w: int, h: int) -> np.ndarray:
    """Pinhole K with the focal length equal to the width (about 53 degrees across) and the
    principal point at the image centre."""
    return np.array([[float(w), 0.0, w / 2], [0.0, float(w), h / 2], [0.0, 0.0, 1.0]])


def project(points: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray):
    """(pixels (N, 2), depth (N,)) of face-frame points seen by a camera at pose (R, t)."""
    cam = np.asarray(points, np.float64) @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)
    z = cam[:, 2]
    px = cam[:, :2] / z[:, None] * (K[0, 0], K[1, 1]) + (K[0, 2], K[1, 2])
    return px, z


def default_background(size=(640, 480)) -> np.ndarray:
    """A blurred crop of skimage's coffee photo, so the face is not on a trivially black field."""
    from skimage import data
    w, h = size
    coffee = data.coffee()
    scale = max(w / coffee.shape[1], h / coffee.shape[0])
    big = cv2.resize(coffee, (max(w, round(coffee.shape[1] * scale)), max(h, round(coffee.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return cv2.GaussianBlur(big[y0:y0 + h, x0:x0 + w], (0, 0), 4 * w / 640)


def photo_landmarks(photo: np.ndarray) -> np.ndarray:
    """The 478 landmarks of the one face in a photo, from vtb's pipeline (second pass: the crop
    from the first pass's landmarks, as when tracking)."""
    from vtb_detector.pipeline import FacePipeline
    pipeline = FacePipeline()
    pipeline.process(photo)
    faces = pipeline.process(photo)
    if len(faces) != 1:
        raise ValueError(f"expected one face in the photo, found {len(faces)}")
    return np.asarray(faces[0].landmarks, np.float64)


def _head_rings(lm: np.ndarray, rings) -> np.ndarray:
    """Extra vertices beyond the face oval, in the landmarks' own coordinates (x, y photo
    pixels, z relative depth in the same scale): the oval scaled out from the face centre, by
    `top` at the forehead's height down to `bottom` at the chin's, and pushed back by `back`
    face widths."""
    oval = lm[FACE_OVAL]
    centre = oval[:, :2].mean(0)
    width = np.ptp(oval[:, 0])
    lo, hi = oval[:, 1].min(), oval[:, 1].max()
    down = ((oval[:, 1] - lo) / (hi - lo))[:, None]       # 0 at the top of the oval, 1 at the chin
    out = []
    for top, bottom, back in rings:
        ring = oval.copy()
        ring[:, :2] = centre + (oval[:, :2] - centre) * (top + (bottom - top) * down)
        ring[:, 2] = oval[:, 2] + back * width
        out.append(ring)
    return np.concatenate(out) if out else np.zeros((0, 3))


def _triangulate(uv: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Delaunay triangles of the photo positions, counter-clockwise on screen (positive signed
    area with y down), without those outside the outline (Delaunay fills the convex hull,
    bridging the outline's concave stretches) and without slivers along the mesh's border.
    Slivers inside (the closed lips' nearly collinear points) stay: dropping them would open
    holes in the surface."""
    tri = Delaunay(uv).simplices
    flipped = _signed_area(uv[tri]) < 0
    tri[flipped] = tri[flipped][:, [0, 2, 1]]
    polygon = outline.astype(np.float32).reshape(-1, 1, 2)
    centroids = uv[tri].mean(1)
    tri = tri[[cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0 for x, y in centroids]]
    sliver = _min_angle_sin(uv[tri]) < math.sin(math.radians(MIN_ANGLE_DEG))
    while True:  # peel border slivers until the border has none
        drop = sliver & _on_border(tri)
        if not drop.any():
            return tri
        tri, sliver = tri[~drop], sliver[~drop]


def _min_angle_sin(p: np.ndarray) -> np.ndarray:
    """Sine of each triangle's smallest angle (the one between its two longest sides)."""
    lengths = np.sort(np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2), 1)
    return np.abs(_signed_area(p)) / np.maximum(lengths[:, 2] * lengths[:, 1], 1e-12)


def _on_border(tri: np.ndarray) -> np.ndarray:
    """Which triangles have an edge no other triangle shares."""
    edges = np.sort(np.stack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], 1), axis=2).reshape(-1, 2)
    _, inverse, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    return (counts[inverse.ravel()] == 1).reshape(-1, 3).any(1)


def _signed_area(p: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangles (T, 3, 2) in image coordinates (y down). The photo's
    triangles are made positive, so a triangle seen from behind is negative."""
    a, b = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


class HeadRenderer:
    """A textured head made from one frontal face photo (default: skimage's astronaut)."""

    def __init__(self, photo: np.ndarray | None = None, ipd: float = DEFAULT_IPD_M,
                 landmarks: np.ndarray | None = None, rings=HEAD_RINGS):
        if photo is None:
            from skimage import data
            photo = data.astronaut()
        self.photo = np.ascontiguousarray(photo[..., :3])
        lm = photo_landmarks(self.photo) if landmarks is None else np.asarray(landmarks, np.float64)
        self.photo_landmarks = lm
        extra = _head_rings(lm, rings)
        # the extra vertices share the face frame made from the 478 landmarks
        self.vertices = to_face_frame(np.concatenate([lm, extra]), ipd)
        self.uv = np.concatenate([lm[:, :2], extra[:, :2]])   # texture: photo pixels
        outline = self.uv[N_LANDMARKS + len(FACE_OVAL) * (len(rings) - 1):] if len(rings) else lm[FACE_OVAL, :2]
        self.triangles = _triangulate(self.uv, outline)
        self._backgrounds: dict = {}

    @property
    def landmarks_3d(self) -> np.ndarray:
        """The 478 landmark vertices (metres, face frame)."""
        return self.vertices[:N_LANDMARKS]

    def project_landmarks(self, R, t, K) -> np.ndarray:
        """(478, 2) ground-truth pixel positions of the landmark vertices at pose (R, t)."""
        return project(self.landmarks_3d, R, t, K)[0]

    def background(self, size) -> np.ndarray:
        if size not in self._backgrounds:
            self._backgrounds[size] = default_background(size)
        return self._backgrounds[size]

    def render(self, R, t, K, size=(640, 480), background=None) -> np.ndarray:
        """The head at pose (R, t) seen through intrinsics K: RGB uint8 (h, w, 3).
        background: None (blurred coffee photo), an (h, w, 3) image, or one colour."""
        w, h = size
        if background is None:
            out = self.background(tuple(size)).copy()
        elif np.ndim(background) == 3:
            out = np.ascontiguousarray(background[..., :3], np.uint8).copy()
            if out.shape[:2] != (h, w):
                out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        else:
            out = np.empty((h, w, 3), np.uint8)
            out[:] = background

        px, z = project(self.vertices, R, t, K)
        px -= 0.5                       # cv2's pixel centres are at integers, ours at +0.5
        tri = self.triangles
        p = px[tri]
        front = (_signed_area(p) > 1e-6) & (z[tri].min(1) > 1e-3)    # back faces culled
        tri, p = tri[front], p[front]
        if not len(tri):
            return out
        lo = np.maximum(np.floor(p.reshape(-1, 2).min(0)).astype(int) - 1, 0)
        hi = np.minimum(np.ceil(p.reshape(-1, 2).max(0)).astype(int) + 2, (w, h))
        (x0, y0), (x1, y1) = lo, hi
        if x1 <= x0 or y1 <= y0:
            return out
        bw, bh = x1 - x0, y1 - y0
        p = p - (x0, y0)

        ys, xs, k, bary = _zbuffer(p, 1.0 / z[tri], bw, bh)
        tex = np.einsum("nk,nkc->nc", bary, (self.uv[tri] - 0.5).astype(np.float32)[k])
        map_x = np.full((bh, bw), -1.0, np.float32)
        map_y = np.full((bh, bw), -1.0, np.float32)
        map_x[ys, xs] = tex[:, 0]
        map_y[ys, xs] = tex[:, 1]

        # silhouette coverage for anti-aliased edges; the pixels it adds around the sampled
        # ones take a neighbour's texture position
        fixed = np.round(p * (1 << FIXED_POINT_SHIFT)).astype(np.int32)
        alpha = _coverage(fixed, bw, bh)
        grown = (alpha > 0) & (map_x < 0)
        if grown.any():
            kernel = np.ones((3, 3), np.uint8)
            map_x = np.where(grown, cv2.dilate(map_x, kernel), map_x)
            map_y = np.where(grown, cv2.dilate(map_y, kernel), map_y)
        face = cv2.remap(self.photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = alpha[..., None]
        roi = out[y0:y1, x0:x1]
        roi[:] = (face * a + roi * (1.0 - a) + 0.5).astype(np.uint8)
        return out


def _zbuffer(p: np.ndarray, inv_depth: np.ndarray, w: int, h: int):
    """Visible surface per pixel centre: every pixel of every triangle's bounding box is
    tested at once, and the nearest triangle covering it wins.
    p: (T, 3, 2) screen vertices (cv2 pixel centres), inv_depth: (T, 3) 1/z of the vertices.
    Returns the covered pixels' rows, columns, triangle and barycentric weights on the
    triangle in 3D (N, 3), perspective-correct."""
    lo = np.clip(np.ceil(p.min(1)).astype(np.int64), 0, (w - 1, h - 1))
    hi = np.clip(np.floor(p.max(1)).astype(np.int64), -1, (w - 1, h - 1))
    size = np.maximum(hi - lo + 1, 0)                       # (T, 2) bounding boxes in pixels
    count = size[:, 0] * size[:, 1]
    k = np.repeat(np.arange(len(p)), count)
    local = np.arange(len(k)) - np.repeat(np.cumsum(count) - count, count)
    xs = lo[k, 0] + local % size[k, 0]
    ys = lo[k, 1] + local // size[k, 0]
    # [x, y, 1] @ inverse of the rows [x_i, y_i, 1] = barycentric weights; column by column,
    # in float32 (the slow part: every candidate pixel)
    to_bary = np.linalg.inv(np.concatenate([p, np.ones((len(p), 3, 1))], 2)).astype(np.float32)
    coef = to_bary.reshape(-1, 9)[k]
    fx, fy = xs.astype(np.float32), ys.astype(np.float32)
    b0, b1, b2 = (fx * coef[:, j] + fy * coef[:, 3 + j] + coef[:, 6 + j] for j in range(3))
    inside = np.minimum(np.minimum(b0, b1), b2) > -1e-4
    k, xs, ys = k[inside], xs[inside], ys[inside]
    bary = np.maximum(np.stack([b0[inside], b1[inside], b2[inside]], 1), 0)
    bary /= bary.sum(1, keepdims=True)
    # 1/z is linear in screen space: the nearest surface has the largest
    nearness = np.einsum("nk,nk->n", bary, inv_depth[k].astype(np.float32))
    pixel = ys * w + xs
    nearest = np.full(w * h, -np.inf, np.float32)
    np.maximum.at(nearest, pixel, nearness)
    # ties (a pixel centre on a shared edge) are the same surface point: either may win
    win = nearness >= nearest[pixel]
    k, bary = k[win], bary[win]
    # perspective-correct weights on the surface (for the texture): screen weights / depth
    surface = bary * inv_depth[k].astype(np.float32)
    surface /= surface.sum(1, keepdims=True)
    return ys[win], xs[win], k, surface


def _coverage(fixed: np.ndarray, bw: int, bh: int) -> np.ndarray:
    """Fraction of each pixel inside the union of the triangles, from a finer mask."""
    s = AA_SUPERSAMPLE
    fine = np.zeros((bh * s, bw * s), np.uint8)
    # fixed-point at 1/16 px; the fine mask's pixel is 1/s px: shift the centre convention
    pts = ((fixed.astype(np.int64) * s) + ((s - 1) << FIXED_POINT_SHIFT) // 2).astype(np.int32)
    # one polygon at a time: fillPoly given them all would drop where two overlap (even-odd)
    for tri in pts:
        cv2.fillConvexPoly(fine, tri, 255, cv2.LINE_8, FIXED_POINT_SHIFT)
    return cv2.resize(fine, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


# The head turns about the neck, not about the point between the eyes: a pivot 9 cm behind and
# 6 cm below it (face frame, metres), so turning also moves the face, as a real head does.
NECK_PIVOT = np.array([-0.09, 0.0, -0.06])


def trajectory(n_frames: int, fps: float = 30.0, yaw_deg: float = 30.0, pitch_deg: float = 15.0,
               roll_deg: float = 10.0, distance=(0.5, 0.8), shift_m: float = 0.04):
    """(R, t) per frame of a smooth head-like motion: yaw, pitch and roll swing within
    +-yaw_deg, +-pitch_deg, +-roll_deg; the face drifts up to shift_m sideways (half that
    vertically) plus its swing about the neck, and the distance of the point between its eyes
    stays within `distance` (metres). Sines with unrelated periods (4.3 to 9.7 s), so the
    motion does not repeat within a clip."""
    near, far = distance
    frontal = frontal_rotation()
    for i in range(n_frames):
        s = 2 * math.pi * i / fps
        R = pose_from_ypr(yaw_deg * math.sin(s / 6.1), pitch_deg * math.sin(s / 4.3 + 1.0),
                          roll_deg * math.sin(s / 5.3 + 2.0))
        t = np.array([shift_m * math.sin(s / 7.3 + 0.4), 0.5 * shift_m * math.sin(s / 5.9 + 1.3),
                      (near + far) / 2 + (far - near) / 2 * math.sin(s / 9.7 + 0.5)])
        # sideways and vertical swing about the neck; the depth stays as drawn above
        t[:2] += ((frontal - R) @ NECK_PIVOT)[:2]
        yield R, t


def render_clip(n_frames: int, size=(640, 480), fps: float = 30.0, renderer: HeadRenderer | None = None,
                background=None, **motion):
    """(rgb, R, t, K) per frame of the rendered head moving along `trajectory` (its keyword
    arguments pass through `motion`); K = default_intrinsics(*size)."""
    renderer = renderer or HeadRenderer()
    K = default_intrinsics(*size)
    for R, t in trajectory(n_frames, fps, **motion):
        yield renderer.render(R, t, K, size, background), R, t, K
