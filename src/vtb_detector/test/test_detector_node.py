"""The detector node in its own process: faces out for a real image, malformed images skipped
with a warning while the node keeps running."""
import numpy as np
from sensor_msgs.msg import Image
from vtb_msgs.msg import Face, FaceArray

from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import IMAGE_QOS, PARAMETERS


def test_node_executable_is_on_the_graph_with_described_parameters(check_node_executable):
    check_node_executable("vtb_detector", "detector_node", "vtb_detector", PARAMETERS, ("model", "full"))


def malformed_images():
    wrong_encoding = rgb_to_image(Image, np.zeros((8, 8, 3), np.uint8))
    wrong_encoding.encoding = "yuv422_yuy2"
    short_data = rgb_to_image(Image, np.zeros((64, 64, 3), np.uint8))
    short_data.data = bytes(short_data.data)[:1000]
    zero_sized = Image(encoding="rgb8")
    return [wrong_encoding, short_data, zero_sized]


def test_faces_for_a_real_image_and_malformed_images_do_not_stop_the_node(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image", "-r", "faces:=/vtbtest/faces")
    received = []
    ros.node.create_subscription(FaceArray, "/vtbtest/faces", received.append, 10)
    pub = ros.node.create_publisher(Image, "/vtbtest/image", IMAGE_QOS)
    ros.spin_until(lambda: pub.get_subscription_count() > 0 and ros.node.count_publishers("/vtbtest/faces") > 0,
                   timeout=30, what="the detector's subscription and publisher")

    for bad in malformed_images():
        pub.publish(bad)
        ros.spin_for(0.2)
    ros.spin_until(lambda: "skipping image" in proc.output(), what="a warning about the malformed image")
    assert proc.alive(), proc.output()
    assert received == [], "a malformed image must not produce output"

    # images are best effort: send until one is answered
    good = rgb_to_image(Image, astronaut_rgb)
    good.header.stamp.sec, good.header.stamp.nanosec, good.header.frame_id = 42, 7, "cam_optical"
    for _ in range(40):
        pub.publish(good)
        ros.spin_for(0.25)
        if received:
            break
    assert received, "no FaceArray for a valid image after the malformed ones\n" + proc.output()
    msg = received[0]
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (42, 7, "cam_optical")
    assert (msg.image_width, msg.image_height) == (512, 512)
    assert len(msg.faces) == 1
    face = msg.faces[0]
    assert len(face.id) == 4 and face.score > 0.85
    assert abs(face.bbox.x + face.bbox.width / 2 - 225) < 12 and abs(face.bbox.y + face.bbox.height / 2 - 128) < 12
    assert len(face.keypoints) == 12 and face.landmark_scheme == Face.SCHEME_NONE
    assert proc.alive()
