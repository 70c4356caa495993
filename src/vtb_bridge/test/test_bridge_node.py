"""The bridge node in its own process: perception in (stamp-matched), AvatarParameters and
robot joints out; when the face is lost, back to neutral."""
import math

from sensor_msgs.msg import JointState
from vtb_msgs.msg import (AvatarParameters, Face, FaceArray, FaceState, FaceStateArray, Gaze, GazeArray, HeadPose,
                          HeadPoseArray)


SHAPES = {"eyeBlinkLeft": 0.75, "eyeBlinkRight": 0.0, "jawOpen": 0.5, "mouthSmileLeft": 0.25, "tongueOut": 0.0}


def perception(stamp, yaw=20.0, pitch=-10.0, roll=5.0, gaze_yaw=12.0, left_open=0.2):
    faces = FaceArray(faces=[Face(id="abcd")])
    faces.faces[0].bbox.width = faces.faces[0].bbox.height = 100.0
    poses = HeadPoseArray(poses=[HeadPose(face_id="abcd", valid=True, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)])
    gazes = GazeArray(gazes=[Gaze(face_id="abcd", combined_yaw_deg=gaze_yaw, combined_pitch_deg=0.0,
                                  left_valid=True, right_valid=True)])
    states = FaceStateArray(states=[FaceState(face_id="abcd", eye_left_open=left_open, eye_right_open=1.0,
                                              mouth_open=0.6, blendshape_names=list(SHAPES),
                                              blendshapes=list(SHAPES.values()))])
    for m in (faces, poses, gazes, states):
        m.header.stamp = stamp
        m.header.frame_id = "cam"
    return faces, poses, gazes, states


def test_avatar_parameters_from_matched_perception_then_neutral(ros, start_node, fixed_gaze_config):
    proc = start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_t", "-p", "joint_states_enabled:=true",
                      "-p", f"config_file:={fixed_gaze_config}",
                      "-p", "mirror:=false", "-p", "lost_after_s:=0.2")
    params, joints = [], []
    ros.node.create_subscription(AvatarParameters, "/vtb_t/avatar_parameters", params.append, 100)
    ros.node.create_subscription(JointState, "/vtb_t/joint_states", joints.append, 100)
    types = (FaceArray, HeadPoseArray, GazeArray, FaceStateArray)
    pubs = [ros.node.create_publisher(t, f"/vtb_t/{n}", 10)
            for t, n in zip(types, ("faces", "head_poses", "gaze", "face_state"))]
    ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                   and ros.node.count_publishers("/vtb_t/avatar_parameters") > 0, what="the bridge node")

    for i in range(30):
        stamp = ros.node.get_clock().now().to_msg()
        for pub, msg in zip(pubs, perception(stamp)):
            pub.publish(msg)
        ros.spin_for(1 / 30)
    ros.spin_until(lambda: len(params) >= 25, what="avatar parameters")
    last = dict(zip(params[-1].names, params[-1].values))
    assert params[-1].face_id == "abcd" and params[-1].header.frame_id == "cam"
    # mirror off, Live2D's signs: roll +5 (the user's own right shoulder) tilts to the screen's left
    assert abs(last["ParamAngleX"] - 20) < 0.5 and abs(last["ParamAngleY"] - 10) < 0.5 and abs(last["ParamAngleZ"] + 5) < 0.5
    assert abs(last["ParamEyeBallX"] - 0.4) < 0.02 and last["ParamEyeLOpen"] < 0.25 and last["ParamEyeROpen"] > 0.95
    assert abs(last["ParamMouthOpenY"] - 0.6) < 0.02
    # the ARKit blendshapes follow the Live2D parameters under their own names (mirror off: as sent)
    assert params[-1].names[-len(SHAPES):] == list(SHAPES)
    assert all(abs(last[k] - v) < 0.01 for k, v in SHAPES.items()), {k: last[k] for k in SHAPES}
    j = dict(zip(joints[-1].name, joints[-1].position))
    assert abs(j["neck_yaw"] - math.radians(20)) < 0.02 and abs(j["eye_pan"] - math.radians(12)) < 0.02

    # the face is gone: the parameters ease back to neutral, and stop once there
    n = len(params)
    ros.spin_for(2.0)
    tail = [dict(zip(m.names, m.values)) for m in params[n:]]
    assert tail, "the node keeps publishing while it eases back"
    xs = [t["ParamAngleX"] for t in tail]
    assert all(a >= b - 1e-6 for a, b in zip(xs, xs[1:])) and abs(xs[-1]) < 0.1
    assert abs(tail[-1]["ParamEyeLOpen"] - 1.0) < 0.01
    assert tail[-1]["jawOpen"] < 0.01 and tail[-1]["eyeBlinkLeft"] < 0.01
    settled = len(params)
    ros.spin_for(0.5)
    assert len(params) == settled, "nothing more once neutral"
    assert proc.alive()


def test_a_missing_gaze_or_pose_is_tolerated(ros, start_node):
    start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_u", "-p", "mirror:=false")
    params = []
    ros.node.create_subscription(AvatarParameters, "/vtb_u/avatar_parameters", params.append, 100)
    pub = ros.node.create_publisher(FaceStateArray, "/vtb_u/face_state", 10)
    ros.spin_until(lambda: pub.get_subscription_count() > 0, what="the bridge node")
    for _ in range(10):
        pub.publish(perception(ros.node.get_clock().now().to_msg())[3])  # face state only
        ros.spin_for(1 / 30)
    ros.spin_until(lambda: params, what="parameters from the face state alone")
    last = dict(zip(params[-1].names, params[-1].values))
    assert abs(last["ParamMouthOpenY"] - 0.6) < 0.05 and abs(last["ParamAngleX"]) < 1e-6


def bad_perceptions(stamp):
    """One image's perception each, with one bad value of the kinds the issue tried."""
    out = []
    for yaw, pitch, roll in ((math.nan, 0.0, 0.0), (0.0, math.inf, 0.0), (0.0, 0.0, -math.inf), (1e6, 0.0, 0.0)):
        m = perception(stamp)
        m[1].poses[0].yaw_deg, m[1].poses[0].pitch_deg, m[1].poses[0].roll_deg = yaw, pitch, roll
        out.append(m)
    for pos in ((math.nan, 0.0, 0.5), (0.0, math.inf, 0.5), (0.0, 0.0, -0.5)):
        m = perception(stamp, yaw=math.nan)          # a NaN angle too: the whole pose must go
        m[1].poses[0].pose.position.x, m[1].poses[0].pose.position.y, m[1].poses[0].pose.position.z = pos
        out.append(m)
    m = perception(stamp, yaw=math.nan)
    m[1].poses[0].valid = False
    out.append(m)
    m = perception(stamp, yaw=math.nan)
    m[1].poses[0].face_id = "ffff"                  # matches no face
    out.append(m)
    out.append(perception(stamp, gaze_yaw=math.nan))
    out.append(perception(stamp, left_open=math.nan))
    m = perception(stamp)
    m[3].states[0].mouth_open = math.inf
    out.append(m)
    return out


def test_one_bad_input_never_poisons_the_bridge(ros, start_node, fixed_gaze_config):
    """Over DDS: good perception, then one message each with a NaN/inf/absurd pose, position,
    valid=false, an unknown face id, a NaN gaze and NaN/inf face state, then good again: every
    AvatarParameters message is finite, and the good ones after are correct (before: NaN for good)."""
    proc = start_node("vtb_bridge", "bridge_node", "-r", "__ns:=/vtb_bad", "-p", "mirror:=false",
                      "-p", f"config_file:={fixed_gaze_config}")
    params = []
    ros.node.create_subscription(AvatarParameters, "/vtb_bad/avatar_parameters", params.append, 200)
    types = (FaceArray, HeadPoseArray, GazeArray, FaceStateArray)
    pubs = [ros.node.create_publisher(t, f"/vtb_bad/{n}", 10)
            for t, n in zip(types, ("faces", "head_poses", "gaze", "face_state"))]
    ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                   and ros.node.count_publishers("/vtb_bad/avatar_parameters") > 0, what="the bridge node")

    def publish(msgs):
        for pub, msg in zip(pubs, msgs):
            pub.publish(msg)
        ros.spin_for(1 / 30)

    for _ in range(10):
        publish(perception(ros.node.get_clock().now().to_msg()))
    for bad in range(len(bad_perceptions(ros.node.get_clock().now().to_msg()))):
        publish(bad_perceptions(ros.node.get_clock().now().to_msg())[bad])
    n_bad = len(params)
    for _ in range(30):
        publish(perception(ros.node.get_clock().now().to_msg(), yaw=-15.0, gaze_yaw=6.0, left_open=0.9))
    ros.spin_until(lambda: len(params) >= n_bad + 25, what="avatar parameters after the bad ones")
    assert all(math.isfinite(v) for m in params for v in m.values), "a non-finite AvatarParameters went out"
    last = dict(zip(params[-1].names, params[-1].values))
    assert abs(last["ParamAngleX"] + 15) < 0.5 and abs(last["ParamAngleY"] - 10) < 0.5
    assert abs(last["ParamEyeBallX"] - 0.2) < 0.02 and abs(last["ParamEyeLOpen"] - 0.9) < 0.02
    assert abs(last["ParamMouthOpenY"] - 0.6) < 0.02
    assert proc.alive()
