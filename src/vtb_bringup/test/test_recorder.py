"""BagRecorder over real DDS: what one node publishes, another records into a rosbag2 MCAP bag,
and the bag read back with rosbags (from the definitions embedded in the bag only) holds the
same values, stamps and type hashes."""
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from vtb_msgs.msg import AvatarParameters, BoundingBox, Face, FaceArray

from vtb_bringup.recorder import BagRecorder, RecordError

TOPICS = [("/vtb/faces", FaceArray), ("/vtb/avatar", AvatarParameters), ("/vtb/image", Image),
          ("/tf", TFMessage)]
N = 3  # messages per topic


def read_bag(path):
    """{topic: [(receive stamp ns, message)]}, deserialized from the bag's own definitions."""
    from rosbags.highlevel import AnyReader
    out = {}
    with AnyReader([path]) as reader:  # no default typestore: the bag must describe itself
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    return out


def faces(i):
    rng = np.random.default_rng(i)
    face = Face(id=f"f{i:03x}", score=0.5 + i / 8, bbox=BoundingBox(x=10.5, y=20.25, width=100.0 + i, height=120.0),
                keypoints=rng.uniform(0, 640, 12).astype(np.float32).tolist(),
                landmark_scheme=Face.SCHEME_MEDIAPIPE_478,
                landmarks=rng.uniform(0, 640, 956).astype(np.float32).tolist(),
                landmarks_z=rng.normal(0, 20, 478).astype(np.float32).tolist(),
                landmark_confidence=0.875, tracked=bool(i % 2))
    return FaceArray(header=Header(stamp=Time(sec=100 + i, nanosec=5000 + i), frame_id="camera_optical"),
                     image_width=640, image_height=480, faces=[face, Face(id="a0", score=0.25)])


def avatar(i):
    return AvatarParameters(header=Header(stamp=Time(sec=100 + i), frame_id="camera_optical"), face_id="f3a9",
                            names=["ParamAngleX", "ParamEyeLOpen", "ParamMouthOpenY"],
                            values=[-12.5 + i, 0.75, float(np.float32(0.1 * i))])


def image(i):
    data = (np.arange(4 * 3 * 3, dtype=np.uint8) * (i + 1)).tobytes()
    return Image(header=Header(stamp=Time(sec=100 + i), frame_id="camera_optical"),
                 height=3, width=4, encoding="rgb8", is_bigendian=0, step=12, data=data)


def tf(i):
    t = TransformStamped(header=Header(stamp=Time(sec=100 + i), frame_id="camera_optical"), child_frame_id="face_f3a9")
    t.transform.translation.x, t.transform.translation.z = 0.01 * i, 0.6
    t.transform.rotation.z, t.transform.rotation.w = 0.6, 0.8
    return TFMessage(transforms=[t])


MAKERS = {"/vtb/faces": faces, "/vtb/avatar": avatar, "/vtb/image": image, "/tf": tf}


def assert_face_equal(got, want):
    for f in ("id", "landmark_scheme", "tracked"):
        assert getattr(got, f) == getattr(want, f), f
    for f in ("score", "landmark_confidence"):
        assert np.float32(getattr(got, f)) == np.float32(getattr(want, f)), f
    assert (got.bbox.x, got.bbox.y, got.bbox.width, got.bbox.height) == (
        want.bbox.x, want.bbox.y, want.bbox.width, want.bbox.height)
    for f in ("keypoints", "landmarks", "landmarks_z"):
        g, w = np.asarray(getattr(got, f)), np.asarray(getattr(want, f), dtype=np.float32)
        assert g.dtype == np.float32 and np.array_equal(g, w), f


def assert_header_equal(got, want):
    assert (got.stamp.sec, got.stamp.nanosec, got.frame_id) == (want.stamp.sec, want.stamp.nanosec, want.frame_id)


def test_records_vtb_topics_into_a_readable_mcap_bag(ros, tmp_path):
    import rclpy
    bag = tmp_path / "run1"
    recorder_node = rclpy.create_node("vtb_recorder_test", context=ros.context)
    ros.executor.add_node(recorder_node)
    qos = {"/vtb/image": qos_profile_sensor_data,
           # latched, unlike the recorder's volatile subscription: must show up as offered QoS
           "/vtb/avatar": QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)}
    pubs = {t: ros.node.create_publisher(cls, t, qos.get(t, QoSProfile(depth=10))) for t, cls in TOPICS}
    t0 = recorder_node.get_clock().now().nanoseconds
    with BagRecorder(recorder_node, bag, TOPICS) as rec:
        ros.spin_until(lambda: all(p.get_subscription_count() >= 1 for p in pubs.values()),
                       what="the recorder's subscriptions")
        sent = {t: [] for t in MAKERS}
        for i in range(N):
            for t, make in MAKERS.items():
                sent[t].append(make(i))
                pubs[t].publish(sent[t][-1])
            ros.spin_for(0.05)  # best-effort images: do not flood a 1-deep queue
        ros.spin_until(lambda: all(n == N for n in rec.counts.values()), what=f"{N} messages per topic")
        assert "recorded 12 messages" in rec.summary()
    rec.close()  # second close is harmless
    t1 = recorder_node.get_clock().now().nanoseconds

    # a rosbag2 directory as Jazzy's `ros2 bag` writes and reads it
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    assert meta["message_count"] == 4 * N
    mcap = bag / meta["relative_file_paths"][0]
    assert mcap.suffix == ".mcap" and mcap.read_bytes()[:8] == b"\x89MCAP0\r\n"
    topics = {x["topic_metadata"]["name"]: x for x in meta["topics_with_message_count"]}
    assert set(topics) == set(MAKERS)
    for t, cls in TOPICS:
        tm = topics[t]["topic_metadata"]
        assert topics[t]["message_count"] == N
        info = ros.node.get_publishers_info_by_topic(t)
        assert tm["type"] == info[0].topic_type
        # rosbags' hash of the definition must be the one rosidl gave the type on the wire
        assert tm["type_description_hash"] == str(info[0].topic_type_hash)
    # the publishers' offered QoS (not the recorder's), as rosbag2 records it
    offered = {t: [(q["reliability"], q["durability"]) for q in topics[t]["topic_metadata"]["offered_qos_profiles"]]
               for t in topics}
    assert offered["/vtb/image"] == [("best_effort", "volatile")]
    assert offered["/vtb/faces"] == [("reliable", "volatile")]
    assert offered["/vtb/avatar"] == [("reliable", "transient_local")]

    got = read_bag(bag)
    for t in MAKERS:
        stamps = [s for s, _ in got[t]]
        assert len(stamps) == N and stamps == sorted(stamps) and t0 <= stamps[0] and stamps[-1] <= t1, t
    for (_, g), w in zip(got["/vtb/faces"], sent["/vtb/faces"]):
        assert_header_equal(g.header, w.header)
        assert (g.image_width, g.image_height, len(g.faces)) == (640, 480, 2)
        for gf, wf in zip(g.faces, w.faces):
            assert_face_equal(gf, wf)
    for (_, g), w in zip(got["/vtb/avatar"], sent["/vtb/avatar"]):
        assert_header_equal(g.header, w.header)
        assert (g.face_id, list(g.names)) == (w.face_id, list(w.names))
        assert np.array_equal(g.values, np.asarray(w.values, dtype=np.float32))
    for (_, g), w in zip(got["/vtb/image"], sent["/vtb/image"]):
        assert_header_equal(g.header, w.header)
        assert (g.height, g.width, g.encoding, g.step) == (3, 4, "rgb8", 12)
        assert bytes(g.data) == bytes(w.data)
    for (_, g), w in zip(got["/tf"], sent["/tf"]):
        (gt,), (wt,) = g.transforms, w.transforms
        assert_header_equal(gt.header, wt.header)
        assert gt.child_frame_id == wt.child_frame_id
        tr, wtr = gt.transform, wt.transform
        assert (tr.translation.x, tr.translation.y, tr.translation.z) == (
            wtr.translation.x, wtr.translation.y, wtr.translation.z)
        assert (tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w) == (0.0, 0.0, 0.6, 0.8)
    ros.executor.remove_node(recorder_node)
    recorder_node.destroy_node()


def test_between_a_chunk_reaching_the_file_and_metadata_yaml_only_a_flush(ros, tmp_path, monkeypatch):
    """A SIGKILL can come at any moment: the checkpoint writes metadata.yaml's text (the slow
    part, ~10 ms on a loaded machine) before the chunk reaches the file, so that only a flush
    lies between the file's new end and the rename. With the text written after the chunk, a
    kill in between left a file with 149 FaceArrays and a metadata.yaml counting 119 (CI)."""
    import os

    from ruamel.yaml import YAML
    events = []
    dump = YAML.dump
    monkeypatch.setattr(YAML, "dump", lambda self, *a, **k: (events.append("metadata text"), dump(self, *a, **k))[1])
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"rename {os.path.basename(b)}"), replace(a, b))[1])

    class File:   # the MCAP file, watched
        def __init__(self, f):
            self.f = f

        def write(self, data):
            events.append("file write")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    pub = ros.node.create_publisher(FaceArray, "/vtb/faces", 10)
    with BagRecorder(ros.node, tmp_path / "bag", [("/vtb/faces", FaceArray)]) as rec:
        rec._timer.cancel()   # checkpoints by hand, below
        storage = rec._writer.storage
        storage.bio = File(storage.bio)
        ros.spin_until(lambda: pub.get_subscription_count() >= 1, what="the recorder's subscription")
        for i in range(3):
            pub.publish(faces(i))
        ros.spin_until(lambda: rec.counts["/vtb/faces"] == 3, what="3 messages")
        events.clear()
        rec.checkpoint()
        written = list(events)
        storage.bio = storage.bio.f
        first = written.index("file write")
        assert written[first:] == ["file write", "rename metadata.yaml"], written
        assert "metadata text" in written[:first], written
        # and the open bag reads as it stands: 3 messages in metadata.yaml and in the file
        meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        assert meta["message_count"] == 3
        assert len(read_bag(tmp_path / "bag")["/vtb/faces"]) == 3


def test_existing_output_path_is_refused(ros, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(RecordError, match="taken.*already exists"):
        BagRecorder(ros.node, tmp_path / "taken", TOPICS)
    assert list((tmp_path / "taken").iterdir()) == []  # and nothing was written into it
    assert ros.node.get_subscriptions_info_by_topic("/vtb/faces") == []  # nor subscribed


def test_sigterm_stops_vtb_run_cleanly_and_the_bag_is_readable(tmp_path):
    """docker stop / a supervisor send SIGTERM: ./vtb run exits 0 with no traceback, and the
    bag it was recording is closed with its metadata (it had none, so it could not be read)."""
    import signal
    import subprocess
    import sys
    import time
    bag = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-m", "vtb_bringup.cli", "run", "--clip", "--frames", "30", "--loop",
                             "--outputs", "none", "--record", str(bag), "--stats-every", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (bag.is_dir() and any(bag.glob("*.mcap"))):
            time.sleep(0.5)
        time.sleep(4)  # some frames through the graph
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert (bag / "metadata.yaml").is_file()
    messages = read_bag(bag)
    assert messages.get("/vtb/faces"), sorted(messages)


def test_a_bag_killed_with_sigkill_is_readable(tmp_path):
    """SIGKILL gives no chance to close the bag: the recorder keeps it readable as it grows
    (chunk, MCAP footer and metadata.yaml once a second), so rosbags' Reader opens it and gets
    what was recorded up to the last second."""
    import subprocess
    import sys
    import time

    from rosbags.rosbag2 import Reader
    bag = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-m", "vtb_bringup.cli", "run", "--clip", "--frames", "30", "--loop",
                             "--outputs", "none", "--record", str(bag), "--stats-every", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (bag / "metadata.yaml").is_file():
            time.sleep(0.5)
        time.sleep(5)  # some frames through the graph and a few checkpoints
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -9
    with Reader(bag) as reader:
        counts, total = {c.topic: c.msgcount for c in reader.connections}, reader.message_count
        read = {}
        for conn, _, _ in reader.messages():
            read[conn.topic] = read.get(conn.topic, 0) + 1
    assert counts.get("/vtb/faces", 0) > 0 and total == sum(counts.values()), counts
    assert read == {t: n for t, n in counts.items() if n}, "metadata.yaml matches the mcap file"
    assert read_bag(bag)["/vtb/faces"], "and it deserializes from its own definitions"


@pytest.mark.parametrize("target, words", [
    ("a_file", "is an existing file"),
    ("a_file/bag", "a_file is a file"),
    ("a_file/deeper/bag", "a_file is a file"),
])
def test_record_into_a_path_that_cannot_be_a_folder_is_refused(tmp_path, target, words):
    import subprocess
    import sys
    (tmp_path / "a_file").write_text("x")
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "run", "--clip", "--frames", "5", "--outputs", "none",
                        "--record", str(tmp_path / target)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (tmp_path / "a_file").read_text() == "x"


def test_recorder_refuses_an_unwritable_place_with_a_message(ros, tmp_path, monkeypatch):
    import os
    locked = tmp_path / "locked"
    locked.mkdir()
    # as root (containers) the mode bits do not stop mkdir: make the access check say no
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(locked))
    with pytest.raises(RecordError, match="locked is not writable"):
        BagRecorder(ros.node, locked / "bag", TOPICS)
    # and an OSError from the writer itself (a read-only file system, a full disk) is a message too
    monkeypatch.undo()
    import rosbags.rosbag2.writer as w

    def refuse(self):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(w.Writer, "open", refuse)
    with pytest.raises(RecordError, match="cannot be created: Permission denied"):
        BagRecorder(ros.node, tmp_path / "bag2", TOPICS)
