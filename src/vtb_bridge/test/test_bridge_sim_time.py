"""The bridge on use_sim_time (a bag replayed with /clock): the face counts as lost after
lost_after_s of the node clock, not of the wall clock, and the easing to neutral is stamped
with the simulated time."""
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from vtb_msgs.msg import AvatarParameters, FaceState, FaceStateArray, HeadPose, HeadPoseArray

from vtb_bridge.node import BridgeNode

NS = "/vtb_sim_time"
T0 = 1_000_000_000_000   # ns: sim time far from the wall clock's


def ns(stamp):
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_lost_face_and_easing_follow_the_sim_clock(ros):
    bridge = BridgeNode(context=ros.context, namespace=NS, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("lost_after_s", value=0.3), Parameter("mirror", value=False)])
    ros.executor.add_node(bridge)
    try:
        got = []
        ros.node.create_subscription(AvatarParameters, f"{NS}/avatar_parameters", got.append, 100)
        clock = ros.node.create_publisher(Clock, "/clock", QoSProfile(depth=10))
        poses_pub = ros.node.create_publisher(HeadPoseArray, f"{NS}/head_poses", 10)
        state_pub = ros.node.create_publisher(FaceStateArray, f"{NS}/face_state", 10)
        ros.spin_until(lambda: clock.get_subscription_count() and poses_pub.get_subscription_count()
                       and state_pub.get_subscription_count(), what="the bridge")

        def tick(t):
            clock.publish(Clock(clock=Time(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000)))
            ros.spin_for(0.05)

        t = T0
        for _ in range(10):    # a face turned 20 degrees, 30 fps of sim time
            stamp = Time(sec=t // 1_000_000_000, nanosec=t % 1_000_000_000)
            poses = HeadPoseArray(poses=[HeadPose(face_id="abcd", valid=True, yaw_deg=20.0)])
            poses.poses[0].pose.position.z = 0.5
            states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=1.0, eye_right_open=1.0)])
            for m in (poses, states):
                m.header.stamp, m.header.frame_id = stamp, "cam"
            tick(t)
            poses_pub.publish(poses)
            state_pub.publish(states)
            t += 33_333_333
        last_image = t - 33_333_333
        for _ in range(10):    # the sim-time flush timer runs while the clock moves
            t += 1_000_000
            tick(t)
        # then the face is gone; sim time creeps on at 1/10 of the wall clock's pace: 1.5 s of
        # wall clock, 0.15 s of sim time, less than lost_after_s: no easing yet
        for _ in range(30):
            t += 5_000_000
            tick(t)
        assert len(got) == 10, len(got)
        assert all(ns(m.header.stamp) <= last_image for m in got), \
            [ns(m.header.stamp) - last_image for m in got]
        # past lost_after_s of sim time: easing, stamped with the sim clock
        for _ in range(20):
            t += 33_333_333
            tick(t)
        easing = got[10:]
        assert easing, "no easing to neutral after lost_after_s of sim time"
        assert all(last_image + 300_000_000 <= ns(m.header.stamp) <= t for m in easing), \
            [(ns(m.header.stamp) - last_image) / 1e9 for m in easing]
    finally:
        ros.executor.remove_node(bridge)
        bridge.destroy_node()
