"""Record vtb topics into a rosbag2 bag (MCAP storage) with `rosbags`, without a ROS install.

Messages arrive serialized (`raw=True`) and go to the bag as they are: no CDR round trip.
The bag is what `ros2 bag record -s mcap` on Jazzy writes: metadata version 9, receive-time
stamps from the node's clock, each topic's publishers' offered QoS, `ros2msg` schemas and the
RIHS01 type hashes (rosbags computes the same hashes as rosidl; checked for vtb_msgs, Image,
TFMessage).

A bag is readable at any moment, not only after close(): once a second the recorder ends the
MCAP chunk it is filling, writes an MCAP footer after it (overwritten by the next chunk) and
rewrites metadata.yaml (temporary file, then rename) with the counts so far. A process killed
with SIGKILL (or a power cut after the OS wrote its cache) loses at most the last second.
The slow part, metadata.yaml's text, is written before the chunk reaches the file: between
the file's new end and metadata.yaml's rename there is only a flush, so a kill finds the two
matching (with the text written after the chunk, a kill in those ~10 ms left a file with 149
FaceArrays and a metadata.yaml counting 119, twice in fresh-clone CI).
"""
from __future__ import annotations

import threading
from pathlib import Path

CHECKPOINT_SECONDS = 1.0

# What ends a valid MCAP file without a summary section: a DataEnd record (opcode 0x0f, crc 0),
# a Footer (opcode 0x02; summary start 0 = none, summary offset start 0, crc 0) and the magic.
# Readers without a summary scan the data section, as rosbags does.
MCAP_OPEN_END = (b"\x0f" + (4).to_bytes(8, "little") + bytes(4)
                 + b"\x02" + (20).to_bytes(8, "little") + bytes(20) + b"\x89MCAP0\r\n")


class RecordError(ValueError):
    """The recording target cannot be a new bag folder; the message says why."""


def check_target(path) -> Path:
    """`path` can become a new bag folder: it does not exist and its nearest existing parent is a
    writable folder. Checked before the graph starts, so a bad --record fails at once."""
    import os
    path = Path(path)
    if path.is_file() or path.is_symlink():
        raise RecordError(f"recording target {path} is an existing file; a bag is a new folder: "
                          "pick a name that does not exist")
    if path.exists():
        raise RecordError(f"recording target {path} already exists; a rosbag2 bag is never "
                          "overwritten: remove it or pick another name")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RecordError(f"recording target {path} cannot be a folder: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RecordError(f"recording target {path} cannot be created: {parent} is not writable")
    return path


class _MetadataOnly:
    """Stands in for the MCAP storage while rosbags' Writer.close() writes metadata.yaml from
    the counts so far (its own code, temporary file and rename) and closes nothing."""

    def __init__(self, storage):
        self.path = storage.path

    def close(self, version, metadata):
        pass


class _Spool:
    """Stands in for the MCAP file while rosbags writes a chunk: the bytes wait in memory, at
    the offsets they will have in the file, until the metadata for them is ready."""

    def __init__(self, offset):
        self.offset, self.parts, self.size = offset, [], 0

    def write(self, data):
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def tell(self):
        return self.offset + self.size


from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data

# Big, lossy-tolerant streams: subscribe best effort, as their publishers do (a reliable
# subscription would not match a best-effort publisher).
SENSOR_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"}


def type_name(msg_class) -> str:
    """'pkg/msg/Name' of an rclpy message class (module is pkg.msg._name)."""
    return f"{msg_class.__module__.split('.')[0]}/msg/{msg_class.__name__}"


def default_qos(topic: str, msg_class) -> QoSProfile:
    if type_name(msg_class) in SENSOR_TYPES:
        return qos_profile_sensor_data
    if topic == "/tf_static":  # latched: a volatile subscription would miss what came before
        return QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=10)  # reliable, volatile


def make_typestore(type_names):
    """Jazzy's standard types plus, for any type Jazzy lacks (vtb_msgs), every .msg of its
    package from the installed share directory (the definitions the nodes were built from)."""
    from ament_index_python.packages import get_package_share_directory
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    for pkg in sorted({n.split("/")[0] for n in type_names if n not in store.fielddefs}):
        types = {}
        for f in sorted((Path(get_package_share_directory(pkg)) / "msg").glob("*.msg")):
            types.update(get_types_from_msg(f.read_text(), f"{pkg}/msg/{f.stem}"))
        store.register(types)
    return store


def msgdef_from_files(store, msgtype):
    """The schema text rosbag2 itself embeds: the installed .msg file of the type, then every
    type it uses, each after a '=====...' line and 'MSG: pkg/Name'. rosbags can generate the text
    from the typestore too, but it writes `string X=""` constants as `string X=`, which no
    parser (rosbags' own included) reads back; the original files also keep the comments.
    None if some .msg file is not installed."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from rosbags.interfaces import Nodetype

    order = []

    def walk(name):
        if name not in order:
            order.append(name)
            for _, (kind, rest) in store.fielddefs[name][1]:
                if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
                    kind, rest = rest[0]
                if kind == Nodetype.NAME:
                    walk(rest)

    walk(msgtype)
    texts = []
    for name in order:
        pkg, _, base = name.split("/")
        try:
            f = Path(get_package_share_directory(pkg)) / "msg" / f"{base}.msg"
        except PackageNotFoundError:
            return None
        if not f.is_file():
            return None
        texts.append(f.read_text().rstrip("\n") + "\n")
    return "".join([texts[0]] + [f"{'=' * 80}\nMSG: {n.replace('/msg/', '/')}\n{t}"
                                 for n, t in zip(order[1:], texts[1:])])


def _rosbags_qos(profile):
    """rclpy QoSProfile -> rosbags Qos. Both use the rmw enum values."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    def t(duration):
        ns = duration.nanoseconds
        # rmw's "infinite" is 2**63-1 ns; rosbag2 writes it as the largest sec/nsec pair
        return QosTime(2147483647, 4294967295) if ns >= 2**63 - 1 else QosTime(*divmod(ns, 10**9))

    return Qos(QosHistory(int(profile.history)), profile.depth,
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               t(profile.deadline), t(profile.lifespan), QosLiveliness(int(profile.liveliness)),
               t(profile.liveliness_lease_duration), profile.avoid_ros_namespace_conventions)


class BagRecorder:
    """Subscribes `node` to `topics` ([(name, msg_class)] or [(name, msg_class, qos)]) and
    writes every message into a new rosbag2 directory `path` (MCAP). Use as a context manager
    or call close(); `counts` is {topic: messages written}."""

    def __init__(self, node, path, topics):
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        self.path = check_target(path)
        topics = [(t[0], t[1], t[2] if len(t) > 2 else default_qos(t[0], t[1])) for t in topics]
        self.counts = {name: 0 for name, _, _ in topics}
        self._node = node
        self._clock = node.get_clock()
        self._lock = threading.Lock()  # close() may come from another thread than the callbacks
        self._store = make_typestore([type_name(c) for _, c, _ in topics])
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        try:
            self._writer.open()
        except WriterError as e:  # created between the check above and now
            raise RecordError(f"recording target {self.path} already exists") from e
        except OSError as e:
            raise RecordError(f"recording target {self.path} cannot be created: {e.strerror}") from e
        self._connections = {}
        self.checkpoint()  # readable (empty) from the start
        # one exclusive group: the writer is not thread-safe under a MultiThreadedExecutor
        group = MutuallyExclusiveCallbackGroup()
        self._timer = node.create_timer(CHECKPOINT_SECONDS, self.checkpoint, callback_group=group)
        self._subs = [node.create_subscription(cls, name, self._callback(name, type_name(cls), qos),
                                               qos, raw=True, callback_group=group)
                      for name, cls, qos in topics]

    def _callback(self, topic, msgtype, qos):
        # schema text and hash now, so that the first message's callback stays cheap
        schema = msgdef_from_files(self._store, msgtype), self._store.hash_rihs01(msgtype)

        def on_message(data: bytes):
            stamp = self._clock.now().nanoseconds  # receive time, as rosbag2 stamps
            with self._lock:
                if self._writer is None:
                    return
                conn = self._connections.get(topic)
                if conn is None:
                    conn = self._connections[topic] = self._add_connection(topic, msgtype, schema, qos)
                # rosbags closes a chunk by itself once it holds 1 MiB: into the spool, then
                # sealed like a checkpoint's
                spool = self._spooled(lambda: self._writer.write(conn, stamp, data))
                self.counts[topic] += 1
                if spool.size:
                    self._seal(spool)
        return on_message

    def _add_connection(self, topic, msgtype, schema, qos):
        # On the first message, as rosbag2 does after discovery: the publishers' offered QoS is
        # what `ros2 bag play` replays with. Our own profile stands in if none is visible yet.
        offered = [i.qos_profile for i in self._node.get_publishers_info_by_topic(topic)] or [qos]
        return self._writer.add_connection(topic, msgtype, typestore=self._store,
                                           msgdef=schema[0], rihs01=schema[1],
                                           offered_qos_profiles=[_rosbags_qos(q) for q in offered])

    def checkpoint(self):
        """Make what was written so far a readable bag: end the pending chunk, end the file
        (the next chunk overwrites that end), and metadata.yaml to match."""
        with self._lock:
            if self._writer is not None:
                storage = self._writer.storage
                self._seal(self._spooled(storage.close_chunk) if storage.chunk.bio.tell()
                           else _Spool(storage.bio.tell()))

    def _spooled(self, action):
        """(Under the lock.) Runs `action` with the MCAP file replaced by a _Spool; returns it."""
        storage = self._writer.storage  # rosbags' McapWriter
        file, storage.bio = storage.bio, _Spool(storage.bio.tell())
        try:
            action()
        finally:
            spool, storage.bio = storage.bio, file
        return spool

    def _seal(self, spool):
        """(Under the lock.) Writes metadata.yaml's text for every message written so far (all
        in closed chunks: rosbags closes a full chunk after the message that filled it), then the
        spooled chunk and an end to the file, then renames the text into place."""
        import os
        writer = self._writer
        storage, metapath = writer.storage, writer.metapath
        ready = metapath.with_name("metadata.next.yaml")
        writer.storage, writer.metapath = _MetadataOnly(storage), ready
        try:
            writer.close()   # rosbags' own metadata text, into `ready`
        finally:
            writer.storage, writer.metapath = storage, metapath
        end = storage.bio.tell() + spool.size
        storage.bio.write(b"".join(spool.parts) + MCAP_OPEN_END)
        storage.bio.flush()  # to the OS: a killed process loses nothing written before
        storage.bio.seek(end)
        os.replace(ready, metapath)

    def summary(self) -> str:
        return f"recorded {sum(self.counts.values())} messages to {self.path}: " + ", ".join(
            f"{t} {n}" for t, n in self.counts.items())

    def close(self):
        """Stop recording and write the bag's index and metadata.yaml. Safe to call twice."""
        subs, self._subs = self._subs, []
        timer, self._timer = getattr(self, "_timer", None), None
        try:
            if timer is not None:
                self._node.destroy_timer(timer)
            for sub in subs:
                self._node.destroy_subscription(sub)
        finally:  # after Ctrl-C the context may be gone already; the bag must still be closed
            with self._lock:
                writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
