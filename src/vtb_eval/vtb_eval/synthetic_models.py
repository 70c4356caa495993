"""Detector networks built here with onnx.helper, for tests and benchmarks (no weights to fetch).

- `planted_model`: outputs shaped exactly like a RetinaFace (concatenated) or SCRFD (per level)
  export for one input size, holding known faces encoded at chosen anchors; everything else is
  background. The outputs are constants plus 0 * mean(input), so the input really flows through
  ONNX Runtime. A decoder must give the planted boxes, scores and landmarks back.
- `retinaface_mobilenet_model`: Pytorch_Retinaface's mobilenet0.25 architecture (backbone, FPN,
  SSH, heads; batch norm folded into the convolutions) with random weights from a fixed seed:
  the real network's cost and output shapes, for timing pre- and post-processing around it.

The anchor arithmetic here is written out per face, independently of anchor_detector.py, so
the tests compare two implementations rather than one with itself. No rclpy here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
BACKGROUND_LOGIT = -12.0  # score about 6e-6


@dataclass
class PlantedFace:
    """A face in network-input pixels. `stride`/`cell`/`anchor` pick the anchor that carries it;
    left out, the level whose anchor size is nearest the face and the cell holding its centre."""
    box: tuple                      # x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None   # (5, 2)
    stride: int | None = None
    cell: tuple | None = None       # (row, col) in that level's grid
    anchor: int | None = None       # which of the anchors at that location
    placed: dict = field(default_factory=dict)  # filled in: stride, cell, anchor, row


def _grid(config, stride, height, width):
    rnd = math.ceil if config.grid_rounding == "ceil" else math.floor
    return rnd(height / stride), rnd(width / stride)


def _place(face: PlantedFace, config, height, width):
    """Choose the anchor for a face; returns (level, row in that level's output, anchor centre, unit)."""
    x0, y0, x1, y1 = face.box
    cx, cy, size = (x0 + x1) / 2, (y0 + y1) / 2, math.sqrt((x1 - x0) * (y1 - y0))
    if face.stride is not None:
        level = config.strides.index(face.stride)
    elif config.min_sizes is not None:
        level = min(range(len(config.strides)),
                    key=lambda L: min(abs(math.log(size / s)) for s in config.min_sizes[L]))
    else:
        level = min(range(len(config.strides)), key=lambda L: abs(math.log(size / (4 * config.strides[L]))))
    stride = config.strides[level]
    gh, gw = _grid(config, stride, height, width)
    if face.cell is not None:
        i, j = face.cell
    else:
        i = min(gh - 1, max(0, round(cy / stride - config.offset_at(level))))
        j = min(gw - 1, max(0, round(cx / stride - config.offset_at(level))))
    n_anchors = config.anchors_at(level)
    if face.anchor is not None:
        a = face.anchor
    elif config.min_sizes is not None:
        a = min(range(n_anchors), key=lambda k: abs(math.log(size / config.min_sizes[level][k])))
    else:
        a = 0
    row = (i * gw + j) * n_anchors + a
    centre = np.array([(j + config.offset_at(level)) * stride, (i + config.offset_at(level)) * stride])
    unit = config.min_sizes[level][a] if config.box_encoding == "center" else stride
    face.placed = dict(stride=stride, cell=(i, j), anchor=a, row=row)
    return level, row, centre, float(unit)


def encode_face(face: PlantedFace, centre, unit, config):
    """The regression values that decode to this face at this anchor."""
    x0, y0, x1, y1 = face.box
    if config.box_encoding == "center":
        v0, v1 = config.variances
        c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        loc = np.concatenate([(c - centre) / (v0 * unit), np.log(np.array([x1 - x0, y1 - y0]) / unit) / v1])
        gain = v0 * unit
    else:
        loc = np.array([centre[0] - x0, centre[1] - y0, x1 - centre[0], y1 - centre[1]]) / unit
        gain = unit
    lms = np.zeros(2 * config.num_landmarks)
    if config.num_landmarks and face.landmarks is not None:
        lms = ((np.asarray(face.landmarks, np.float64) - centre) / gain).reshape(-1)
    return loc, lms


def _score_row(score, config, width):
    """One anchor's score output for a face of this probability (None: background)."""
    act = config.score_activation
    if score is None:
        fg = 0.0 if act == "none" else BACKGROUND_LOGIT
    else:
        fg = score if act == "none" else math.log(score / (1 - score))
    if width == 1:
        return [fg]
    # two classes: softmax([0, l]) gives sigmoid(l) for the face class
    return [1.0 - fg, fg] if act == "none" else [0.0, fg]


def planted_outputs(config, faces, height, width, score_width=None):
    """{role: [array per level]} of the outputs a network would give for these faces."""
    # RetinaFace: two classes; SCRFD (per level) and sigmoid models: one score
    score_width = score_width or (1 if config.score_activation == "sigmoid" or config.layout == "per_level" else 2)
    levels = []
    for L, stride in enumerate(config.strides):
        gh, gw = _grid(config, stride, height, width)
        n = gh * gw * config.anchors_at(L)
        levels.append({
            "boxes": np.zeros((n, 4), np.float64),
            "scores": np.tile(np.array(_score_row(None, config, score_width)), (n, 1)),
            "landmarks": np.zeros((n, 2 * config.num_landmarks), np.float64),
        })
    for face in faces:
        L, row, centre, unit = _place(face, config, height, width)
        loc, lms = encode_face(face, centre, unit, config)
        levels[L]["boxes"][row] = loc
        levels[L]["landmarks"][row] = lms
        levels[L]["scores"][row] = _score_row(face.score, config, score_width)
    return levels


def _constant_outputs_graph(name, outputs: list, height, width, dynamic):
    """A graph whose outputs are constants + 0 * ReduceMean(input)."""
    dims = ["height", "width"] if dynamic else [height, width]
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, *dims])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["input_mean"], keepdims=0),
        helper.make_node("Mul", ["input_mean", "zero"], ["nothing"]),
    ]
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outs = []
    for out_name, array in outputs:
        array = np.asarray(array, np.float32)
        inits.append(numpy_helper.from_array(array, f"{out_name}_value"))
        nodes.append(helper.make_node("Add", [f"{out_name}_value", "nothing"], [out_name]))
        outs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(array.shape)))
    graph = helper.make_graph(nodes, name, [inp], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def planted_model(config, faces, height: int, width: int, dynamic: bool = False,
                  score_width: int | None = None) -> onnx.ModelProto:
    """A network whose outputs carry `faces` (PlantedFace, network pixels) for a height x width
    input, laid out as `config` says: concatenated (RetinaFace: loc (1, N, 4), conf (1, N, 2),
    landms (1, N, 10)) or per level (SCRFD: score_<s> (N_s, 1) for every stride, then bbox_<s>,
    then kps_<s>). `dynamic` declares the input's height and width symbolic (the outputs still
    fit only height x width)."""
    levels = planted_outputs(config, faces, height, width, score_width)
    K = config.num_landmarks
    if config.layout == "concatenated":
        outputs = [("loc", np.concatenate([lv["boxes"] for lv in levels])[None]),
                   ("conf", np.concatenate([lv["scores"] for lv in levels])[None])]
        if K:
            outputs.append(("landms", np.concatenate([lv["landmarks"] for lv in levels])[None]))
    else:
        outputs = [(f"score_{s}", lv["scores"]) for s, lv in zip(config.strides, levels)]
        outputs += [(f"bbox_{s}", lv["boxes"]) for s, lv in zip(config.strides, levels)]
        if K:
            outputs += [(f"kps_{s}", lv["landmarks"]) for s, lv in zip(config.strides, levels)]
    return _constant_outputs_graph("planted_faces", outputs, height, width, dynamic)


# -- RetinaFace mobilenet0.25 with random weights ------------------------------------------------

class _GraphBuilder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes, self.inits = [], []
        self.n = 0
        self.params = 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, array, prefix="w", dtype=np.float32):
        name = self.name(prefix)
        array = np.asarray(array, dtype)
        if dtype == np.float32:
            self.params += array.size
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def conv(self, x, cin, cout, k=3, stride=1, groups=1, act="leaky", bias=None, gain=1.0):
        """Convolution with batch norm folded in (a bias), then LeakyReLU(0.1), ReLU or nothing.
        He-initialised, so activations keep their scale through the layers."""
        fan_in = cin // groups * k * k
        w = self.rng.normal(0, gain * math.sqrt(2.0 / fan_in), (cout, cin // groups, k, k))
        b = self.rng.normal(0, 0.05, cout) if bias is None else bias
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, self.const(w), self.const(b, "b")], [y],
                                           kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        if act is None:
            return y
        z = self.name(act)
        if act == "leaky":
            self.nodes.append(helper.make_node("LeakyRelu", [y], [z], alpha=0.1))
        else:
            self.nodes.append(helper.make_node("Relu", [y], [z]))
        return z

    def conv_dw(self, x, cin, cout, stride):
        return self.conv(self.conv(x, cin, cin, 3, stride, groups=cin), cin, cout, 1)

    def op(self, op_type, inputs, **attrs):
        y = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [y], **attrs))
        return y


# the class head's bias: background by this many logits, so that a random network leaves a
# realistic few dozen to few hundred anchors above a 0.5 threshold on a photo (checked on t1.jpg)
CONF_BIAS = 3.2
CONF_GAIN = 5.0


def retinaface_mobilenet_model(seed: int = 0, conf_bias: float = CONF_BIAS,
                               conf_gain: float = CONF_GAIN) -> onnx.ModelProto:
    """Pytorch_Retinaface's mobilenet0.25 RetinaFace (about 0.43 M parameters), as exported with
    its test phase (softmax inside): input (1, 3, H, W) BGR minus (104, 117, 123), any H and W;
    outputs loc (1, N, 4), conf (1, N, 2), landms (1, N, 10) over strides 8, 16, 32 with 2
    anchors per location. Random weights from `seed`."""
    g = _GraphBuilder(np.random.default_rng(seed))
    x = "input"
    # MobileNetV1 x0.25: stage1 ends at stride 8, stage2 at 16, stage3 at 32
    # the input is pixels minus the mean (about +-100): bring the features to about unit scale
    x = g.conv(x, 3, 8, 3, 2, gain=1 / 64)
    for cin, cout, s in ((8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)):
        x = g.conv_dw(x, cin, cout, s)
    c3 = x
    for cin, cout, s in ((64, 128, 2),) + ((128, 128, 1),) * 5:
        x = g.conv_dw(x, cin, cout, s)
    c4 = x
    for cin, cout, s in ((128, 256, 2), (256, 256, 1)):
        x = g.conv_dw(x, cin, cout, s)
    c5 = x
    # FPN, 64 channels, nearest upsampling to the finer map's size
    p3, p4, p5 = g.conv(c3, 64, 64, 1), g.conv(c4, 128, 64, 1), g.conv(c5, 256, 64, 1)

    def up_add(coarse, fine):
        size = g.op("Shape", [fine])
        up = g.op("Resize", [coarse, "", "", size], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return g.conv(g.op("Add", [fine, up]), 64, 64, 3)

    p4 = up_add(p5, p4)
    p3 = up_add(p4, p3)

    def ssh(x):
        c3x3 = g.conv(x, 64, 32, 3, act=None)
        c5 = g.conv(x, 64, 16, 3)
        c5x5 = g.conv(c5, 16, 16, 3, act=None)
        c7x7 = g.conv(g.conv(c5, 16, 16, 3), 16, 16, 3, act=None)
        return g.op("Relu", [g.op("Concat", [c3x3, c5x5, c7x7], axis=1)])

    heads = {"loc": 4, "conf": 2, "landms": 10}
    per_head = {h: [] for h in heads}
    shape = {w: g.const([1, -1, w], "shape", np.int64) for w in set(heads.values())}
    for feat in (ssh(p3), ssh(p4), ssh(p5)):
        for head, width in heads.items():
            bias = np.tile([conf_bias, -conf_bias], 2) if head == "conf" else None
            y = g.conv(feat, 64, 2 * width, 1, act=None, bias=bias, gain=conf_gain if head == "conf" else 1.0)
            y = g.op("Transpose", [y], perm=[0, 2, 3, 1])
            per_head[head].append(g.op("Reshape", [y, shape[width]]))
    outputs = []
    for head, width in heads.items():
        y = g.op("Concat", per_head[head], axis=1)
        if head == "conf":
            y = g.op("Softmax", [y], axis=-1)
        g.nodes.append(helper.make_node("Identity", [y], [head]))
        outputs.append(helper.make_tensor_value_info(head, TensorProto.FLOAT, [1, "anchors", width]))
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])
    graph = helper.make_graph(g.nodes, "retinaface_mobilenet0.25_random", [inp], outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.doc_string = f"RetinaFace mobilenet0.25 architecture, random weights (seed {seed}), {g.params} parameters"
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)
