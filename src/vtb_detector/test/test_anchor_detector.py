"""The RetinaFace / SCRFD-style decoder on networks whose outputs we planted: every face put in
must come back out (box, score, landmarks) in the right pixels, and no other."""
import json

import numpy as np
import pytest

from vtb_detector import anchor_detector
from vtb_detector.anchor_detector import AnchorDetector, AnchorDetectorConfig, make_plan, nms
from vtb_eval.detector_bench import naive_detect, naive_prior_box
from vtb_eval.synthetic_models import PlantedFace, planted_model, retinaface_mobilenet_model, save

H, W = 320, 480  # network input of the planted models: 40x60, 20x30 and 10x15 grids


def landmarks_in(box):
    """Five points placed in a box the way a face's eyes, nose and mouth corners sit."""
    x0, y0, x1, y1 = box
    rel = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    return np.array([x0, y0]) + rel * np.array([x1 - x0, y1 - y0])


def faces():
    """One face per pyramid level and anchor size, sizes chosen to pick their level."""
    boxes = [((100.0, 60.0, 164.0, 124.0), 0.93),     # 64 px: stride 16, anchor 64
             ((300.5, 150.25, 332.0, 184.0), 0.81),   # ~33 px: stride 8, anchor 32
             ((190.0, 40.0, 446.0, 300.0), 0.66),     # ~258 px: stride 32, anchor 256
             ((20.0, 250.0, 37.0, 266.0), 0.55),      # ~16 px: stride 8, anchor 16
             ((330.0, 20.0, 452.0, 150.0), 0.74)]     # ~126 px: stride 16, anchor 128
    return [PlantedFace(b, s, landmarks_in(b)) for b, s in boxes]


def write(tmp_path, model, name="planted.onnx"):
    return save(model, tmp_path / name)


def assert_recovers(found, planted, factor=(1.0, 1.0), atol=2e-3):
    """Each planted face (network pixels) comes back once, in image pixels (/ factor)."""
    assert len(found) == len(planted), [d.score for d in found]
    f = np.array(factor)
    for face in planted:
        x0, y0, x1, y1 = face.box
        want = np.array([x0 / f[0], y0 / f[1], (x1 - x0) / f[0], (y1 - y0) / f[1]])
        match = [d for d in found if abs(d.score - face.score) < 1e-5]
        assert len(match) == 1, f"score {face.score}: {[d.score for d in found]}"
        d = match[0]
        np.testing.assert_allclose(d.box, want, atol=atol)
        np.testing.assert_allclose(d.keypoints, face.landmarks / f, atol=atol)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True), "best first"


@pytest.mark.parametrize("activation", ["none", "softmax"])
def test_retinaface_layout_recovers_planted_faces(tmp_path, activation):
    config = AnchorDetectorConfig(score_activation=activation)
    planted = faces()
    path = write(tmp_path, planted_model(config, planted, H, W))
    found = AnchorDetector(path, config).detect(np.zeros((H, W, 3), np.uint8))
    assert_recovers(found, planted)
    # the faces went to the levels their sizes call for (the test's premise)
    assert [f.placed["stride"] for f in planted] == [16, 8, 32, 8, 16]
    assert [f.placed["anchor"] for f in planted] == [0, 1, 0, 0, 1]


@pytest.mark.parametrize("activation,by_name", [("none", False), ("sigmoid", True)])
def test_scrfd_layout_recovers_planted_faces(tmp_path, activation, by_name):
    base = AnchorDetectorConfig.from_dict({"preset": "scrfd", "score_activation": activation})
    planted = faces()
    model = planted_model(base, planted, H, W)
    config = base
    if by_name:
        # outputs named, in an order other than the model's
        config = AnchorDetectorConfig.from_dict({
            "preset": "scrfd", "score_activation": activation,
            "outputs": {"landmarks": ["kps_8", "kps_16", "kps_32"], "boxes": ["bbox_8", "bbox_16", "bbox_32"],
                        "scores": ["score_8", "score_16", "score_32"]}})
    found = AnchorDetector(write(tmp_path, model), config).detect(np.zeros((H, W, 3), np.uint8))
    assert_recovers(found, planted)
    shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert shapes == {"score_8": [4800, 1], "score_16": [1200, 1], "score_32": [300, 1],
                      "bbox_8": [4800, 4], "bbox_16": [1200, 4], "bbox_32": [300, 4],
                      "kps_8": [4800, 10], "kps_16": [1200, 10], "kps_32": [300, 10]}


def test_fixed_input_fits_the_image_and_maps_back(tmp_path):
    config = AnchorDetectorConfig()
    planted = faces()
    det = AnchorDetector(write(tmp_path, planted_model(config, planted, H, W)), config)
    assert det.fixed_size == (H, W)
    # 160x300 fits into 320x480 at 1.6 (width-bound); content 256x480, padded below
    tensor, factors = det.preprocess(np.full((160, 300, 3), 7, np.uint8))
    assert tensor.shape == (1, 3, H, W) and factors == (1.6, 1.6)
    assert np.all(tensor[0, :, 256:] == (-np.array(config.mean, np.float32))[:, None, None]), "padding is black"
    assert_recovers(det.detect(np.zeros((160, 300, 3), np.uint8)), planted, factor=(1.6, 1.6))
    with pytest.raises(ValueError, match="dynamic input size"):
        AnchorDetector(None, config, session=det.session, scale=0.5)


@pytest.mark.parametrize("scale,image_hw", [(0.5, (640, 960)), (2.0, (160, 240)), (0.25, (1280, 1920)),
                                             (0.5, (641, 960))])  # 320.5 rows round to 320: fy != fx
def test_scale_resizes_before_the_network_and_maps_boxes_back(tmp_path, scale, image_hw):
    config = AnchorDetectorConfig()
    planted = faces()
    path = write(tmp_path, planted_model(config, planted, H, W, dynamic=True))
    det = AnchorDetector(path, config, scale=scale)
    assert det.fixed_size is None
    tensor, factors = det.preprocess(np.zeros((*image_hw, 3), np.uint8))
    assert tensor.shape[2:] == (H, W)
    found = det.detect(np.zeros((*image_hw, 3), np.uint8))
    # each axis maps back by its own factor: network size / image size
    assert_recovers(found, planted, factor=(W / image_hw[1], H / image_hw[0]), atol=2e-3 / scale)


def test_preprocessing_normalises_each_channel_in_the_models_order():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30   # R, G, B
    session = _FakeSession((1, 3, "h", "w"))
    bgr_model = AnchorDetector(None, AnchorDetectorConfig(mean=(1, 2, 3), std=(1, 2, 4)), session=session)
    t, _ = bgr_model.preprocess(rgb)
    np.testing.assert_allclose(t[0, :, 0, 0], [(30 - 1) / 1, (20 - 2) / 2, (10 - 3) / 4])
    rgb_model = AnchorDetector(None, AnchorDetectorConfig(mean=(1, 2, 3), std=(1, 2, 4), channel_order="rgb"),
                               session=session)
    t, _ = rgb_model.preprocess(rgb)
    np.testing.assert_allclose(t[0, :, 0, 0], [(10 - 1) / 1, (20 - 2) / 2, (30 - 3) / 4])


class _FakeSession:
    """Just enough of an InferenceSession for the preprocessing and the plans."""

    class _Arg:
        def __init__(self, name, shape=None):
            self.name, self.shape = name, shape

    def __init__(self, shape):
        self.shape = shape

    def get_inputs(self):
        return [self._Arg("input", list(self.shape))]

    def get_outputs(self):
        return [self._Arg(n) for n in ("loc", "conf", "landms")]


def test_retinaface_anchors_match_pytorch_retinaface_priorbox():
    config = AnchorDetectorConfig()
    for h, w in ((100, 150), (320, 480), (89, 128)):  # odd sizes: ceil'd grids
        plan = make_plan(config, h, w)
        ref = naive_prior_box(config.min_sizes, config.strides, h, w) * np.array([w, h, w, h])
        np.testing.assert_allclose(plan.anchors, ref, atol=1e-4)
        assert plan.total_full == len(ref)


def test_per_level_anchor_offsets_put_every_level_at_its_own_centres(tmp_path):
    """insightface-style anchors: a fixed 7.5 px offset + index * stride on every level, i.e. a
    different fraction of the stride per level. One shared offset would put stride 16 and 32
    boxes 3.5 and 11.5 px off; planted faces on all three levels must come back exactly."""
    offsets = tuple(7.5 / s for s in (8, 16, 32))
    config = AnchorDetectorConfig(anchor_offset=offsets)
    plan = make_plan(config, H, W)
    for lv in plan.levels:
        first_row = lv.anchors[: lv.grid[1] * 2 : 2, :2]   # grid row 0, one anchor per location
        np.testing.assert_allclose(first_row[:, 0], 7.5 + np.arange(lv.grid[1]) * lv.stride)
        np.testing.assert_allclose(first_row[:, 1], 7.5)
    planted = faces()
    found = AnchorDetector(write(tmp_path, planted_model(config, planted, H, W)), config).detect(
        np.zeros((H, W, 3), np.uint8))
    assert_recovers(found, planted)
    # read with one offset for all levels, the other levels' boxes move
    shared = AnchorDetector(write(tmp_path, planted_model(config, planted, H, W), "b.onnx"),
                            AnchorDetectorConfig(anchor_offset=offsets[0])).detect(np.zeros((H, W, 3), np.uint8))
    by_score = {round(d.score, 4): d for d in shared}
    for face in planted:
        moved = np.abs(by_score[round(face.score, 4)].box[:2] - np.array(face.box[:2])).max()
        assert (moved > 3) == (face.placed["stride"] != 8), (face.placed, moved)
    with pytest.raises(ValueError, match="anchor_offset"):
        AnchorDetectorConfig(anchor_offset=(0.5, 0.5))


def test_scrfd_anchors_are_insightface_centres():
    config = AnchorDetectorConfig.from_dict({"preset": "scrfd"})
    plan = make_plan(config, 64, 96)
    lv = plan.levels[0]  # stride 8: 8x12 grid, 2 anchors per location, centres at index * stride
    assert lv.anchors.shape == (8 * 12 * 2, 4)
    np.testing.assert_allclose(lv.anchors[:4, :2], [[0, 0], [0, 0], [8, 0], [8, 0]])
    np.testing.assert_allclose(lv.anchors[-1], [88, 56, 8, 8])
    # insightface's formula
    centres = np.stack(np.mgrid[:8, :12][::-1], axis=-1).reshape(-1, 2) * 8.0
    np.testing.assert_allclose(lv.anchors[:, :2], np.repeat(centres, 2, axis=0))


def test_drop_levels_removes_exactly_that_levels_anchors(tmp_path):
    config = AnchorDetectorConfig()
    full = make_plan(config, H, W)
    dropped = make_plan(AnchorDetectorConfig(drop_levels=(8,)), H, W)
    n8 = 40 * 60 * 2
    assert [lv.stride for lv in dropped.levels] == [16, 32]
    assert len(dropped.anchors) == len(full.anchors) - n8
    np.testing.assert_array_equal(dropped.anchors, full.anchors[n8:])
    assert dropped.total_full == full.total_full, "the network still emits every level"
    planted = faces()
    path = write(tmp_path, planted_model(config, planted, H, W))
    found = AnchorDetector(path, config, drop_levels=(8,)).detect(np.zeros((H, W, 3), np.uint8))
    assert_recovers(found, [f for f in planted if f.placed["stride"] != 8])
    # dropping a level of a per-level model: its outputs are not even fetched
    scrfd = AnchorDetectorConfig.from_dict({"preset": "scrfd", "drop_levels": [8, 16]})
    planted = faces()
    det = AnchorDetector(write(tmp_path, planted_model(scrfd, planted, H, W), "s.onnx"), scrfd)
    assert_recovers(det.detect(np.zeros((H, W, 3), np.uint8)), [f for f in planted if f.placed["stride"] == 32])
    assert det._fetch == ["score_32", "bbox_32", "kps_32"]


def test_anchor_stride_keeps_every_kth_location(tmp_path):
    config = AnchorDetectorConfig()
    thin = make_plan(AnchorDetectorConfig(anchor_stride=2), H, W)
    full = make_plan(config, H, W)
    for lv, lf in zip(thin.levels, full.levels):
        gh, gw = lf.grid
        assert len(lv.anchors) == -(-gh // 2) * -(-gw // 2) * 2
        # the kept rows index the full level's anchors, and those are at even grid cells
        np.testing.assert_array_equal(lv.anchors, lf.anchors[lv.rows])
        cells = lv.anchors[:, :2] / lv.stride - 0.5
        assert np.all(cells % 2 == 0)
    # a face on an even cell is found, one on an odd cell is not
    even_box, odd_box = (96.0, 64.0, 160.0, 128.0), (300.0, 200.0, 364.0, 264.0)
    even = PlantedFace(even_box, 0.9, landmarks_in(even_box), stride=16, cell=(4, 6), anchor=0)
    odd = PlantedFace(odd_box, 0.8, landmarks_in(odd_box), stride=16, cell=(13, 21), anchor=0)
    path = write(tmp_path, planted_model(config, [even, odd], H, W))
    assert_recovers(AnchorDetector(path, config).detect(np.zeros((H, W, 3), np.uint8)), [even, odd])
    assert_recovers(AnchorDetector(path, config, anchor_stride=2).detect(np.zeros((H, W, 3), np.uint8)), [even])
    # per level: thinning stride 8 only leaves the stride-16 face alone
    assert_recovers(AnchorDetector(path, config, anchor_stride={8: 3}).detect(np.zeros((H, W, 3), np.uint8)),
                    [even, odd])


def test_nms_suppresses_planted_duplicates(tmp_path):
    config = AnchorDetectorConfig()
    box = (100.0, 60.0, 164.0, 124.0)
    best = PlantedFace(box, 0.9, landmarks_in(box), stride=16, cell=(5, 8), anchor=0)
    # the same face seen from the neighbouring anchors, shifted a little, lower scores
    dups = [PlantedFace((100.0 + dx, 60.0 + dy, 164.0 + dx, 124.0 + dy), s, landmarks_in(box), stride=16,
                        cell=cell, anchor=0)
            for dx, dy, s, cell in ((3, 0, 0.8, (5, 9)), (0, -2, 0.7, (4, 8)), (4, 4, 0.6, (6, 9)))]
    other = PlantedFace((300.0, 150.0, 332.0, 182.0), 0.5, landmarks_in((300, 150, 332, 182)))
    path = write(tmp_path, planted_model(config, [best, *dups, other], H, W))
    found = AnchorDetector(path, config).detect(np.zeros((H, W, 3), np.uint8))
    assert_recovers(found, [best, other])
    # with a threshold above every duplicate's IoU they all stay
    found = AnchorDetector(path, config, nms_iou_threshold=0.95).detect(np.zeros((H, W, 3), np.uint8))
    assert len(found) == 5


def test_nms_by_iou():
    corners = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # [0]/[1]: IoU 50/150 = 1/3; [3] holds [0] (IoU 0.95) and beats it
    assert nms(corners, scores, 0.3).tolist() == [3, 2]
    assert nms(corners, scores, 0.34).tolist() == [3, 1, 2]
    assert nms(corners[:0], scores[:0], 0.3).tolist() == []


def test_no_landmarks_model(tmp_path):
    config = AnchorDetectorConfig(num_landmarks=0)
    planted = [PlantedFace((100.0, 60.0, 164.0, 124.0), 0.9)]
    path = write(tmp_path, planted_model(config, planted, H, W))
    (d,) = AnchorDetector(path, config).detect(np.zeros((H, W, 3), np.uint8))
    np.testing.assert_allclose(d.box, [100, 60, 64, 64], atol=2e-3)
    assert d.keypoints.shape == (0, 2)


def test_anchor_plans_are_cached_per_input_size(tmp_path, monkeypatch):
    calls = []
    real = anchor_detector.make_plan
    monkeypatch.setattr(anchor_detector, "make_plan", lambda *a: calls.append(a[1:]) or real(*a))
    path = write(tmp_path, retinaface_mobilenet_model(seed=1), "rf.onnx")
    det = AnchorDetector(path)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (96, 128, 3), np.uint8), rng.integers(0, 255, (96, 128, 3), np.uint8)
    det.detect(a)
    plan = det._plans[(96, 128)]
    det.detect(b)
    assert calls == [(96, 128)] and det._plans[(96, 128)] is plan, "same size: the plan is reused"
    det.detect(rng.integers(0, 255, (64, 80, 3), np.uint8))
    assert calls == [(96, 128), (64, 80)] and list(det._plans) == [(96, 128), (64, 80)]
    det.detect(a)
    assert len(calls) == 2


def test_fast_path_equals_the_naive_reference_on_a_real_network(tmp_path, astronaut_rgb):
    """The random-weight RetinaFace: conv layers, FPN, SSH, heads. At scale 1 both paths feed
    the network the same tensor, so they must agree to float precision."""
    path = write(tmp_path, retinaface_mobilenet_model(seed=0), "rf.onnx")
    config = AnchorDetectorConfig()
    det = AnchorDetector(path, config)
    fast = det.detect(astronaut_rgb)
    naive = naive_detect(det.session, astronaut_rgb, config, 1.0)
    assert len(fast) == len(naive) > 3
    for f, n in zip(fast, naive):
        assert f.score == pytest.approx(n.score, abs=1e-6)
        np.testing.assert_allclose(f.box, n.box, atol=1e-3)
        np.testing.assert_allclose(f.keypoints, n.keypoints, atol=1e-3)


def test_wrong_anchor_configuration_is_reported(tmp_path):
    planted = faces()
    path = write(tmp_path, planted_model(AnchorDetectorConfig(), planted, H, W))
    wrong = AnchorDetectorConfig(min_sizes=((16, 32, 48), (64, 128), (256, 512)))
    with pytest.raises(ValueError, match="anchors"):
        AnchorDetector(path, wrong).detect(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="no output named 'bogus'"):
        AnchorDetector(path, AnchorDetectorConfig(outputs={"boxes": "bogus", "scores": 1, "landmarks": 2}))


def test_config_from_dict_and_yaml(tmp_path):
    text = """
preset: scrfd
strides: [8, 16, 32]
score_threshold: 0.45
drop_levels: [8]
anchor_stride: {16: 2}
mean: [127.5, 127.5, 127.5]
"""
    config = AnchorDetectorConfig.from_yaml(text)
    assert config.box_encoding == "distance" and config.layout == "per_level"   # from the preset
    assert config.score_threshold == 0.45 and config.drop_levels == (8,)        # overridden
    assert config.thinning(16) == 2 and config.thinning(32) == 1
    assert config.strides == (8, 16, 32) and isinstance(config.mean, tuple)
    (tmp_path / "det.yaml").write_text(text)
    assert AnchorDetectorConfig.from_yaml(tmp_path / "det.yaml") == config
    assert AnchorDetectorConfig.from_yaml(str(tmp_path / "det.yaml")) == config
    # round trip through JSON (plain types only)
    assert AnchorDetectorConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    retina = AnchorDetectorConfig.from_dict({"min_sizes": [[10, 20], [32, 64], [128, 256]], "variances": [0.1, 0.2]})
    assert retina.min_sizes == ((10, 20), (32, 64), (128, 256))
    with pytest.raises(ValueError, match="unknown detector configuration keys"):
        AnchorDetectorConfig.from_dict({"stride": [8]})
    with pytest.raises(ValueError, match="score_activation"):
        AnchorDetectorConfig.from_dict({"score_activation": "tanh"})
    with pytest.raises(ValueError, match="drop_levels"):
        AnchorDetectorConfig.from_dict({"drop_levels": [64]})
