"""`./vtb run` on the rendered clip, watched from another process over DDS: every topic of the
graph arrives, with content that fits the face in the clip; Ctrl-C stops it cleanly."""
import sys

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray
from vtb_msgs.msg import AvatarParameters, FaceArray, FaceStateArray, GazeArray, HeadPoseArray

from vtb_detector.node import IMAGE_QOS

RUN = [sys.executable, "-m", "vtb_bringup.cli", "run"]

# every topic the default graph publishes, with the QoS a subscriber would use
TOPICS = {
    "/vtb/image": (Image, IMAGE_QOS),
    "/vtb/camera_info": (CameraInfo, IMAGE_QOS),
    "/vtb/debug_image": (Image, IMAGE_QOS),
    "/vtb/faces": (FaceArray, 10),
    "/vtb/head_poses": (HeadPoseArray, 10),
    "/vtb/markers": (MarkerArray, 10),
    "/vtb/gaze": (GazeArray, 10),
    "/vtb/gaze_markers": (MarkerArray, 10),
    "/vtb/face_state": (FaceStateArray, 10),
    "/vtb/avatar_parameters": (AvatarParameters, 10),
    "/tf": (TFMessage, QoSProfile(depth=100)),
    "/diagnostics": (DiagnosticArray, 10),
}


def test_run_on_the_clip_publishes_every_topic(ros, start_process):
    proc = start_process([*RUN, "--clip", "--frames", "60", "--loop", "--duration", "120", "--outputs", "none",
                          "--stats-every", "1"], name="vtb-run")
    got = {topic: [] for topic in TOPICS}
    for topic, (msg_type, qos) in TOPICS.items():
        ros.node.create_subscription(msg_type, topic, lambda m, t=topic: got[t].append(m), qos)
    ros.spin_until(lambda: all(len(v) >= 5 for v in got.values()) or not proc.alive(), timeout=120,
                   what="5 messages on every topic: " + ", ".join(t for t, v in got.items() if len(v) < 5))
    assert proc.alive(), proc.output()
    missing = [t for t, v in got.items() if len(v) < 5]
    assert not missing, f"topics without messages: {missing}\n{proc.output()}"

    # camera images cross to another process whole: with Fast DDS's default 512 KiB shared-memory
    # segment most 640x480 frames were lost on the way (config/fastdds.xml, set by activate.bash)
    images, faces_seen = len(got["/vtb/image"]), len(got["/vtb/faces"])
    ros.spin_for(3.0)
    images, faces_seen = len(got["/vtb/image"]) - images, len(got["/vtb/faces"]) - faces_seen
    assert faces_seen >= 60 and images >= 0.7 * faces_seen, f"{images} images for {faces_seen} FaceArrays in 3 s"

    # the content fits one face, tracked through the clip
    faces = [f for m in got["/vtb/faces"] for f in m.faces]
    assert faces and all(len(f.landmarks) == 2 * 478 for f in faces)
    face_id = faces[-1].id
    assert got["/vtb/image"][-1].header.frame_id == "camera_optical_frame"
    assert got["/vtb/camera_info"][-1].k[0] > 0
    poses = [p for m in got["/vtb/head_poses"] for p in m.poses if p.valid]
    assert poses and all(0.3 < p.pose.position.z < 1.5 for p in poses), "the head is 0.3..1.5 m away"
    assert any(g.left_valid and g.right_valid for m in got["/vtb/gaze"] for g in m.gazes)
    frames = {t.child_frame_id for m in got["/tf"] for t in m.transforms}
    assert {f"face_{face_id}", f"gaze_{face_id}"} <= frames, frames
    assert all(t.header.frame_id == "camera_optical_frame" for m in got["/tf"] for t in m.transforms)
    params = got["/vtb/avatar_parameters"][-1]
    assert params.face_id == face_id and {"ParamAngleX", "ParamEyeLOpen", "ParamMouthOpenY"} <= set(params.names)
    # /diagnostics from every node, OK while the clip plays (the last status of each)
    ros.spin_for(2.0)
    last = {s.name: s for m in got["/diagnostics"] for s in m.status}
    assert {"vtb_detector: perception", "vtb_pose: head pose", "vtb_gaze: gaze and face state",
            "vtb_bridge: avatar"} <= set(last), set(last)
    assert all(s.level == b"\x00" for s in last.values()), {n: (s.level, s.message) for n, s in last.items()}
    # the FaceState carries the 52 ARKit blendshapes
    assert len(got["/vtb/face_state"][-1].states[0].blendshapes) == 52

    # the per-face PoseStamped topic exists once a face is tracked
    per_face = []
    ros.node.create_subscription(PoseStamped, f"/vtb/faces/{face_id}/head_pose", per_face.append, 10)
    ros.spin_until(lambda: per_face, timeout=30, what=f"/vtb/faces/{face_id}/head_pose")

    ros.spin_until(lambda: "end to end:" in proc.output(), timeout=30, what="the latency table")
    assert proc.stop() == 0, "Ctrl-C must stop vtb run cleanly\n" + proc.output()
    assert "Traceback" not in proc.output() and "[ERROR]" not in proc.output(), proc.output()


def test_run_says_what_is_wrong_with_its_input(tmp_path):
    import subprocess
    for args, words in [(["--video", tmp_path / "missing.mp4"], "missing.mp4 does not exist"),
                        (["--images", tmp_path], "has no images"),
                        (["--outputs", "holograms"], "outputs: unknown holograms"),
                        (["--config", tmp_path / "nope.yaml"], "nope.yaml does not exist")]:
        r = subprocess.run([*RUN, *map(str, args)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert words in r.stderr, r.stderr
    # a bad parameter value in the graph YAML: the node's name and the reason in one line, exit 3
    # (as the node executables say it), no traceback
    import yaml
    from vtb_bringup.graph import default_config
    doc = yaml.safe_load(default_config().read_text())
    for node, name, value, words in [("vtb_bridge", "vmc_port", 70000, "vtb_bridge: vmc_port: must be <= 65535"),
                                     ("vtb_detector", "max_faces", 0, "vtb_detector: max_faces: must be >= 1")]:
        bad = yaml.safe_load(yaml.safe_dump(doc))
        next(n for n in bad["nodes"] if n["name"] == node)["parameters"][name] = value
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
        r = subprocess.run([*RUN, "--clip", "--duration", "1", "--config", str(tmp_path / "bad.yaml")],
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 3 and words in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_run_records_the_graph_as_a_rosbag2(tmp_path):
    """--record: every topic the graph publishes (images left out unless asked), readable by
    rosbags with nothing but the bag, and in step with what went through the graph."""
    import subprocess
    from pathlib import Path

    from rosbags.highlevel import AnyReader
    bag = tmp_path / "session"
    r = subprocess.run([*RUN, "--clip", "--frames", "30", "--stats-every", "0", "--outputs", "none",
                        "--record", str(bag)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mcap" in (bag / "metadata.yaml").read_text()
    with AnyReader([Path(bag)]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        faces = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                 if c.topic == "/vtb/faces"]
    want = set(TOPICS) - {"/vtb/image", "/vtb/debug_image"}
    assert want <= set(counts), f"missing from the bag: {want - set(counts)}"
    assert counts["/vtb/faces"] >= 25 and counts["/vtb/camera_info"] >= 25
    assert all(len(f.landmarks) == 2 * 478 for m in faces for f in m.faces) and faces[-1].faces
    assert f"recorded {sum(counts.values())} messages" in r.stdout, r.stdout

    r = subprocess.run([*RUN, "--clip", "--frames", "5", "--record", str(bag)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "already exists" in r.stderr, "a bag is never overwritten"


HAND_OFF_SCRIPT = '''
import json, time
from sensor_msgs.msg import Image
from vtb_bringup.runner import GraphRunner
from vtb_bringup.sources import clip_source
from vtb_detector.node import DetectorCore, IMAGE_QOS
runner = GraphRunner({"outputs": "none"})
source = runner.add_source(clip_source(frames=60), loop=True)
detector = next(n for n in runner.nodes if isinstance(n, DetectorCore))
got, state, t0 = [], {}, time.monotonic()

def idle():   # after 3 s a subscriber of the image topic appears (rqt_image_view, a recorder)
    if "alone" not in state and time.monotonic() - t0 > 3.0:
        state["alone"] = dict(detector.counts)
        runner.source_node.create_subscription(Image, source.image_pub.topic_name, got.append, IMAGE_QOS)

runner.spin(duration=5.0, idle=idle)
print(json.dumps({"subscribed": detector.sub is not None, "hand_off": source.hand_off is not None,
                  "alone": state["alone"], "after": detector.counts, "published": source.published,
                  "seen_on_topic": len(got)}))
runner.shutdown()
'''


def test_run_hands_its_images_to_the_detector_in_process():
    """./vtb run: the source gives each image to the detector in the same process (no DDS copy,
    no subscription); the image topic still carries them once anything else subscribes, and the
    detector never takes an image twice."""
    import json
    import subprocess
    r = subprocess.run([sys.executable, "-c", HAND_OFF_SCRIPT], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["hand_off"] and not out["subscribed"]
    assert out["alone"]["processed"] >= 60, out      # 3 s at 30 fps with no image subscriber at all
    assert out["after"]["received"] == out["published"], "every image once, none twice"
    assert out["seen_on_topic"] >= 30, out             # the last 2 s, on the topic
