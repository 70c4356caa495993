"""GraphMonitor keeps bounded statistics and only the messages it is asked to keep: ./vtb run
grew 3.7 MB a minute when it kept every AvatarParameters message for a CSV nobody asked for."""
import pytest
import rclpy
from vtb_msgs.msg import AvatarParameters, FaceArray

from vtb_bringup.monitor import GraphMonitor


@pytest.fixture
def context():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def feed(monitor, n):
    for i in range(n):
        for topic, msg in (("faces", FaceArray()), ("avatar_parameters", AvatarParameters())):
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 30, (i % 30) * 33_000_000
            monitor.on_message(topic, msg)


def test_monitor_keeps_nothing_per_message_unless_asked(context):
    plain = GraphMonitor("vtb_monitor_test", context=context)
    feed(plain, 3000)
    assert plain.avatar_rows == [] and not plain.messages
    assert len(plain.arrivals) <= 600 and all(len(d) <= 300 for d in plain.latency.values())
    assert plain.counts["avatar_parameters"] == 3000


def test_monitor_keeps_what_the_demo_asks_for(context):
    seen = {"n": 0}

    def first_pass():
        seen["n"] += 1
        return seen["n"] <= 100
    kept = GraphMonitor("vtb_monitor_test", context=context, keep_avatar_rows=first_pass,
                        keep_messages=lambda key: key < 1_001_000_000_000)
    feed(kept, 3000)
    assert len(kept.avatar_rows) == 100
    assert len(kept.messages) == 30, "the stamps of the first second only"
