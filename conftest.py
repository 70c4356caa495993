"""Test helpers shared by every package's tests (pytest finds this file at the repository root).

Isolation: the whole test session gets its own ROS_DOMAIN_ID and localhost-only discovery, so
parallel runs on one machine (or a graph a developer has running) never see each other.
Processes started by the tests inherit it. Each test also gets its own XDG_CONFIG_HOME, so the
bridge's page settings and VTube Studio token of one test (or of the user) never reach another.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Before anything imports rclpy. Domain ids 0..101 are safe with Fast DDS's port mapping.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Jazzy, conflicts with the above


@pytest.fixture(autouse=True)
def _own_config_home(tmp_path_factory, monkeypatch):
    """A fresh XDG_CONFIG_HOME per test: a bridge that saves its page settings (any parameter
    set of mirror, sensitivities, smoothing) must not hand them to the next test's bridge."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


class RosTestNode:
    """An rclpy node in the test process with its own context and executor.
    `.node` is the rclpy node; the methods spin it until something happens or fail the test."""

    def __init__(self, name):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_once(self, timeout_sec=0.05):
        self.executor.spin_once(timeout_sec=timeout_sec)

    def spin_until(self, predicate, timeout=20.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            self.spin_once()

    def spin_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.spin_once()

    def wait_for_node(self, name, namespace="/", timeout=30.0):
        self.spin_until(lambda: (name, namespace) in self.node.get_node_names_and_namespaces(),
                        timeout=timeout, what=f"node {namespace.rstrip('/')}/{name} on the graph")

    def call(self, srv_type, name, request, timeout=20.0):
        """Call a service and wait for the answer."""
        client = self.node.create_client(srv_type, name)
        self.spin_until(client.service_is_ready, timeout, what=f"service {name}")
        future = client.call_async(request)
        self.spin_until(future.done, timeout, what=f"answer from {name}")
        self.node.destroy_client(client)
        return future.result()

    def parameters_of(self, node_name):
        """{name: (value, description)} of every parameter another node declared, asked over
        its parameter services as `ros2 param describe` would."""
        from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
        from rclpy.parameter import parameter_value_to_python
        names = self.call(ListParameters, f"{node_name}/list_parameters", ListParameters.Request()).result.names
        names = [n for n in names if n not in ("use_sim_time", "start_type_description_service")]
        values = self.call(GetParameters, f"{node_name}/get_parameters", GetParameters.Request(names=names)).values
        descs = self.call(DescribeParameters, f"{node_name}/describe_parameters",
                          DescribeParameters.Request(names=names)).descriptors
        return {n: (parameter_value_to_python(v), d.description) for n, v, d in zip(names, values, descs)}

    def set_parameters(self, node_name, **values):
        """Set another node's parameters one by one over its set_parameters service, as `ros2
        param set` does; returns {name: SetParametersResult} (successful, reason)."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        params = [Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        results = self.call(SetParameters, f"{node_name}/set_parameters",
                            SetParameters.Request(parameters=params)).results
        return dict(zip(values, results))

    def parameter_descriptors(self, node_name):
        """{name: rcl_interfaces/ParameterDescriptor} of another node's own parameters."""
        from rcl_interfaces.srv import DescribeParameters, ListParameters
        names = self.call(ListParameters, f"{node_name}/list_parameters", ListParameters.Request()).result.names
        names = [n for n in names if n not in ("use_sim_time", "start_type_description_service")]
        descs = self.call(DescribeParameters, f"{node_name}/describe_parameters",
                          DescribeParameters.Request(names=names)).descriptors
        return dict(zip(names, descs))

    def check_live_or_read_only(self, node_name, parameters, live_values, bad_values):
        """Every parameter is live (a set to `live_values[name]` succeeds) or read-only (a set
        is refused with a reason); each of `bad_values` [(name, value)] is refused with a reason."""
        descriptors = self.parameter_descriptors(node_name)
        assert set(descriptors) == {p[0] for p in parameters}
        read_only = {n for n, d in descriptors.items() if d.read_only}
        assert set(live_values) == set(descriptors) - read_only, "a value to set for every live parameter"
        for name, default, _ in parameters:
            if name in read_only:
                r = self.set_parameters(node_name, **{name: default})[name]
                assert not r.successful and "read-only" in r.reason, (name, r)
                assert descriptors[name].additional_constraints.startswith("read-only:"), name
            else:
                r = self.set_parameters(node_name, **{name: live_values[name]})[name]
                assert r.successful, (name, r.reason)
        for name, value in bad_values:
            r = self.set_parameters(node_name, **{name: value})[name]
            assert not r.successful and len(r.reason) > 10, (name, value, r)
        return read_only

    def close(self):
        import rclpy
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def ros(request):
    """A RosTestNode for this test, torn down afterwards."""
    safe = "".join(c if c.isalnum() else "_" for c in request.node.name)[:50]
    r = RosTestNode(f"vtb_test_{safe}")
    yield r
    r.close()


class Process:
    """A child process whose output goes to a file and is shown when a test fails."""

    def __init__(self, cmd, log_path: Path, env=None):
        self.cmd = [str(c) for c in cmd]
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env or os.environ.copy(), start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout=10.0) -> int:
        """SIGINT (as Ctrl-C), then SIGKILL if it does not exit."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_process(tmp_path, request):
    """start_process(cmd) -> Process; every process is stopped after the test, and its output
    is printed when the test failed."""
    procs = []

    def start(cmd, name=None, env=None):
        name = name or Path(str(cmd[0])).name
        p = Process(cmd, tmp_path / f"{name}-{len(procs)}.log", env=env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for p in procs:
            sys.stderr.write(f"\n----- output of {' '.join(p.cmd)} -----\n{p.output()}\n")


@pytest.fixture
def start_node(start_process):
    """start_node(package, executable, *ros_args) starts an installed node executable."""
    from ament_index_python.packages import get_package_prefix

    def start(package, executable, *ros_args):
        exe = Path(get_package_prefix(package)) / "lib" / package / executable
        assert exe.is_file(), f"{exe} is not installed: run ./vtb (colcon build) first"
        cmd = [exe] + (["--ros-args", *ros_args] if ros_args else [])
        return start_process(cmd, name=executable)

    return start


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # lets fixtures see whether the test failed (to print child process output)
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def check_node_executable(ros, start_node):
    """The contract of every vtb node executable: it starts, appears on the graph under its
    name, declares exactly its PARAMETERS, each with a description, and takes overrides."""

    def check(package, executable, node_name, parameters, override):
        name, value = override
        proc = start_node(package, executable, "-p", f"{name}:={value}")
        ros.wait_for_node(node_name)
        got = ros.parameters_of(node_name)
        assert set(got) == {p[0] for p in parameters}
        for pname, default, description in parameters:
            want = value if pname == name else default
            assert got[pname] == (want, description), pname
            assert len(description) > 15, f"{pname} needs a real description"
        ros.spin_until(lambda: "parameters:" in proc.output(), what="the node's parameter log line")
        assert proc.alive()
        assert proc.stop() == 0, "Ctrl-C must stop the node cleanly\n" + proc.output()
        return proc

    return check


@pytest.fixture(scope="session")
def astronaut_rgb():
    from skimage import data
    return data.astronaut()
