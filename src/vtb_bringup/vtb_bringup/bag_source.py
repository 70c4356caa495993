"""A recorded rosbag2 bag (`./vtb run --record BAG --record-images`, or `ros2 bag record`) as
`./vtb run`'s input: the camera's images, and its camera_info when recorded, with their original
header stamps, at the times they were recorded.

No rclpy here: the runner's bag player node (bag_player.py) publishes what messages() yields and
sets /clock to each message's recorded time, so a graph run with use_sim_time gets the same
images at the same (simulated) times as when they were recorded.

Messages are read with rosbags and published as they are stored (CDR), so header, stamp and
pixels are bit for bit the recorded ones. A sensor_msgs/CompressedImage topic is decoded and
published as sensor_msgs/Image (rgb8, the same header): the graph's detector reads Image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .graph import camera_info_next_to
from .sources import SourceError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


@dataclass
class BagMessage:
    time_ns: int      # the bag's (receive) time: /clock is set to it as the message goes out
    kind: str         # "image" or "camera_info"
    data: bytes       # CDR of a sensor_msgs/Image or CameraInfo


@dataclass
class BagSource:
    """What a bag plays into the graph: `image_topic` (and `info_topic`) of the bag, at `rate`
    times the recorded speed. messages() is a fresh pass in recorded order."""
    name: str
    path: Path
    image_topic: str
    image_type: str
    info_topic: str | None
    images: int
    rate: float = 1.0
    finite: bool = True

    def messages(self) -> Iterator[BagMessage]:
        from rosbags.rosbag2 import Reader
        compressed = self.image_type.endswith("/CompressedImage")
        store = _typestore() if compressed else None
        topics = {self.image_topic: "image", self.info_topic: "camera_info"}
        with Reader(self.path) as reader:
            for conn, t, data in reader.messages([c for c in reader.connections if c.topic in topics]):
                kind = topics[conn.topic]
                if kind == "image" and compressed:
                    data = _decompressed(store, data)
                    if data is None:
                        continue
                yield BagMessage(t, kind, data)


def _typestore():
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_JAZZY)


_bad_images = [0]


def _decompressed(store, data: bytes) -> bytes | None:
    """A CompressedImage's CDR -> an rgb8 Image's CDR with the same header; None (and a line
    every 30 bad frames) when it does not decode."""
    import cv2
    import numpy as np
    from rosbags.image import ImageError, compressed_image_to_cvimage
    msg = store.deserialize_cdr(data, "sensor_msgs/msg/CompressedImage")
    try:
        rgb = np.ascontiguousarray(compressed_image_to_cvimage(msg, "rgb8"))
    except (ImageError, cv2.error) as e:
        _bad_images[0] += 1
        if _bad_images[0] % 30 == 1:
            print(f"vtb run: skipping an image of the bag that does not decode ({e}; {_bad_images[0]} so far)",
                  flush=True)
        return None
    Image = store.types["sensor_msgs/msg/Image"]
    h, w = rgb.shape[:2]
    out = Image(header=msg.header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
                data=rgb.reshape(-1))
    return bytes(store.serialize_cdr(out, "sensor_msgs/msg/Image"))


def bag_source(path: str | Path, graph_image_topic: str, rate: float | None = None) -> BagSource:
    """The bag at `path` as a source. Its image topic: the graph's image topic if the bag has it
    (so --image-topic picks one), else the one image topic that is not a debug image; camera_info
    from beside it (image_transport's convention) when recorded."""
    from rosbags.rosbag2 import Reader
    path = Path(path)
    if not path.exists():
        raise SourceError(f"bag {path} does not exist")
    if not path.is_dir() or not (path / "metadata.yaml").is_file():
        raise SourceError(f"bag {path}: not a rosbag2 folder (a folder with metadata.yaml and the .mcap or "
                          ".db3 file; ./vtb run --record BAG writes one)")
    if rate is not None and not rate > 0:
        raise SourceError(f"--rate for a bag is a speed factor: {rate} is not > 0")
    try:
        with Reader(path) as reader:
            conns = list(reader.connections)
    except Exception as e:   # rosbags raises its own ReaderError, or a storage plugin's error
        raise SourceError(f"bag {path} cannot be read: {e}") from None
    counts = {}
    for c in conns:
        counts[(c.topic, c.msgtype)] = counts.get((c.topic, c.msgtype), 0) + c.msgcount
    images = {t: m for (t, m), n in counts.items() if m in IMAGE_TYPES and n}
    if not images:
        raise SourceError(f"bag {path} has no sensor_msgs/Image or CompressedImage messages (topics: "
                          + (", ".join(sorted(t for t, _ in counts)) or "none")
                          + "); record the images too: ./vtb run --record BAG --record-images")
    if graph_image_topic in images:
        topic = graph_image_topic
    else:
        candidates = sorted(t for t in images if not t.endswith("debug_image"))
        if len(candidates) != 1:
            raise SourceError(f"bag {path} has image topics {', '.join(sorted(images))}: say which one the "
                              "graph reads with --image-topic TOPIC")
        topic = candidates[0]
    # /camera/image_raw/compressed -> /camera/camera_info, as for a raw image
    info = camera_info_next_to(topic.removesuffix("/compressed"))
    info = info if counts.get((info, CAMERA_INFO_TYPE)) else None
    n = counts[(topic, images[topic])]
    return BagSource(f"bag {path} ({topic}: {n} images" + (f", {info}" if info else ", no camera_info") + ")",
                     path, topic, images[topic], info, n, rate or 1.0)
