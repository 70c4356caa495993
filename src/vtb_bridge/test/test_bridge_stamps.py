"""Every AvatarParameters message carries its image's stamp and frame_id, once: an image whose
face_state comes more than match_wait_s after its head pose went out with stamp 0 and no
frame_id, then again when the face state came. The plain PartMatcher, then the bridge node
over rclpy in this process; and the bridge's parameters: live ones checked, the rest read-only,
a bad value given at start refused."""
import socket

import pytest
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter
from vtb_msgs.msg import AvatarParameters, FaceState, FaceStateArray, HeadPose, HeadPoseArray

from vtb_bridge.node import PARAMETERS, BridgeNode, ParameterError
from vtb_bridge.part_matcher import PartMatcher, header_source, part_of

PARTS = ("faces", "head_poses", "gaze", "face_state")


def test_an_image_goes_out_once_and_a_late_part_is_replaced_by_its_own():
    m = PartMatcher(PARTS, wait_s=0.05)
    assert m.add((1, 0), "head_poses", "pose", now=0.0) is None
    assert m.due(now=0.04) == []
    [(key, entry)] = m.due(now=0.1)                      # waited long enough: out without face_state
    assert key == (1, 0) and entry["head_poses"] == "pose" and "face_state" not in entry
    assert header_source(entry) == "pose", "a pose-only image keeps the pose's header"
    assert m.add((1, 0), "face_state", "state", now=0.12) is None   # before: a second entry, out again
    assert m.due(now=1.0) == [] and m.late == 0 and "face_state" in m.held
    for part in PARTS:                                   # a complete image goes out at once, once
        entry = m.add((2, 0), part, part, now=2.0)
    assert set(entry) == {*PARTS, "arrived"} and header_source(entry) == "face_state"
    assert part_of(entry, "face_state") == "face_state", "its own face state, not the held older one"
    assert m.late == 1 and not m.held, "the held face state was replaced by a newer one: dropped, counted"
    assert m.due(now=9.0) == [] and not m.pending


def test_a_late_part_goes_out_with_the_next_image_that_lacks_its_own():
    """A starved CPU: every face state comes after its image went out. Each reaches the avatar
    with the next image (before: every one dropped as late, the eyes and mouth never moved)."""
    m = PartMatcher(PARTS, wait_s=0.05)

    def frame(i):                                        # stamps of a 30 fps camera
        return (100, 33_000_000 * i)

    sent = []
    for i in range(1, 5):
        m.add(frame(i), "head_poses", f"pose{i}", now=float(i))
        sent += m.due(now=i + 0.1)                       # out without its face state
        m.add(frame(i), "face_state", f"state{i}", now=i + 0.2)
    assert [k for k, _ in sent] == [frame(i) for i in range(1, 5)], "each image once, in order"
    assert [part_of(e, "face_state") for _, e in sent] == [None, "state1", "state2", "state3"]
    assert [header_source(e) for _, e in sent] == ["pose1", "pose2", "pose3", "pose4"], \
        "a held part never gives the image its header: the image's own stamp goes out"
    assert m.late == 0 and m.held["face_state"][0] == frame(4)
    assert m.stats() == {"images": 4, "late_parts_carried": 3, "late_parts_dropped": 0,
                         "images_without": {"faces": 4, "head_poses": 0, "gaze": 4, "face_state": 1}}
    # two late ones before the next image: the newer wins, the older is counted
    m.add(frame(3), "gaze", "gaze-old", now=5.0)
    m.add(frame(4), "gaze", "gaze-new", now=5.0)
    m.add(frame(2), "gaze", "gaze-older", now=5.0)      # older than the one held: dropped at once
    assert m.late == 2 and m.held["gaze"] == (frame(4), "gaze-new")
    # a held part more than hold_s (0.5 s) older than the next image is not used
    m.add(frame(30), "head_poses", "pose30", now=6.0)
    [(_, entry)] = m.due(now=7.0)
    assert part_of(entry, "face_state") is None and part_of(entry, "gaze") is None and m.late == 4


def test_remembered_stamps_are_bounded():
    m = PartMatcher(PARTS, wait_s=0.0, remember=10)
    for i in range(100):
        m.add((i, 0), "faces", i, now=float(i))
        m.due(now=i + 1.0)
    assert len(m._done) == 10


def make_bridge(ros, ns, **overrides):
    params = [Parameter(k, value=v) for k, v in overrides.items()]
    node = BridgeNode(context=ros.context, namespace=ns, parameter_overrides=params)
    ros.executor.add_node(node)
    return node


def test_late_face_state_gives_one_message_with_the_images_stamp(ros):
    """head_poses now, face_state 150 ms later (match_wait_s 0.05): one AvatarParameters, with
    the image's stamp and frame_id (before: one with stamp 0 and no frame_id, then a second);
    each late face state (mouth open) goes out with the next image, none is dropped."""
    bridge = make_bridge(ros, "/vtb_stamps", mirror=False, lost_after_s=30.0)   # no easing here
    try:
        got = []
        ros.node.create_subscription(AvatarParameters, "/vtb_stamps/avatar_parameters", got.append, 100)
        poses_pub = ros.node.create_publisher(HeadPoseArray, "/vtb_stamps/head_poses", 10)
        state_pub = ros.node.create_publisher(FaceStateArray, "/vtb_stamps/face_state", 10)
        ros.spin_until(lambda: poses_pub.get_subscription_count() and state_pub.get_subscription_count()
                       and ros.node.count_publishers("/vtb_stamps/avatar_parameters"), what="the bridge")
        stamps = [Time(sec=1000, nanosec=5000 + 33_000_000 * i) for i in range(3)]   # 30 fps
        for i, stamp in enumerate(stamps):
            poses = HeadPoseArray(poses=[HeadPose(face_id="abcd", valid=True, yaw_deg=10.0)])
            poses.poses[0].pose.position.z = 0.5
            states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=1.0 - 0.4 * i,
                                                      eye_right_open=1.0, mouth_open=0.5)])
            for m in (poses, states):
                m.header.stamp, m.header.frame_id = stamp, "cam"
            poses_pub.publish(poses)
            ros.spin_for(0.15)
            state_pub.publish(states)
            ros.spin_for(0.1)
        ros.spin_for(0.3)
        out = [((m.header.stamp.sec, m.header.stamp.nanosec), m.header.frame_id) for m in got]
        assert out == [((s.sec, s.nanosec), "cam") for s in stamps], out
        assert bridge.matcher.late == 0
        eye = [dict(zip(m.names, m.values))["ParamEyeLOpen"] for m in got]
        # the first image had no face state yet (the eye at its neutral, open); the second and
        # third carry the first's and the second's (1.0, then 0.6; no smoothing on the eyes)
        assert eye == pytest.approx([1.0, 1.0, 0.6], abs=1e-6), eye
    finally:
        ros.executor.remove_node(bridge)
        bridge.destroy_node()


LIVE_VALUES = {"lost_after_s": 0.5, "match_wait_s": 0.1, "server_allowed_hosts": "vtb.example, [::1]:9000",
               "vmc_host": "localhost", "vmc_port": 39540, "vmc_perfect_sync": False,
               "mirror": False, "head_sensitivity": 1.5, "eye_sensitivity": 0.5, "smoothing": 2.0}
BAD_VALUES = [("vmc_port", 70000), ("vmc_port", 0), ("vmc_host", ""), ("vmc_host", "a b"),
              ("server_allowed_hosts", "a b"), ("server_allowed_hosts", "x:99999"),
              ("match_wait_s", -1.0), ("lost_after_s", 0.0), ("vmc_perfect_sync", 3),
              ("head_sensitivity", 4.0), ("smoothing", -1.0), ("mirror", 1)]


def test_parameters_are_live_and_checked_or_read_only(ros):
    bridge = make_bridge(ros, "/vtb_params")
    try:
        read_only = ros.check_live_or_read_only("/vtb_params/vtb_bridge", PARAMETERS, LIVE_VALUES, BAD_VALUES)
        assert "vmc_port" not in read_only and "server_port" in read_only
        assert bridge.p["vmc_port"] == 39540 and bridge.matcher.wait_s == 0.1
    finally:
        ros.executor.remove_node(bridge)
        bridge.destroy_node()


@pytest.mark.parametrize("name, value", [("vmc_port", 70000), ("vmc_host", ""), ("server_port", 65536),
                                         ("server_allowed_hosts", "a/b")])
def test_a_bad_value_at_start_is_refused_with_the_reason(ros, name, value):
    """Before: vmc_port 70000 was accepted and every frame then failed with OverflowError."""
    with pytest.raises(ParameterError, match=name):
        make_bridge(ros, "/vtb_bad_start", **{name: value})


def test_vmc_port_set_live_retargets_the_vmc_output(ros):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.01)
    bridge = make_bridge(ros, "/vtb_vmc", vmc_enabled=True, vmc_port=9)
    try:
        r = ros.set_parameters("/vtb_vmc/vtb_bridge", vmc_port=rx.getsockname()[1])["vmc_port"]
        assert r.successful, r.reason
        states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=1.0, eye_right_open=1.0)])
        states.header.stamp = Time(sec=5)
        bridge.on_part("face_state", states)
        ros.spin_for(0.2)                                   # out by match_wait_s
        assert rx.recv(65536).startswith(b"#bundle")
    finally:
        rx.close()
        ros.executor.remove_node(bridge)
        bridge.destroy_node()
