"""detector_lifecycle_node in its own process, driven over its lifecycle services as a system
manager (or `ros2 lifecycle set`) would: unconfigured -> configure -> activate: FaceArrays;
deactivate: none; activate again: FaceArrays; cleanup; shutdown: the process exits 0."""
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from sensor_msgs.msg import Image
from vtb_msgs.msg import FaceArray

from vtb_detector.image_msg import rgb_to_image
from vtb_detector.node import IMAGE_QOS

NODE = "/vtb_detector"


def test_lifecycle_transitions_over_the_services(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_lifecycle_node", "-r", "image:=/vtlc/image", "-r", "faces:=/vtlc/faces")
    faces = []
    ros.node.create_subscription(FaceArray, "/vtlc/faces", faces.append, 10)
    pub = ros.node.create_publisher(Image, "/vtlc/image", IMAGE_QOS)
    image = rgb_to_image(Image, astronaut_rgb)

    def state():
        return ros.call(GetState, f"{NODE}/get_state", GetState.Request()).current_state.id

    def change(transition):
        return ros.call(ChangeState, f"{NODE}/change_state",
                        ChangeState.Request(transition=Transition(id=transition)), timeout=60).success

    def faces_while_sending(seconds=2.0):
        n = len(faces)
        for _ in range(int(seconds / 0.25)):
            pub.publish(image)
            ros.spin_for(0.25)
        return faces[n:]

    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert pub.get_subscription_count() == 0, "unconfigured: not subscribed"
    assert change(Transition.TRANSITION_CONFIGURE) and state() == State.PRIMARY_STATE_INACTIVE
    assert "configured: models loaded" in proc.output()
    said = []
    ros.node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: said.extend(s for s in m.status if s.name.startswith("vtb_detector")), 10)
    ros.spin_until(lambda: said, timeout=10, what="the detector's /diagnostics")
    assert said[-1].message == "inactive: configured, waiting for activate", said[-1]
    assert faces_while_sending(1.0) == [], "inactive: no output"

    assert change(Transition.TRANSITION_ACTIVATE) and state() == State.PRIMARY_STATE_ACTIVE
    ros.spin_until(lambda: pub.get_subscription_count() == 1, what="the detector's subscription")
    got = faces_while_sending()
    assert got and len(got[-1].faces) == 1, "active: a face for each image"

    assert change(Transition.TRANSITION_DEACTIVATE) and state() == State.PRIMARY_STATE_INACTIVE
    ros.spin_until(lambda: pub.get_subscription_count() == 0, what="the subscription gone")
    ros.spin_for(0.5)   # anything in flight
    assert faces_while_sending() == [], "inactive: no FaceArray"

    assert change(Transition.TRANSITION_ACTIVATE)
    got = faces_while_sending()
    assert got and len(got[-1].faces) == 1, "active again: faces again"

    assert change(Transition.TRANSITION_DEACTIVATE) and change(Transition.TRANSITION_CLEANUP)
    assert state() == State.PRIMARY_STATE_UNCONFIGURED
    assert change(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert proc.proc.wait(timeout=10) == 0, proc.output()
    assert "Traceback" not in proc.output()


def test_diagnostics_say_the_lifecycle_state_and_a_failed_configure_says_why(ros, start_process, tmp_path):
    """/diagnostics of a managed detector that is not active say its state (before: WARN "no
    input" or nothing), and a configure that fails (no models here) is logged at ERROR with the
    reason, where `ros2 lifecycle set` users look (it prints only "Transitioning failed"), and
    is the diagnostics' ERROR message; with the models there, configure then activate works."""
    import os
    from ament_index_python.packages import get_package_prefix
    exe = f"{get_package_prefix('vtb_detector')}/lib/vtb_detector/detector_lifecycle_node"
    empty = tmp_path / "no_models"
    empty.mkdir()
    proc = start_process([exe, "--ros-args", "-r", "image:=/vtlc4/image"], name="detector_lifecycle_node",
                         env={**os.environ, "VTB_MODELS_DIR": str(empty)})
    said = []
    ros.node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: said.extend(s for s in m.status if s.name.startswith("vtb_detector")), 10)

    def latest():
        said.clear()
        ros.spin_until(lambda: said, timeout=10, what="the detector's /diagnostics")
        return said[-1]

    def change(transition):
        return ros.call(ChangeState, f"{NODE}/change_state",
                        ChangeState.Request(transition=Transition(id=transition)), timeout=60).success

    status = latest()
    assert status.level == DiagnosticStatus.OK and status.message == "unconfigured: waiting for configure", status
    assert not change(Transition.TRANSITION_CONFIGURE), "no models: configure fails"
    ros.spin_until(lambda: "configure failed" in proc.output(), timeout=5, what="the reason in the log")
    line = next(line for line in proc.output().splitlines() if "configure failed" in line)
    assert "[ERROR]" in line and "models fetch" in line, line
    status = latest()
    assert status.level == DiagnosticStatus.ERROR and status.message.startswith("unconfigured: configure failed: ")
    assert "models fetch" in status.message, status.message
    assert proc.stop() == 0


def test_shutdown_from_active_exits_cleanly(ros, start_node):
    proc = start_node("vtb_detector", "detector_lifecycle_node", "-r", "image:=/vtlc2/image")
    for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE, Transition.TRANSITION_ACTIVE_SHUTDOWN):
        assert ros.call(ChangeState, f"{NODE}/change_state", ChangeState.Request(transition=Transition(id=t)),
                        timeout=60).success, t
    assert proc.proc.wait(timeout=10) == 0, proc.output()
    assert "Traceback" not in proc.output()


def test_sigterm_while_active_and_busy_exits_cleanly(ros, start_node, astronaut_rgb):
    import os
    import signal
    proc = start_node("vtb_detector", "detector_lifecycle_node", "-r", "image:=/vtlc3/image")
    pub = ros.node.create_publisher(Image, "/vtlc3/image", IMAGE_QOS)
    for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert ros.call(ChangeState, f"{NODE}/change_state", ChangeState.Request(transition=Transition(id=t)),
                        timeout=60).success, t
    image = rgb_to_image(Image, astronaut_rgb)
    for _ in range(30):   # the worker busy when the signal comes
        pub.publish(image)
        ros.spin_for(0.03)
    os.killpg(proc.proc.pid, signal.SIGTERM)
    assert proc.proc.wait(timeout=15) == 0, proc.output()
    assert "Traceback" not in proc.output() and "context is invalid" not in proc.output()


def test_use_lifecycle_launches_the_managed_detector(monkeypatch):
    """vtb.launch.py with use_lifecycle:=true: the detector as a launch_ros LifecycleNode running
    detector_lifecycle_node; by default the plain detector_node. (launch itself stubbed.)"""
    import importlib.util
    import sys
    import types
    from pathlib import Path

    class Recorded:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class Lifecycle(Recorded):
        pass

    class Config:
        def __init__(self, name):
            self.name = name
    for name, module in {"launch": types.SimpleNamespace(LaunchDescription=Recorded),
                         "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=Recorded,
                                                                 OpaqueFunction=Recorded),
                         "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=Config),
                         "launch_ros": types.SimpleNamespace(),
                         "launch_ros.actions": types.SimpleNamespace(Node=Recorded, LifecycleNode=Lifecycle)}.items():
        monkeypatch.setitem(sys.modules, name, module)
    path = Path(__file__).parents[2] / "vtb_bringup" / "launch" / "vtb.launch.py"
    spec = importlib.util.spec_from_file_location("vtb_launch_lifecycle", path)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    description = launch.generate_launch_description()
    declared = {a.args[0]: a.kwargs["default_value"] for a in description.args[0] if a.args}
    setup = description.args[0][-1].kwargs["function"]

    def detector(**values):
        given = {**declared, **values}
        nodes = setup(types.SimpleNamespace(perform_substitution=lambda sub: given[sub.name]))
        return [n for n in nodes if n.kwargs["package"] == "vtb_detector"][0]

    plain, managed = detector(), detector(use_lifecycle="true")
    assert type(plain) is Recorded and plain.kwargs["executable"] == "detector_node"
    assert type(managed) is Lifecycle and managed.kwargs["executable"] == "detector_lifecycle_node"
    assert (managed.kwargs["name"], managed.kwargs["namespace"]) == (plain.kwargs["name"], plain.kwargs["namespace"])
