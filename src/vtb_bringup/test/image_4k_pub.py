"""Helper process for test_fastdds: publishes N rgb8 3840x2160 images (24.9 MB) at RATE Hz on
TOPIC with the camera's QoS (sensor data) once a subscriber is matched and TOPIC/go came (the
subscriber has matched this publisher too); header.stamp.sec is the
frame's index and its pixels are that index (mod 251) plus a ramp, for the receiver to check.
Usage: image_4k_pub.py TOPIC N RATE"""
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Empty

GO_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)

WIDTH, HEIGHT = 3840, 2160


def pixels(i):
    return ((np.arange(WIDTH * HEIGHT * 3, dtype=np.uint32) + i) % 251).astype(np.uint8)


def main():
    topic, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("image_4k_pub")
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
    frames = [pixels(i).tobytes() for i in range(2)]   # the data alternates, made once
    go = []
    node.create_subscription(Empty, topic + "/go", go.append, GO_QOS)
    deadline = time.monotonic() + 30
    while not (go and pub.get_subscription_count() > 0) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
    for i in range(n):
        msg.header.stamp.sec = i
        msg.data = frames[i % 2]
        pub.publish(msg)
        time.sleep(1 / rate)
    print(f"published {n} frames", flush=True)
    time.sleep(2.0)   # keep the writer until the last frame was read
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
