"""vtb_detector node: camera images in, faces with stable ids and 478 landmarks out.

A thin adapter around the rclpy-free FacePipeline. Topics (relative, so a namespace or
remapping places them):
  image             sensor_msgs/Image, sensor-data QoS           (input_compressed: false)
  <image>/compressed sensor_msgs/CompressedImage, sensor-data QoS (input_compressed: true):
                    image_transport's name, next to wherever `image` is remapped
  faces             vtb_msgs/FaceArray, stamped with the image's header
  debug_image       sensor_msgs/Image with boxes, ids and landmarks (publish_debug_image);
                    reliable, depth 1: RViz's and rqt_image_view's default (reliable)
                    subscriptions get it, and so do best-effort ones
  /diagnostics      diagnostic_msgs/DiagnosticArray, once a second (vtb_common.diagnostics:
                    WARN when images stop or go unanswered, ERROR when unanswered for 5 s)

Images are taken by the subscription callback into a one-frame slot and processed by a worker
thread: when processing falls behind, the newest frame replaces the waiting one (counted as
dropped) instead of a queue building up.

detector_lifecycle_node is the same detector as a managed (rclpy.lifecycle) node, for a system
manager: `ros2 lifecycle set /vtb/vtb_detector configure` (models), `activate` (subscribe),
`deactivate`, `cleanup`, `shutdown`; the launch file starts it with use_lifecycle:=true.
"""
import sys
import threading
import time
from array import array
from collections import deque

import numpy as np
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from vtb_common.diagnostics import ERROR, OK, DiagnosticsPublisher, StageHealth
from vtb_common.node_main import run_node
from vtb_common.parameters import any_value, declare_parameters, in_range, one_of
from vtb_msgs.msg import Face, FaceArray

from .debug_draw import draw_faces
from .landmarks import DEFAULT_LANDMARK_MODEL, LANDMARK_MODELS
from .image_msg import DEFAULT_MAX_PIXELS, ImageError, compressed_to_rgb, image_to_rgb, rgb_to_image
from .pipeline import FacePipeline

# Best effort, shallow: a camera stream where the newest frame matters (REP-2003's sensor data).
IMAGE_QOS = qos_profile_sensor_data
# The debug image is for people: RViz's Image display and rqt_image_view subscribe reliable, which
# a best-effort publisher never serves; a reliable one serves both kinds. Depth 1: the newest.
DEBUG_IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

PARAMETERS = [
    ("model", "short", "face detector: BlazeFace 'short' (faces within about 2 m), 'full' (far and small faces, "
                       "groups; misses faces that fill the frame), 'auto' (both on each detection frame, about 3 ms), "
                       "or 'retinaface' (the trained RetinaFace mobilenet0.25 on ONNX Runtime; options below)"),
    ("detector_scale", 1.0, "retinaface: resize factor of the image before the network (0.4: 2.5x smaller, faster, "
                            "loses faces under about 40 px)"),
    ("drop_levels", "", "retinaface: comma list of pyramid strides to skip (8, 16, 32), e.g. '8' for middle-close "
                        "faces only"),
    ("anchor_stride", 1, "retinaface: keep every k-th anchor location per axis (thinning; 1 keeps all)"),
    ("score_threshold", -1.0, "minimum detection score, 0..1; negative uses the model's own (0.5)"),
    ("max_faces", 1, "most faces tracked at once"),
    ("redetect_every", 30, "run the detector every N frames while tracking, to find new faces (0: only when needed)"),
    ("presence_threshold", 0.2, "a face whose landmark presence score falls below this is lost (0.2: small, "
                                "blurred or partly hidden faces score 0.2-0.5 with their landmarks still on the face)"),
    ("keep_id_frames", 10, "a face found where one was lost within this many frames gets the lost face's id back"),
    ("redetect_threshold", 0.8, "a presence score below this makes the next frame run the detector"),
    ("landmark_model", DEFAULT_LANDMARK_MODEL,
     "'face_landmarker' (MediaPipe Face Landmarker's 478 points in one pass, the default: closest to "
     "labelled real faces) or 'face_mesh' (468-point mesh + iris model); see "
     "vtb_detector.landmarks.LANDMARK_MODELS"),
    ("mirror_landmarks", False, "also run each face crop mirrored and average the two landmark sets: steadier "
                                "points (talking-head clip: unfiltered pose jitter 0.50/0.36/0.25 against "
                                "0.76/0.53/0.32 deg) and closer to real faces, for a second landmark inference "
                                "per face (./vtb detect does it on its last pass)"),
    ("refine_iris", True, "face_mesh: run the iris model, 478 landmarks (MediaPipe layout) instead of 468"),
    ("backend", "auto", "inference backend: 'auto' (LiteRT on the CPU, ONNX Runtime otherwise), 'litert', 'onnxruntime'"),
    ("provider", "cpu", "ONNX Runtime execution provider: 'cpu', 'cuda' or 'tensorrt' (falls back to cpu)"),
    ("threads", 1, "CPU threads per frame (XNNPACK's; with face_mesh and 2 or more, the eyes run in parallel). 1: "
                   "in the whole graph a second inference thread takes the core the other nodes need (./vtb bench "
                   "cpu, 2 cores: latency p99 31 against 50-55 ms, a little less CPU)"),
    ("input_compressed", False, "subscribe to <image>/compressed (sensor_msgs/CompressedImage, image_transport's "
                                "name next to the image topic) instead of image"),
    ("publish_debug_image", False, "publish debug_image with boxes, ids and landmarks drawn"),
    ("max_pixels", DEFAULT_MAX_PIXELS, "largest image taken, in pixels (width x height; default four 4K frames): "
                                       "a larger one is skipped before it is decoded (a compressed image's size "
                                       "is read from its header: a 182 KB PNG can hold 8000x8000)"),
]


def retinaface_options(p: dict) -> dict:
    """RetinaFace's detector options from the node's parameters."""
    drop = [int(v) for v in str(p["drop_levels"]).replace(" ", "").split(",") if v]
    return {"scale": p["detector_scale"], "drop_levels": drop, "anchor_stride": p["anchor_stride"]}


# live: applied on set (the pipeline's thresholds at once; the models by building a new
# pipeline in the parameter callback, off the worker's hot path, swapped in between frames, a
# build that fails refused with its reason); read-only: the subscription's topic and type
PIPELINE_PARAMETERS = ("model", "detector_scale", "drop_levels", "anchor_stride", "score_threshold",
                       "landmark_model", "mirror_landmarks", "refine_iris", "backend", "provider", "threads")
# the pipeline's timings (FacePipeline.timings) summed for run_stats
PIPELINE_STAGES = ("detect", "crop", "landmarks", "iris", "total")
TRACKING_PARAMETERS = ("max_faces", "redetect_every", "presence_threshold", "keep_id_frames", "redetect_threshold")


def _drop_levels(v):
    try:
        levels = [int(x) for x in str(v).replace(" ", "").split(",") if x]
    except ValueError:
        return f"must be a comma list of 8, 16, 32, got {v!r}"
    return None if set(levels) <= {8, 16, 32} else f"must be a comma list of 8, 16, 32, got {v!r}"


LIVE = {
    "model": one_of("short", "full", "auto", "retinaface"),
    "detector_scale": in_range(0.0, 4.0, lo_open=True),
    "drop_levels": _drop_levels,
    "anchor_stride": in_range(1, 16),
    "score_threshold": in_range(hi=1.0),   # negative: the model's own
    "max_faces": in_range(1, 64),
    "redetect_every": in_range(0),
    "presence_threshold": in_range(0.0, 1.0),
    "keep_id_frames": in_range(0),
    "redetect_threshold": in_range(0.0, 1.0),
    "landmark_model": one_of(*LANDMARK_MODELS),
    "mirror_landmarks": any_value,
    "refine_iris": any_value,
    "backend": one_of("auto", "litert", "onnxruntime"),
    "provider": one_of("cpu", "cuda", "tensorrt"),
    "threads": in_range(1, 64),
    "publish_debug_image": any_value,
    "max_pixels": in_range(1),
}
READ_ONLY_REASONS = {"input_compressed": "chooses the input topic and type, set at start"}


def make_pipeline(p: dict, logger) -> FacePipeline:
    return FacePipeline(
        detector=p["model"], max_faces=p["max_faces"], redetect_every=p["redetect_every"],
        presence_threshold=p["presence_threshold"], redetect_threshold=p["redetect_threshold"],
        keep_id_frames=p["keep_id_frames"], landmark_model=p["landmark_model"],
        mirror_landmarks=p["mirror_landmarks"], detector_options=retinaface_options(p) if p["model"] == "retinaface" else None,
        refine_iris=p["refine_iris"], backend=p["backend"], provider=p["provider"], threads=p["threads"],
        score_threshold=p["score_threshold"] if p["score_threshold"] >= 0 else None, logger=logger)


def _scheme(pipeline) -> int:
    with_irises = pipeline.mesh.points == 478 or pipeline.iris is not None
    return Face.SCHEME_MEDIAPIPE_478 if with_irises else Face.SCHEME_MEDIAPIPE_468


class DetectorCore:
    """The detector's work, shared by the plain node and the lifecycle one (mixed into a Node or
    a LifecycleNode): parameters and /diagnostics at construction, then
      _load     the models and the publishers   (lifecycle: configure)
      _start    the subscription and the worker (activate)
      _stop     the same, stopped               (deactivate)
      _release  the models and the publishers   (cleanup)
    each safe to call when there is nothing to do."""

    def _declare(self):
        p = declare_parameters(self, PARAMETERS, LIVE, self._apply_parameters, READ_ONLY_REASONS)
        self.get_logger().info("parameters: " + ", ".join(f"{k}={v!r}" for k, v in p.items()))
        self.params = p
        self.pipeline, self.pub, self.debug_pub, self.sub, self._worker = None, None, None, None, None
        self._debug_lock = threading.Lock()   # the worker publishes, a parameter set destroys
        # the one-frame slot between the subscription and the worker: (message, monotonic arrival)
        self._slot, self._lock, self._ready = None, threading.Lock(), threading.Event()
        self._running = False
        self._direct = False   # take_images_directly(): images come from a source in this process
        self.counts = {"received": 0, "processed": 0, "dropped": 0, "rejected": 0}
        self._times = deque(maxlen=300)
        # where a frame's time goes (ms, summed over the run): image conversion and each model stage
        self.stage_ms = {k: 0.0 for k in ("image", *PIPELINE_STAGES)}
        # latency: arrival to publication (the slot's wait included)
        self.health = StageHealth("perception", latency_warn_s=0.15)
        self.lifecycle_state, self.lifecycle_error = None, None   # the managed node's, for /diagnostics
        self.diagnostics = DiagnosticsPublisher(self, [self.health], values=self._diagnostic_values,
                                                state=self._lifecycle_status)

    def _load(self):
        self.pipeline = make_pipeline(self.params, self.get_logger())
        self.scheme = _scheme(self.pipeline)
        if self.pub is None:
            self.pub = self.create_publisher(FaceArray, "faces", 10)
        with self._debug_lock:
            if self.params["publish_debug_image"] and self.debug_pub is None:
                self.debug_pub = self.create_publisher(Image, "debug_image", DEBUG_IMAGE_QOS)

    def _start(self):
        if self._worker is not None:
            return
        self._running = True
        self._worker = threading.Thread(target=self._work, name="vtb-detector", daemon=True)
        self._worker.start()
        if self._direct:
            return
        if self.params["input_compressed"]:
            # as image_transport names it: the image topic's own /compressed (image:=/cam/image_raw
            # gives /cam/image_raw/compressed; a remapping of `image` never reaches "image/compressed")
            self.sub = self.create_subscription(CompressedImage, self.resolve_topic_name("image") + "/compressed",
                                                self.on_image, IMAGE_QOS)
        else:
            self.sub = self.create_subscription(Image, "image", self.on_image, IMAGE_QOS)

    def take_images_directly(self) -> bool:
        """In one process with the image's source (`./vtb run`): the source hands each image to
        on_image itself, with no DDS copy of it, and the subscription goes (the source still
        publishes the topic while anything else subscribes). False if the node is not running
        (a lifecycle node not active): it keeps its subscription."""
        if self.sub is None:
            return False
        self._direct = True
        self.destroy_subscription(self.sub)
        self.sub = None
        return True

    def _stop(self):
        if self.sub is not None:
            self.destroy_subscription(self.sub)
            self.sub = None
        if self._worker is not None:
            self._running = False
            self._worker.join(timeout=2.0)
            self._worker = None
        with self._lock:
            self._slot = None

    def _release(self):
        self._stop()
        with self._debug_lock:
            for pub in (self.pub, self.debug_pub):
                if pub is not None:
                    self.destroy_publisher(pub)
            self.pub = self.debug_pub = None
        self.pipeline = None   # the models' memory goes with it

    def _apply_parameters(self, p: dict, changed: set):
        """A parameter set (executor thread): a new pipeline when a model option changed (built
        here, so a failure refuses the set; the worker picks it up at its next frame, tracking
        restarts), else the thresholds on the running one; the debug publisher made or removed.
        Before the models are loaded (an unconfigured lifecycle node) the values wait for _load."""
        if self.pipeline is None:
            return None
        if changed & set(PIPELINE_PARAMETERS):
            try:
                pipeline = make_pipeline(p, self.get_logger())
            except Exception as e:  # a model that cannot load, an option it refuses
                return f"pipeline not rebuilt, the old one keeps running: {e}"
            self.pipeline, self.scheme = pipeline, _scheme(pipeline)
        else:
            for name in changed & set(TRACKING_PARAMETERS):
                setattr(self.pipeline, name, p[name])
        if "publish_debug_image" in changed:
            with self._debug_lock:
                if p["publish_debug_image"] and self.debug_pub is None:
                    self.debug_pub = self.create_publisher(Image, "debug_image", DEBUG_IMAGE_QOS)
                elif not p["publish_debug_image"] and self.debug_pub is not None:
                    self.destroy_publisher(self.debug_pub)
                    self.debug_pub = None
        return None

    def on_image(self, msg):
        now = time.monotonic()
        self.health.note_input(now)
        with self._lock:
            if self._slot is not None:
                self.counts["dropped"] += 1
            self._slot = (msg, now)
            self.counts["received"] += 1
        self._ready.set()

    def _work(self):
        while self._running:
            if not self._ready.wait(0.1):
                continue
            with self._lock:
                slot, self._slot = self._slot, None
                self._ready.clear()
            if slot is not None:
                try:
                    self.process(*slot)
                except Exception as e:  # a frame must never take the node down
                    self.counts["rejected"] += 1
                    self.get_logger().error(f"frame failed: {e!r}", throttle_duration_sec=5.0)

    def process(self, msg, received=None):
        max_pixels = self.params["max_pixels"]
        t0 = time.perf_counter()
        try:
            # the size first: an image over max_pixels is refused before it is decoded
            rgb = compressed_to_rgb(msg, max_pixels) if isinstance(msg, CompressedImage) \
                else image_to_rgb(msg, max_pixels)
        except ImageError as e:
            self.counts["rejected"] += 1
            self.get_logger().warning(f"skipping image: {e}", throttle_duration_sec=5.0)
            return
        image_ms = 1e3 * (time.perf_counter() - t0)
        pipeline = self.pipeline   # a parameter set may swap in a new one between frames
        scheme = _scheme(pipeline)
        faces = pipeline.process(rgb)
        t = pipeline.timings
        self._times.append(t["total"])
        self.stage_ms["image"] += image_ms
        for k in PIPELINE_STAGES:
            self.stage_ms[k] += t.get(k, 0.0)
        out = FaceArray(header=msg.header, image_width=rgb.shape[1], image_height=rgb.shape[0])
        for f in faces:
            face = Face(id=f.id, score=float(f.score), landmark_scheme=scheme,
                        landmark_confidence=float(f.presence), tracked=bool(f.tracked))
            face.bbox.x, face.bbox.y, face.bbox.width, face.bbox.height = (float(v) for v in f.box)
            face.keypoints = _floats(f.keypoints)
            face.landmarks = _floats(f.landmarks[:, :2])
            face.landmarks_z = _floats(f.landmarks[:, 2])
            out.faces.append(face)
        self.pub.publish(out)
        self.counts["processed"] += 1
        self.health.note_output(None if received is None else time.monotonic() - received)
        with self._debug_lock:
            if self.debug_pub is not None and self.debug_pub.get_subscription_count() > 0:
                self.debug_pub.publish(rgb_to_image(Image, draw_faces(rgb, faces), msg.header))

    def _lifecycle_status(self):
        """What /diagnostics says of a managed node that is not active: its state, ERROR with the
        reason after a failed configure; None (the stage's own status) when active or unmanaged."""
        if self.lifecycle_state in (None, "active"):
            return None
        if self.lifecycle_error:
            return ERROR, f"{self.lifecycle_state}: configure failed: {self.lifecycle_error}"
        waiting = {"unconfigured": "waiting for configure", "inactive": "configured, waiting for activate"}
        return OK, f"{self.lifecycle_state}: {waiting.get(self.lifecycle_state, '')}".rstrip(": ")

    def run_stats(self) -> dict:
        """For `./vtb run --stats-json`: images received, processed, dropped (a newer one came
        while the worker was busy), rejected; and the mean ms a processed image spent in image
        conversion (message to RGB) and in each model stage (detect, crop, landmarks, iris; total:
        the pipeline)."""
        n = max(self.counts["processed"], 1)
        return {**self.counts, "ms_per_image": {k: round(v / n, 3) for k, v in self.stage_ms.items()}}

    def _diagnostic_values(self) -> dict:
        times = np.array(self._times) if self._times else np.zeros(1)
        pipeline = self.pipeline
        return {"processing_ms_median": f"{np.median(times):.2f}", "processing_ms_max": f"{times.max():.2f}",
                "faces_tracked": str(len(pipeline.tracks) if pipeline is not None else 0),
                **{k: str(v) for k, v in self.counts.items()}}


class DetectorNode(DetectorCore, Node):
    """The plain node: loaded, subscribed and working from construction."""

    def __init__(self, **kwargs):
        Node.__init__(self, "vtb_detector", **kwargs)
        self._declare()
        self._load()
        self._start()

    def destroy_node(self):
        self._stop()
        return super().destroy_node()


class LifecycleDetectorNode(DetectorCore, LifecycleNode):
    """The managed node (detector_lifecycle_node, use_lifecycle:=true): starts unconfigured;
    configure loads the models, activate subscribes and starts the worker, deactivate stops
    both, cleanup releases the models, shutdown (from any state) ends the process (exit 0)."""

    def __init__(self, **kwargs):
        LifecycleNode.__init__(self, "vtb_detector", **kwargs)
        self._declare()
        self.lifecycle_state = "unconfigured"
        self.finished = False   # run_node ends the run once shut down

    def on_configure(self, state):
        try:
            self._load()
        except Exception as e:   # a missing or corrupt model, a refused option: stays unconfigured, says why
            # at ERROR in the node's log (ros2 lifecycle set itself only prints "Transitioning failed")
            self.get_logger().error(f"configure failed: {e}")
            self.lifecycle_error = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state, self.lifecycle_error = "inactive", None
        self.get_logger().info("configured: models loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        self._start()
        self.lifecycle_state = "active"
        self.get_logger().info("active: subscribed")
        return super().on_activate(state)

    def on_deactivate(self, state):
        self._stop()
        self.lifecycle_state = "inactive"
        self.get_logger().info("inactive: unsubscribed, worker stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._release()
        self.lifecycle_state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        self._release()
        self.lifecycle_state = "finalized"
        self.finished = True
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self):
        self._stop()
        return super().destroy_node()


def _floats(a) -> array:
    """A float32[] message field from a numpy array, without a Python float per value."""
    return array("f", np.ascontiguousarray(a, np.float32).tobytes())


def main(args=None):
    from .models import ModelError
    # a missing or corrupt model: its message (the file and the fix), exit 3, not a traceback
    sys.exit(run_node(DetectorNode, args, fatal=(ModelError,), name="detector_node"))


def lifecycle_main(args=None):
    # the models load at configure: a bad one fails that transition with its message instead
    sys.exit(run_node(LifecycleDetectorNode, args, name="detector_lifecycle_node"))


if __name__ == "__main__":
    main()
