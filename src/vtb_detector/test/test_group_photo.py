"""Several faces at once: insightface's group photo t1.jpg (1280x886, six people, faces about
100 px wide), in one pass of the full-range model and in tiles with the short-range model."""
import numpy as np
import pytest

from vtb_detector.blazeface import BlazeFaceDetector, Detection
from vtb_detector.tiling import detect_multiscale, detect_tiled, merge_detections, tile_windows
from vtb_eval.sample_images import fetch_samples, load_sample_rgb, samples_fetched

# The six faces [x, y, w, h], measured with the full-range model and checked by eye on the
# image with the boxes drawn: each box holds one face from brow to chin, left to right the
# woman with long hair and cards, the dark-haired woman standing, the man in the grey-green
# shirt, the man in the red shirt, the tall man at the back, the blonde woman on the right.
FACES = np.array([[52, 275, 117, 117], [266, 166, 107, 107], [455, 286, 113, 113],
                  [733, 364, 95, 95], [867, 70, 136, 136], [1127, 294, 96, 96]], np.float64)
CENTRES = FACES[:, :2] + FACES[:, 2:] / 2


@pytest.fixture(scope="module")
def group_rgb():
    if not samples_fetched():
        fetch_samples(echo=lambda m: None)  # pip's cache makes this quick; `./vtb models fetch` does it too
    return load_sample_rgb("group_t1")


def assert_six_faces(found, tolerance=15.0, max_side=140):
    centres = np.array([d.center for d in found])
    assert len(found) == 6, f"{len(found)} faces: {[d.box.round().tolist() for d in found]}"
    # one-to-one: every measured face has exactly one detection near it
    dist = np.linalg.norm(centres[:, None] - CENTRES[None], axis=-1)
    assert np.all(dist.min(0) < tolerance), f"centre errors {dist.min(0).round(1)}"
    assert sorted(dist.argmin(0).tolist()) == list(range(6)), "each face found once"
    for d in found:
        assert 85 <= d.box[2] <= max_side and 85 <= d.box[3] <= max_side, d.box


def test_group_photo_is_the_expected_image(group_rgb):
    assert group_rgb.shape == (886, 1280, 3)


def test_full_range_finds_all_six_faces_in_one_pass(group_rgb):
    found = BlazeFaceDetector("full", score_threshold=0.5).detect(group_rgb)
    assert_six_faces(found)
    for d in found:
        assert 95 <= d.box[2] <= 140, d.box
        r_eye, l_eye, nose = d.keypoints[:3]
        assert d.box[0] < nose[0] < d.box[0] + d.box[2] and d.box[1] < nose[1] < d.box[1] + d.box[3]
    # no duplicates: the boxes do not overlap one another
    boxes = np.array([d.box for d in found])
    for i in range(6):
        for j in range(i + 1, 6):
            assert _iou(boxes[i], boxes[j]) == 0.0


def test_short_range_alone_misses_faces_that_tiling_finds(group_rgb):
    """The short-range model letterboxes the whole photo into 128x128 (faces ~10 px): it finds
    almost nothing there. On 3x2 overlapping tiles (~490 px each, faces ~25 px) it finds all six.
    Its boxes sit differently on the two men whose heads are turned (the box centre moves
    towards the far ear by 20-30 px), hence the wider centre tolerance."""
    short = BlazeFaceDetector("short")
    assert len(short.detect(group_rgb)) <= 1
    found = detect_tiled(short, group_rgb, tiles=(3, 2), overlap=0.25)
    assert_six_faces(found, tolerance=40.0)
    assert min(d.score for d in found) > 0.8


def test_full_range_on_tiles_finds_all_six_with_margin(group_rgb):
    """Where one pass is not enough (the weakest face scores 0.55 in one pass, just above 0.5),
    2x2 tiles give the full-range model about twice the pixels per face: all six above 0.6."""
    found = detect_tiled(BlazeFaceDetector("full", score_threshold=0.5), group_rgb, tiles=(2, 2), overlap=0.25)
    assert_six_faces(found)
    assert min(d.score for d in found) > 0.6


def test_tile_windows_cover_the_image_with_the_overlap():
    windows = tile_windows(886, 1280, tiles=(3, 2), overlap=0.25)
    assert len(windows) == 6
    xs = sorted({(x0, x1) for x0, _, x1, _ in windows})
    ys = sorted({(y0, y1) for _, y0, _, y1 in windows})
    assert xs[0][0] == 0 and xs[-1][1] == 1280 and ys[0][0] == 0 and ys[-1][1] == 886
    for (a0, a1), (b0, b1) in zip(xs, xs[1:]):
        assert (a1 - b0) == pytest.approx(0.25 * (a1 - a0), abs=1.5)
    for (a0, a1), (b0, b1) in zip(ys, ys[1:]):
        assert (a1 - b0) == pytest.approx(0.25 * (a1 - a0), abs=1.5)
    assert tile_windows(100, 200, (1, 1), 0.3) == [(0, 0, 200, 100)]
    with pytest.raises(ValueError):
        tile_windows(100, 100, (2, 2), 1.0)


def _det(box, score):
    return Detection(box=np.array(box, np.float32), score=score, keypoints=np.zeros((6, 2), np.float32))


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_merge_drops_overlaps_and_partial_faces_from_tile_edges():
    whole = _det([100, 100, 100, 100], 0.9)
    shifted = _det([110, 100, 100, 100], 0.8)        # IoU 0.82 with whole
    partial = _det([150, 100, 50, 100], 0.85)        # right half, cut by a tile edge: IoU 0.5, all inside
    apart = _det([400, 100, 100, 100], 0.7)
    merged = merge_detections([apart, partial, shifted, whole], iou_threshold=0.6, containment=0.7)
    assert [id(d) for d in merged] == [id(whole), id(apart)]
    # without the containment rule the half face would survive an IoU-only suppression at 0.6
    merged = merge_detections([whole, partial], iou_threshold=0.6, containment=1.0)
    assert [id(d) for d in merged] == [id(whole), id(partial)]


def test_tiled_detection_maps_tile_boxes_to_image_pixels(group_rgb):
    """A face inside one tile is reported where the whole-image detector sees it (a mapping
    error would be off by a tile offset, 400+ px; the detector's own jitter between a tile and
    the whole image is up to ~20 px, more on the ears)."""
    full = BlazeFaceDetector("full", score_threshold=0.5)
    whole = full.detect(group_rgb)
    tiled = detect_tiled(full, group_rgb, tiles=(2, 2), overlap=0.35, include_full=False)
    assert_six_faces(tiled)
    for d in whole:
        nearest = min(tiled, key=lambda t: np.linalg.norm(t.center - d.center))
        assert np.linalg.norm(nearest.center - d.center) < 15
        assert np.abs(nearest.keypoints - d.keypoints).max() < 0.3 * d.box[2]


def test_multiscale_merges_what_each_scale_finds():
    class Fixed:
        def __init__(self, found):
            self.found = found

        def detect(self, rgb):
            return self.found

    a, a_again, b = _det([10, 10, 50, 50], 0.9), _det([12, 11, 50, 50], 0.95), _det([200, 10, 20, 20], 0.6)
    detectors = {1.0: Fixed([a]), 2.0: Fixed([a_again, b])}
    merged = detect_multiscale(detectors.__getitem__, np.zeros((8, 8, 3), np.uint8), scales=(1.0, 2.0))
    assert [id(d) for d in merged] == [id(a_again), id(b)]


def test_trained_retinaface_finds_the_six_faces_with_landmarks(group_rgb):
    from vtb_detector.anchor_detector import retinaface_detector
    found = retinaface_detector().detect(group_rgb)
    # RetinaFace's boxes reach higher and lower than BlazeFace's (FACES): centres up to 25 px off
    assert_six_faces(found, tolerance=25.0, max_side=180)
    for d in found:
        x, y, w, h = d.box
        k = d.keypoints
        assert k.shape == (5, 2)
        assert np.all((k >= [x, y]) & (k <= [x + w, y + h])), "landmarks inside the face box"
        assert k[0, 0] < k[1, 0] and k[2, 1] > k[:2, 1].max() and k[3:, 1].min() > k[2, 1], \
            "eyes (image-left first), then the nose below, the mouth corners below it"


def test_retinaface_in_the_pipeline_seeds_the_landmarks(group_rgb):
    from vtb_detector.pipeline import FacePipeline
    faces = FacePipeline(detector="retinaface", max_faces=10).process_still(group_rgb)
    # their boxes are the landmarks' (chin to forehead): centres up to 30 px from BlazeFace's (the
    # Face Landmarker's box of the top face sits 9 px right of the mesh's: 28 px off, the mesh's 20)
    assert_six_faces([Detection(f.box, f.score, f.keypoints) for f in faces], tolerance=30.0, max_side=180)
    assert all(f.landmarks.shape == (478, 3) and f.presence > 0.5 for f in faces)


def test_cutting_the_small_face_level_out_of_the_network_keeps_these_faces(group_rgb):
    """drop_levels=(8,) cuts the stride-8 heads out of the network itself (the seed's
    'fewer levels for middle-close faces'): the ~100 px faces are found by strides 16 and 32
    alike, with the same boxes; a smaller graph, not only fewer anchors decoded."""
    import onnx
    from vtb_detector.anchor_detector import AnchorDetectorConfig, retinaface_detector, without_levels
    from vtb_detector.models import retinaface_path
    full = retinaface_detector(scale=0.5)
    cut = retinaface_detector(scale=0.5, drop_levels=(8,))
    assert cut.config.strides == (16, 32) and cut.config.min_sizes == ((64, 128), (256, 512))
    a, b = full.detect(group_rgb), cut.detect(group_rgb)
    assert_six_faces(b, tolerance=25.0, max_side=180)
    for d in b:
        best = min(a, key=lambda e: np.abs(e.box - d.box).max())
        np.testing.assert_allclose(best.box, d.box, atol=0.5)
    whole = onnx.load(str(retinaface_path()))
    pruned, _ = without_levels(whole, AnchorDetectorConfig(), (8,))
    assert len(pruned.graph.node) < len(whole.graph.node) - 10
    assert len(onnx.load(str(retinaface_path())).graph.node) == len(whole.graph.node), "the input model untouched"
    with pytest.raises(ValueError, match="drop some but not all"):
        without_levels(whole, AnchorDetectorConfig(), (8, 16, 32))
