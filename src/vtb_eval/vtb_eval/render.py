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

Expressions (ground truth for gaze, blinks and the mouth): `render(..., gaze=, eyelids=, jaw=)`
turns the eyes, closes the lids, opens or closes the jaw; `project_landmarks` and `landmarks_3d_at`
with the same keywords give the landmarks where they then are, `gaze_direction` and
`eyeball_centres` the true gaze. The eye model is the average eye the gaze estimator assumes:
an eyeball of radius `eyeball_radius` (12 mm) centred that far behind the iris centre along the
face's forward axis, the photo's eyes looking straight ahead; looking by (yaw, pitch) turns the
iris about that centre. The lids' and the jaw's vertices move (the upper lid's edge down to the
lower lid's, stretching the skin above it; the lower face turns about a hinge in front of the
ears); the iris is drawn into the texture, not moved as vertices. The texture is then an atlas:
the photo with the eyes and the mouth beside it at 4x, where every pixel of the triangles over
the eye openings and the lips is redrawn to show what belongs at its moved place: the eyeball
(the photo's sclera with the iris painted out, and its iris, completed where the lids hid it,
turned and shifted with the gaze), the lid's skin stretched behind an unstretched lash line,
the upper teeth staying with the upper lip, the lower lip moved, dark mouth between. Without
expression keywords the photo is drawn exactly as before.

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

from vtb_pose.face_model import DEFAULT_IPD_M, to_face_frame

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


# Expressions (render's gaze, eyelids and jaw). Eye model: the "average eye" the gaze estimator
# also assumes, an eyeball of this radius whose centre is that far behind the iris centre
# along the face's forward axis (face x) for the photo's eye, which counts as looking straight.
EYEBALL_RADIUS_M = 0.012
EYES = ("left", "right")                                  # the subject's own left and right
IRIS = {"left": np.arange(473, 478), "right": np.arange(468, 473)}   # centre first, then the rim
# lid margins, outer corner to inner corner (MediaPipe's eye contours)
UPPER_LID = {"right": np.array([33, 246, 161, 160, 159, 158, 157, 173, 133]),
             "left": np.array([263, 466, 388, 387, 386, 385, 384, 398, 362])}
LOWER_LID = {"right": np.array([33, 7, 163, 144, 145, 153, 154, 155, 133]),
             "left": np.array([263, 249, 390, 373, 374, 380, 381, 382, 362])}
LID_FOLD_M = 0.013        # skin up to this far above the upper lid's margin stretches as it closes
LASH_M = 0.0025           # the lashes and the lid's edge above them, drawn unstretched at its edge
# inner lip contours, the subject's right corner to the left one
UPPER_LIP_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LOWER_LIP_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])
# The jaw turns about a hinge in front of the ears (face frame, metres): by the angle that drops
# the lower lip's centre (landmark 14) JAW_DROP_M at jaw = 1. How much of the turn a point
# takes ramps from 0 at the line between the lips to 1 over JAW_BAND_M below it, a band that
# widens by JAW_BAND_SPREAD per metre sideways beyond the mouth's corners (the cheeks stretch).
# jaw < 0 turns it the other way, up to the angle that brings the lower lip's centre onto the
# upper one's (13) at jaw = -1; the line where the lips meet is shaded, LIP_SEAM_M either side.
JAW_HINGE = np.array([-0.075, 0.0, -0.04])
JAW_DROP_M = 0.02
JAW_BAND_M = 0.006
JAW_BAND_SPREAD = 0.5
LIP_SEAM_M = 0.0006
MOUTH_COLOUR = (45, 18, 20)     # the open mouth's dark inside, RGB
EXPRESSION_TEXTURE_SCALE = 4    # the re-textured eyes and mouth are drawn at 4x the photo's pixels


def gaze_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rotation of an eye looking by (yaw, pitch) relative to the head, in the face frame:
    yaw about the face's up axis (+ = to the subject's left), then pitch about the new left
    axis (+ = down), as the head's own yaw and pitch."""
    return transforms3d.euler.euler2mat(math.radians(yaw_deg), math.radians(pitch_deg), 0.0, "rzyx")


def per_eye(value, default):
    """{"left": ..., "right": ...} from None (the default for both), one value for both eyes
    or a (left, right) pair; `default` gives the shape of one eye's value."""
    if value is None:
        value = default
    a = np.asarray(value, np.float64)
    one = np.shape(default)
    if a.shape == one:
        return {eye: a.copy() for eye in EYES}
    if a.shape == (2,) + one:
        return {"left": a[0].copy(), "right": a[1].copy()}
    raise ValueError(f"expected a value of shape {one} or (2,) + {one} (left, right), got {a.shape}")


def gaze_direction(R, gaze, eye: str) -> np.ndarray:
    """The true unit gaze vector of the subject's `eye` ("left" or "right") in the camera's
    optical frame, for a head at rotation R looking by `gaze` (as in `HeadRenderer.render`):
    from the eyeball centre through the displaced iris centre."""
    if eye not in EYES:
        raise ValueError(f"eye must be one of {EYES}, not {eye!r}")
    yaw, pitch = per_eye(gaze, (0.0, 0.0))[eye]
    return np.asarray(R, np.float64) @ gaze_rotation(yaw, pitch)[:, 0]


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
    from the first pass's landmarks, as when tracking). Always the 468-point mesh + iris, the
    model the head was built and checked with: the ground truth must not move when the
    tracker's default landmark model changes (it is the thing measured on the renders)."""
    from vtb_detector.pipeline import FacePipeline
    pipeline = FacePipeline(landmark_model="face_mesh")
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
                 landmarks: np.ndarray | None = None, rings=HEAD_RINGS,
                 eyeball_radius: float = EYEBALL_RADIUS_M):
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
        self.eyeball_radius = float(eyeball_radius)
        self._rig = None               # the expression machinery, built on first use
        self._corner_uv_cache = None

    @property
    def landmarks_3d(self) -> np.ndarray:
        """The 478 landmark vertices (metres, face frame)."""
        return self.vertices[:N_LANDMARKS]

    def project_landmarks(self, R, t, K, *, gaze=None, eyelids=None, jaw=None) -> np.ndarray:
        """(478, 2) ground-truth pixel positions of the landmark vertices at pose (R, t), with the
        eyes, lids and jaw as `render` draws them for the same keywords (`landmarks_3d_at`)."""
        return project(self.landmarks_3d_at(gaze, eyelids, jaw), R, t, K)[0]

    def landmarks_3d_at(self, gaze=None, eyelids=None, jaw=None) -> np.ndarray:
        """The 478 landmarks (metres, face frame) with an expression: lid and jaw vertices where
        `render` moves them, and the iris points (468-477) rotated with each eyeball (their true
        place, on the eyeball sphere)."""
        if gaze is None and eyelids is None and jaw is None:
            return self.landmarks_3d
        return self._expression_rig().pose(gaze, eyelids, jaw)[1].copy()

    def eyeball_centres(self, R=None, t=None) -> dict:
        """{"left": (3,), "right": (3,)}: each eyeball's centre (the subject's left and right
        eye), `eyeball_radius` behind its iris centre along the face's forward axis; in the
        camera's optical frame at pose (R, t), or in the face frame without a pose."""
        centres = {eye: self.landmarks_3d[IRIS[eye][0]] - self.eyeball_radius * np.array([1.0, 0.0, 0.0])
                   for eye in EYES}
        if R is None:
            return centres
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64)
        return {eye: R @ c + t for eye, c in centres.items()}

    gaze_direction = staticmethod(gaze_direction)

    def background(self, size) -> np.ndarray:
        if size not in self._backgrounds:
            self._backgrounds[size] = default_background(size)
        return self._backgrounds[size]

    def render(self, R, t, K, size=(640, 480), background=None, *, gaze=None, eyelids=None,
               jaw=None) -> np.ndarray:
        """The head at pose (R, t) seen through intrinsics K: RGB uint8 (h, w, 3).
        background: None (blurred coffee photo), an (h, w, 3) image, or one colour.

        Expression (all None: the photo's face, rendered exactly as without them):
        gaze: (yaw_deg, pitch_deg) for both eyes, or ((yaw, pitch) left, (yaw, pitch) right) per
            eye (the subject's left eye first); relative to the head, signs as the head pose's:
            yaw > 0 looks to the subject's own left (the image's right when frontal), pitch > 0
            looks down. The photo's eyes count as looking straight ahead.
        eyelids: (left, right) closure, or one value for both: 0 open as in the photo, 1 closed
            (the upper lid's edge on the lower lid's). Values outside 0..1 are clipped, as jaw's.
        jaw: -1..1, the jaw turned about its hinge: 0 is the photo's mouth (a smile, the inner
            lips about 11 mm apart over the upper teeth); 1 is open, the lower lip 2 cm lower,
            dark inside below the upper teeth; -1 is closed, the lower lip's middle on the upper
            lip's (14 onto 13), over the teeth.
        """
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
        if gaze is None and eyelids is None and jaw is None:
            vertices, corner_uv, texture = self.vertices, self._corner_uv, self.photo
        else:
            rig = self._expression_rig()
            vertices = rig.pose(gaze, eyelids, jaw)[0]
            corner_uv, texture = rig.corner_uv, rig.atlas
        return self._draw(out, vertices, corner_uv, texture, R, t, K)

    @property
    def _corner_uv(self) -> np.ndarray:
        """(T, 3, 2) texture position of every triangle corner."""
        if self._corner_uv_cache is None:
            self._corner_uv_cache = self.uv[self.triangles]
        return self._corner_uv_cache

    def _expression_rig(self) -> "_ExpressionRig":
        if self._rig is None:
            self._rig = _ExpressionRig(self)
        return self._rig

    def _draw(self, out, vertices, corner_uv, texture, R, t, K) -> np.ndarray:
        """Draw the mesh (vertices in the face frame, texture positions per triangle corner in
        `texture`'s pixels) into `out` at pose (R, t)."""
        h, w = out.shape[:2]
        px, z = project(vertices, R, t, K)
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
        tex = np.einsum("nk,nkc->nc", bary, (corner_uv[front] - 0.5).astype(np.float32)[k])
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
        face = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
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


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _close_gap(v: np.ndarray, fixed: np.ndarray, moving: np.ndarray, amount: float, fold: float,
               up: float) -> None:
    """Close the gap between two contours (landmark indices; `moving` above `fixed` when
    up = +1, below when up = -1, in face z) by `amount` (0..1), in place on vertices v (face
    frame): points between them squeeze towards `fixed` in proportion, points beyond `moving`
    follow it less the farther they are (none beyond `fold`), so the skin there stretches.
    Only points between the contours' ends (in face y) move. Face y stays."""
    if amount <= 0.0:
        return
    rest = v.copy()
    fy, my = rest[fixed, 1], rest[moving, 1]
    fo, mo = np.argsort(fy), np.argsort(my)

    def along(idx, order, col):
        return np.interp(rest[:, 1], rest[idx, 1][order], rest[idx, col][order])

    h = up * rest[:, 2]
    hf, hm = up * along(fixed, fo, 2), up * along(moving, mo, 2)
    xf, xm = along(fixed, fo, 0), along(moving, mo, 0)
    gap = np.maximum(hm - hf, 0.0)
    y0, y1 = max(fy.min(), my.min()), min(fy.max(), my.max())
    span = (rest[:, 1] > y0) & (rest[:, 1] < y1) & (gap > 1e-9) & (h >= hf)
    share = np.where(h <= hm, (h - hf) / np.maximum(gap, 1e-9), np.maximum(0.0, 1.0 - (h - hm) / fold))
    share = np.where(span, share, 0.0) * amount
    v[:, 2] -= up * share * gap
    v[:, 0] += share * (xf - xm)


def _rotate_about_y(d: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Points d (N, 3) turned by angle (N,) radians about the face's y axis (+: forward goes down)."""
    c, s = np.cos(angle), np.sin(angle)
    out = d.copy()
    out[:, 0] = c * d[:, 0] + s * d[:, 2]
    out[:, 2] = -s * d[:, 0] + c * d[:, 2]
    return out


class _ExpressionRig:
    """Gaze, eyelids and jaw for a HeadRenderer. Geometry: the lid and jaw vertices move
    (`_close_gap`, a turn about JAW_HINGE); the render mesh keeps the irises' rest vertices,
    while the true iris landmarks turn with the eyeball. Texture: an atlas, the photo with the
    eyes and the mouth beside it at EXPRESSION_TEXTURE_SCALE, where the pixels of the triangles
    over each eye opening (with the upper lid's skin up to LID_FOLD_M above it) and between the
    lips are redrawn for each expression so that the surface shows, at its moved place, what
    belongs there: the eyeball with its iris turned by the gaze, the lid's skin, the upper
    teeth and the moved lower lip with the dark mouth between. Each texture pixel's moved place
    comes from the mesh itself (its triangle and barycentric weights in the photo), so the
    drawing lines up with the moved lids and lips. The last expression is cached: a pose
    change alone redraws nothing. Not thread-safe (one atlas per renderer)."""

    def __init__(self, renderer: "HeadRenderer"):
        self.renderer = renderer
        rest, uv, photo = renderer.vertices, renderer.uv, renderer.photo
        n = N_LANDMARKS
        self.rest = rest
        # photo pixels -> the face's frontal plane (face y, z in metres): an affine fit
        fit = np.linalg.lstsq(np.c_[uv[:n], np.ones(n)], rest[:n, 1:], rcond=None)[0]
        self.to_face, self.to_face_offset = fit[:2], fit[2]
        self.to_photo = np.linalg.inv(self.to_face)      # row vectors: dq = dP @ to_photo
        s = EXPRESSION_TEXTURE_SCALE

        # the jaw: how much of the turn each vertex takes, and the angle of jaw = 1
        upper, lower = rest[UPPER_LIP_INNER], rest[LOWER_LIP_INNER]
        y = rest[:, 1]
        middle = (np.interp(y, upper[:, 1], upper[:, 2]) + np.interp(y, lower[:, 1], lower[:, 2])) / 2
        beyond = np.maximum(0.0, np.maximum(upper[0, 1] - y, y - upper[-1, 1]))
        self.jaw_share = _smoothstep((middle - rest[:, 2]) / (JAW_BAND_M + JAW_BAND_SPREAD * beyond))
        lip = rest[14] - JAW_HINGE
        angles = np.radians(np.linspace(-30.0, 60.0, 9001))
        drops = lip[2] - _rotate_about_y(np.repeat(lip[None], len(angles), 0), angles * self.jaw_share[14])[:, 2]
        self.jaw_open_angle = float(np.interp(JAW_DROP_M, drops, angles))
        self.jaw_close_angle = float(np.interp(rest[14, 2] - rest[13, 2], drops, angles))     # < 0

        # the regions redrawn: pixels (at s x the photo's) inside each eye opening and the lips
        self.photo_f = photo.astype(np.float32)
        self.sclera_layer, self.iris_layer = self.photo_f.copy(), self.photo_f.copy()
        self.eyes = {}
        # (the eyes' with the upper lid's skin that stretches when it closes)
        fold = np.array([0.0, LID_FOLD_M]) @ self.to_photo
        regions = [("eye", eye, np.concatenate([uv[LOWER_LID[eye]], uv[UPPER_LID[eye]][::-1] + fold]))
                   for eye in EYES]
        # (the mouth's with the lips' edges, where closed lips meet)
        seam = np.array([0.0, 2 * LIP_SEAM_M]) @ self.to_photo
        regions.append(("mouth", None, np.concatenate([uv[UPPER_LIP_INNER] + seam,
                                                       uv[LOWER_LIP_INNER[::-1]] - seam])))
        self.regions, boxes = [], []
        for kind, eye, polygon in regions:
            region = self._interior(polygon)
            region.update(kind=kind, eye=eye)
            self.regions.append(region)
            boxes.append(region["box"])
        for eye in EYES:
            self._eye_layers(eye, uv[np.r_[UPPER_LID[eye], LOWER_LID[eye][::-1][1:-1]]])

        # the atlas: the photo, then each region's box at s x, side by side
        h, w = photo.shape[:2]
        x = w + 2
        offsets = []
        for lo, hi in boxes:
            offsets.append(x)
            x += (hi[0] - lo[0]) * s + 2
        height = max(h, max((hi[1] - lo[1]) * s for lo, hi in boxes))
        self.atlas = np.zeros((height, x, 3), np.uint8)
        self.atlas[:h, :w] = photo
        corner_uv = renderer.uv[renderer.triangles].copy()
        for region, (lo, hi), x0 in zip(self.regions, boxes, offsets):
            bw, bh = (hi - lo) * s
            gx, gy = np.meshgrid(np.arange(bw), np.arange(bh))
            map_x = (lo[0] + (gx + 0.5) / s - 0.5).astype(np.float32)
            map_y = (lo[1] + (gy + 0.5) / s - 0.5).astype(np.float32)
            self.atlas[:bh, x0:x0 + bw] = cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_REPLICATE)
            # the triangles inside the box take their texture from it
            inside = np.all((corner_uv >= lo + 1.0) & (corner_uv <= hi - 1.0), axis=(1, 2))
            corner_uv[inside] = (corner_uv[inside] - lo) * s + (x0, 0)
            region["atlas_rows"], region["atlas_cols"] = region["pixels"][:, 1], region["pixels"][:, 0] + x0
        self.corner_uv = corner_uv
        self._key = None
        self._posed = None

    def _interior(self, polygon: np.ndarray) -> dict:
        """The texture pixels (at s x the photo's) of every mesh triangle that overlaps a polygon
        of the photo (the mesh's edges do not follow the lid margins and lips everywhere, so
        whole triangles are redrawn), each with its triangle and barycentric weights; and a box
        (photo pixels) holding those triangles, with a margin."""
        s = EXPRESSION_TEXTURE_SCALE
        tri, uv = self.renderer.triangles, self.renderer.uv

        def locate(q, cand):
            """(best triangle's index in cand, its barycentric weights) per point."""
            corners = uv[cand]
            a = corners[:, 0]
            inv = np.linalg.inv(np.stack([corners[:, 1] - a, corners[:, 2] - a], 2))
            rx, ry = q[:, 0, None] - a[:, 0], q[:, 1, None] - a[:, 1]          # (N, C)
            l1 = inv[:, 0, 0] * rx + inv[:, 0, 1] * ry
            l2 = inv[:, 1, 0] * rx + inv[:, 1, 1] * ry
            best = np.minimum(np.minimum(1.0 - l1 - l2, l1), l2).argmax(1)
            n = np.arange(len(q))
            l1, l2 = l1[n, best], l2[n, best]
            return best, np.c_[1.0 - l1 - l2, l1, l2]

        def grid(lo, hi):
            bw, bh = (hi - lo) * s
            jy, jx = np.mgrid[0:bh, 0:bw]
            return np.c_[jx.ravel(), jy.ravel()], lo + (np.c_[jx.ravel(), jy.ravel()] + 0.5) / s

        lo = np.floor(polygon.min(0)).astype(int) - 1
        hi = np.ceil(polygon.max(0)).astype(int) + 1
        _, q = grid(lo, hi)
        poly = polygon.astype(np.float32).reshape(-1, 1, 2)
        q = q[[cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0 for x, y in q]]
        corners = uv[tri]
        near = np.all(corners.max(1) >= lo, 1) & np.all(corners.min(1) <= hi, 1)
        best, bary = locate(q, tri[near])
        chosen = tri[near][np.unique(best[bary.min(1) > -1e-6])]
        used = uv[chosen].reshape(-1, 2)
        box_lo = np.floor(used.min(0)).astype(int) - 2
        box_hi = np.ceil(used.max(0)).astype(int) + 2
        pixels, q = grid(box_lo, box_hi)
        best, bary = locate(q, chosen)
        keep = bary.min(1) > -1e-6
        pixels, q, bary, which = pixels[keep], q[keep], np.clip(bary[keep], 0.0, None), chosen[best[keep]]
        bary /= bary.sum(1, keepdims=True)
        return {"q": q, "face": q @ self.to_face + self.to_face_offset, "triangles": which, "bary": bary,
                "pixels": pixels, "box": (box_lo, box_hi)}

    def _eye_layers(self, eye: str, opening: np.ndarray) -> None:
        """The photo's eye split in two: the sclera layer (the iris painted over in the
        sclera's colour) and the iris layer (the iris, where the lids hid it in its own colour),
        in self.sclera_layer and self.iris_layer."""
        uv, photo = self.renderer.uv, self.photo_f
        centre = uv[IRIS[eye][0]]
        radius = float(np.linalg.norm(uv[IRIS[eye][1:]] - centre, axis=1).mean())
        lo = np.floor(opening.min(0)).astype(int) - 2
        hi = np.ceil(opening.max(0)).astype(int) + 2
        lo, hi = np.maximum(lo, 0), np.minimum(hi, photo.shape[1::-1])
        ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]]
        poly = opening.astype(np.float32).reshape(-1, 1, 2)
        depth = np.array([cv2.pointPolygonTest(poly, (x + 0.5, y + 0.5), True)
                          for x, y in zip(xs.ravel(), ys.ravel())]).reshape(xs.shape)   # > 0 inside
        dist = np.hypot(xs + 0.5 - centre[0], ys + 0.5 - centre[1])
        patch = photo[lo[1]:hi[1], lo[0]:hi[0]]
        sclera = patch[(depth > 1.0) & (dist > radius + 1.0)]
        if len(sclera) > 3:   # its brighter half: away from the lids' shadow
            bright = sclera.sum(1)
            sclera_colour = np.median(sclera[bright >= np.median(bright)], 0)
        else:
            sclera_colour = np.array([220.0, 210.0, 200.0])
        visible = np.clip(depth - 0.5, 0.0, 1.0)[..., None]            # the photo shows the iris here
        iris = patch[(dist < radius - 0.5) & (depth > 1.5)]
        iris_colour = iris.mean(0) if len(iris) else np.array([80.0, 55.0, 40.0])
        # under the iris: the sclera around it carried in (keeping the lids' shading), half-way
        # to the sclera's own colour
        cover = np.clip(radius + 1.0 - dist, 0.0, 1.0)[..., None]
        carried = cv2.inpaint(np.clip(patch + 0.5, 0, 255).astype(np.uint8), (cover[..., 0] > 0).astype(np.uint8),
                              3, cv2.INPAINT_TELEA).astype(np.float32)
        fill = 0.5 * carried + 0.5 * sclera_colour
        self.sclera_layer[lo[1]:hi[1], lo[0]:hi[0]] = patch * (1 - cover) + fill * cover
        self.iris_layer[lo[1]:hi[1], lo[0]:hi[0]] = patch * visible + iris_colour * (1 - visible)
        self.eyes[eye] = {"centre": centre, "radius": radius, "sclera": sclera_colour, "iris": iris_colour}

    def pose(self, gaze, eyelids, jaw):
        """(render vertices (V, 3), true landmarks (478, 3)) for an expression; the atlas is
        redrawn for it. The last expression is kept."""
        gaze = per_eye(gaze, (0.0, 0.0))
        closure = {eye: float(np.clip(c, 0.0, 1.0)) for eye, c in per_eye(eyelids, 0.0).items()}
        jaw = float(np.clip(0.0 if jaw is None else jaw, -1.0, 1.0))
        key = (tuple(np.r_[gaze["left"], gaze["right"]]), tuple(closure.values()), jaw)
        if key == self._key:
            return self._posed
        v = self.rest.copy()
        for eye in EYES:
            _close_gap(v, LOWER_LID[eye], UPPER_LID[eye], closure[eye], LID_FOLD_M, +1.0)
        if jaw:
            angle = jaw * (self.jaw_open_angle if jaw > 0 else -self.jaw_close_angle)
            v = JAW_HINGE + _rotate_about_y(v - JAW_HINGE, angle * self.jaw_share)
        landmarks = v[:N_LANDMARKS].copy()
        turns = {eye: gaze_rotation(*gaze[eye]) for eye in EYES}
        centres = self.renderer.eyeball_centres()
        for eye in EYES:
            idx = IRIS[eye]
            landmarks[idx] = centres[eye] + (self.rest[idx] - centres[eye]) @ turns[eye].T
        self._redraw(v - self.rest, turns)
        self._key, self._posed = key, (v, landmarks)
        return self._posed

    def _sample(self, layer: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Bilinear samples (N, 3) of a photo-sized float layer at photo positions q (N, 2)."""
        if not len(q):
            return np.zeros((0, layer.shape[2]), np.float32)
        m = (q - 0.5).astype(np.float32)[None]
        return cv2.remap(layer, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]

    def _photo_at(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The photo's colour (N, 3) at points of the face's frontal plane (face y, z)."""
        return self._sample(self.photo_f, (np.c_[y, z] - self.to_face_offset) @ self.to_photo)

    def _contour(self, idx: np.ndarray, moved: np.ndarray | None = None):
        """(y, z) of a contour of landmarks in the face's frontal plane as the photo has it
        (plus the vertices' move), sorted by y for np.interp."""
        yz = self.renderer.uv[idx] @ self.to_face + self.to_face_offset
        if moved is not None:
            yz = yz + moved[idx, 1:]
        order = np.argsort(yz[:, 0])
        return yz[order, 0], yz[order, 1]

    def _redraw(self, moved: np.ndarray, turns: dict) -> None:
        """Redraw the eye and mouth pixels of the atlas for vertices moved by `moved`: each
        pixel shows what belongs at its moved place (face y, z)."""
        for region in self.regions:
            shift = np.einsum("nk,nkc->nc", region["bary"], moved[region["triangles"]][:, :, 1:])
            at = region["face"] + shift
            if region["kind"] == "eye":
                colour = self._eye(region["eye"], at, moved, turns[region["eye"]])
            else:
                colour = self._mouth(at, moved)
            self.atlas[region["atlas_rows"], region["atlas_cols"]] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)

    def _eye(self, eye: str, at: np.ndarray, moved: np.ndarray, turn: np.ndarray) -> np.ndarray:
        """Around an eye: the eyeball between the lower lid and the (moved) upper lid, with the
        iris turned by `turn`; above it the upper lid's skin, stretched as `_close_gap` moves
        it; the photo elsewhere."""
        y, z = at[:, 0], at[:, 1]
        ly, lz = self._contour(LOWER_LID[eye])
        uy, uz0 = self._contour(UPPER_LID[eye])
        _, uz1 = self._contour(UPPER_LID[eye], moved)
        lower, upper0, upper1 = np.interp(y, ly, lz), np.interp(y, uy, uz0), np.interp(y, uy, uz1)
        within = (y > max(ly[0], uy[0])) & (y < min(ly[-1], uy[-1]))
        ball = within & (z >= lower) & (z <= upper1)
        lid = within & (z > upper1) & (z < upper0 + LID_FOLD_M)
        # the skin's place in the photo: the lashes' line keeps its width at the lid's edge, the
        # skin above it stretches up to the fold (as _close_gap moves the vertices)
        source = z.copy()
        above, travel = (z - upper1)[lid], (upper0 - upper1)[lid]
        skin = LID_FOLD_M - LASH_M
        source[lid] = upper0[lid] + np.where(above < LASH_M, above, LASH_M + (above - LASH_M) * skin / (skin + travel))
        colour = self._photo_at(y, source)
        if ball.any():
            props = self.eyes[eye]
            r = self.renderer.eyeball_radius
            centre = props["centre"] @ self.to_face + self.to_face_offset + r * turn[1:, 0]
            # a point of the turned iris back to its place on the photo's iris (orthographic)
            rim = (at[ball] - centre) @ np.linalg.inv(turn[1:, 1:]).T
            q_iris = props["centre"] + rim @ self.to_photo
            off_centre = np.linalg.norm(q_iris - props["centre"], axis=1)
            alpha = np.clip(props["radius"] + 0.5 - off_centre, 0, 1)[:, None]
            q = (at[ball] - self.to_face_offset) @ self.to_photo
            colour[ball] = (self._sample(self.sclera_layer, q) * (1 - alpha)
                            + self._sample(self.iris_layer, q_iris) * alpha)
        return colour

    def _mouth(self, at: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """Around the mouth: the upper lip and the upper teeth stay; the lower lip moves with its
        inner edge (`moved`), dark inside between them when it opens, over the teeth when it
        closes, with a shaded line where the lips meet."""
        y, z = at[:, 0], at[:, 1]
        uy, uz = self._contour(UPPER_LIP_INNER)
        ly, lz0 = self._contour(LOWER_LIP_INNER)
        _, lz1 = self._contour(LOWER_LIP_INNER, moved)
        upper, lower0, lower1 = np.interp(y, uy, uz), np.interp(y, ly, lz0), np.interp(y, ly, lz1)
        within = (y > ly[0]) & (y < ly[-1])
        on_lower = z <= lower1
        source = np.where(on_lower, z + (lower0 - lower1), z)
        colour = self._photo_at(y, source)
        colour[~on_lower & (z < lower0) & within] = MOUTH_COLOUR
        closed = np.clip((lower1 - lower0) / np.maximum(upper - lower0, 1e-6), 0.0, 1.0)
        seam = within & (closed > 0) & (np.abs(z - lower1) < LIP_SEAM_M)
        shade = 1.0 - 0.6 * closed[seam] * (1.0 - np.abs(z - lower1)[seam] / LIP_SEAM_M)
        colour[seam] *= shade[:, None]
        return colour


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
