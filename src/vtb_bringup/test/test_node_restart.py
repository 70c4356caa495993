"""The multi-process graph (one process per node, as `ros2 launch vtb_bringup vtb.launch.py`
starts it) survives losing any node: SIGKILL one, the nodes before it keep publishing and the
others stay up; start it again and the graph's output, AvatarParameters, comes back."""
import os
import signal
import time

import yaml
from vtb_msgs.msg import FaceArray, FaceStateArray, HeadPoseArray

from vtb_bringup import graph
from vtb_bringup.graph_bench import Camera, render_cycle

RATE = 10.0
# killed node -> the topics of the nodes upstream of it, which must keep coming meanwhile
UPSTREAM = {"vtb_bridge": ["faces", "head_poses", "face_state"], "vtb_gaze": ["faces", "head_poses"],
            "vtb_pose": ["faces"], "vtb_detector": []}


def node_command(spec, params_dir):
    """The node's executable with the launch file's name, namespace, parameters and remappings."""
    from ament_index_python.packages import get_package_prefix
    params = params_dir / f"{spec.name}.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": spec.parameters}}))
    exe = os.path.join(get_package_prefix(spec.package), "lib", spec.package, spec.executable)
    args = ["--ros-args", "-r", f"__node:={spec.name}", "-r", f"__ns:={spec.namespace}", "--params-file", str(params)]
    for src, dst in spec.remappings:
        args += ["-r", f"{src}:={dst}"]
    return [exe, *args]


def test_killing_and_restarting_any_node_is_survived(ros, start_process, tmp_path):
    arguments = {"outputs": "none"}
    specs = {s.name: s for s in graph.resolve(arguments)}
    namespace = next(iter(specs.values())).namespace
    topics = {**graph.resolve_topics(arguments), "avatar_parameters": graph.topic_name(namespace, "avatar_parameters")}
    # small frames at a low rate: under any shared-memory segment size, light on a busy machine
    cam = Camera(ros.context, topics, render_cycle(10, RATE, (320, 240)), RATE)
    seen = {}   # topic -> monotonic time of its last message
    for name, cls in (("faces", FaceArray), ("head_poses", HeadPoseArray), ("face_state", FaceStateArray)):
        cam.node.create_subscription(cls, graph.topic_name(namespace, name),
                                     lambda m, name=name: seen.__setitem__(name, time.monotonic()), 10)
    procs = {name: start_process(node_command(s, tmp_path), name=name) for name, s in specs.items()}

    def answered_since(t_ns):
        return any(k > t_ns for k in cam.latency_ms)

    def play_until_answered(timeout):
        t0, t_ns = time.monotonic(), cam.now_ns()
        while time.monotonic() - t0 < timeout and not answered_since(t_ns):
            assert all(p.alive() for p in procs.values()), "a node process died"
            cam.play_and_spin(1.0)
        return time.monotonic() - t0 if answered_since(t_ns) else None

    try:
        assert cam.spin_until(lambda: cam.image_pub.get_subscription_count() > 0
                              and cam.answers_sub.get_publisher_count() > 0, 90), "the graph did not come up"
        assert play_until_answered(90) is not None, "no AvatarParameters from the graph"
        recovery = {}
        for victim in ("vtb_bridge", "vtb_gaze", "vtb_pose", "vtb_detector"):
            os.killpg(procs[victim].proc.pid, signal.SIGKILL)
            procs[victim].proc.wait(10)
            killed_at = time.monotonic()
            cam.play_and_spin(3.0)
            others = {n: p for n, p in procs.items() if n != victim}
            assert all(p.alive() for p in others.values()), f"a node died with {victim}"
            for topic in UPSTREAM[victim]:
                assert seen.get(topic, 0) > killed_at + 1.0, f"{topic} stopped when {victim} was killed"
            procs[victim] = start_process(node_command(specs[victim], tmp_path), name=f"{victim}-again")
            # about 1-4 s here (the detector loads its models); generous for a loaded test machine
            back = play_until_answered(30)
            assert back is not None, f"no AvatarParameters within 30 s of restarting {victim}"
            recovery[victim] = round(back, 1)
        print(f"seconds from restart to AvatarParameters again: {recovery}")
    finally:
        cam.close()
