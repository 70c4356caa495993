"""bag_source without ROS: which image topic of a bag is played, camera_info beside it, a
CompressedImage decoded to an rgb8 Image under the same header, and bad bags named."""
import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from vtb_bringup.bag_source import bag_source
from vtb_bringup.sources import SourceError

STORE = get_typestore(Stores.ROS2_JAZZY)
T = STORE.types


def header(i):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=100 + i, nanosec=7), frame_id="cam")


def image(i, rgb):
    h, w = rgb.shape[:2]
    return T["sensor_msgs/msg/Image"](header=header(i), height=h, width=w, encoding="rgb8", is_bigendian=0,
                                      step=3 * w, data=rgb.reshape(-1))


def compressed(i, rgb):
    ok, jpeg = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return T["sensor_msgs/msg/CompressedImage"](header=header(i), format="png", data=np.frombuffer(jpeg, np.uint8))


def camera_info(i):
    return T["sensor_msgs/msg/CameraInfo"](
        header=header(i), height=4, width=6, distortion_model="plumb_bob", d=np.zeros(5), k=np.eye(3).reshape(-1),
        r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def write_bag(path, topics):
    """topics: {name: (msgtype, [messages])}; message i at 100 + i s."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        for name, (msgtype, messages) in topics.items():
            conn = w.add_connection(name, msgtype, typestore=STORE)
            for i, m in enumerate(messages):
                w.write(conn, (100 + i) * 1_000_000_000 + 7, STORE.serialize_cdr(m, msgtype))
    return path


RGB = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)


def test_the_graphs_topic_or_the_only_camera_topic_is_played_with_its_camera_info(tmp_path):
    bag = write_bag(tmp_path / "b", {
        "/cam/image_raw": ("sensor_msgs/msg/Image", [image(i, RGB) for i in range(3)]),
        "/cam/camera_info": ("sensor_msgs/msg/CameraInfo", [camera_info(i) for i in range(3)]),
        "/vtb/debug_image": ("sensor_msgs/msg/Image", [image(0, RGB)]),
        "/vtb/faces_other": ("std_msgs/msg/String", [T["std_msgs/msg/String"](data="x")]),
    })
    src = bag_source(bag, "/vtb/image", rate=2.0)   # not in the bag: its only camera topic
    assert (src.image_topic, src.info_topic, src.images, src.rate) == ("/cam/image_raw", "/cam/camera_info", 3, 2.0)
    played = list(src.messages())
    assert [(m.kind, m.time_ns) for m in played] == [(k, (100 + i) * 1_000_000_000 + 7)
                                                     for i in range(3) for k in ("image", "camera_info")]
    out = STORE.deserialize_cdr(played[0].data, "sensor_msgs/msg/Image")
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (100, 7)
    assert bag_source(bag, "/vtb/debug_image").image_topic == "/vtb/debug_image", "the graph's topic first"


def test_a_compressed_image_is_played_as_an_rgb8_image_with_its_header(tmp_path):
    bag = write_bag(tmp_path / "b", {"/cam/image_raw/compressed": ("sensor_msgs/msg/CompressedImage",
                                                                    [compressed(i, RGB) for i in range(2)]),
                                     "/cam/camera_info": ("sensor_msgs/msg/CameraInfo", [camera_info(0)])})
    src = bag_source(bag, "/vtb/image")
    assert src.info_topic == "/cam/camera_info"
    first = next(m for m in src.messages() if m.kind == "image")
    out = STORE.deserialize_cdr(first.data, "sensor_msgs/msg/Image")
    assert (out.encoding, out.width, out.height, out.header.stamp.sec) == ("rgb8", 6, 4, 100)
    assert np.array_equal(out.data.reshape(4, 6, 3), RGB), "PNG: the pixels as recorded"


def test_bags_that_cannot_be_played_are_named(tmp_path):
    two = write_bag(tmp_path / "two", {"/a/image": ("sensor_msgs/msg/Image", [image(0, RGB)]),
                                       "/b/image": ("sensor_msgs/msg/Image", [image(0, RGB)])})
    with pytest.raises(SourceError, match="/a/image, /b/image.*--image-topic"):
        bag_source(two, "/vtb/image")
    assert bag_source(two, "/b/image").image_topic == "/b/image"
    with pytest.raises(SourceError, match="speed factor"):
        bag_source(two, "/b/image", rate=0)
    none = write_bag(tmp_path / "none", {"/x": ("std_msgs/msg/String", [T["std_msgs/msg/String"](data="x")])})
    with pytest.raises(SourceError, match="no sensor_msgs/Image.*topics: /x"):
        bag_source(none, "/vtb/image")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(SourceError, match="cannot be read"):
        bag_source(tmp_path / "broken", "/vtb/image")
