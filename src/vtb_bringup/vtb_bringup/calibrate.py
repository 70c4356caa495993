"""`vtb calibrate [--reset]`: the avatar's neutral pose from a terminal.

The bridge node offers calibrate_neutral and reset_neutral (std_srvs/Trigger); the built-in
page's button asks the same over Socket.IO. A user of the NodeServer, a VMC receiver or VTube
Studio has neither a page nor `ros2 service call` at hand, so this finds every running bridge on
the ROS graph (any namespace: `./vtb run` and `ros2 launch` alike, on this ROS_DOMAIN_ID) and
calls its service, printing the bridge's answer. Exit 0 when every bridge did it, 1 when one
refused (e.g. no face seen yet), 2 when none was found or one did not answer.
"""
from __future__ import annotations

import sys
import time

TRIGGER_TYPE = "std_srvs/srv/Trigger"


def find_services(node, name: str, timeout: float) -> list[str]:
    """Every service called `name` (its last part) of the Trigger type, waiting up to `timeout`
    seconds for discovery; a little longer once one is seen, for the others to show up."""
    def named():
        return sorted(n for n, types in node.get_service_names_and_types()
                      if n.rsplit("/", 1)[-1] == name and TRIGGER_TYPE in types)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if named():
            time.sleep(0.3)
            return named()
        time.sleep(0.1)
    return named()


def call(node, service: str, timeout: float):
    """(success, message) of one Trigger call, or (None, why) when it got no answer."""
    import rclpy
    from std_srvs.srv import Trigger
    client = node.create_client(Trigger, service)
    try:
        if not client.wait_for_service(timeout_sec=timeout):
            return None, f"not available within {timeout:g} s"
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        if not future.done() or future.result() is None:
            return None, f"no answer within {timeout:g} s"
        return future.result().success, future.result().message
    finally:
        node.destroy_client(client)


def run_calibrate(reset: bool = False, service: str | None = None, timeout: float = 10.0, echo=print) -> int:
    import rclpy
    name = "reset_neutral" if reset else "calibrate_neutral"
    rclpy.init(args=[])
    node = rclpy.create_node("vtb_calibrate", start_parameter_services=False)
    try:
        services = [service] if service else find_services(node, name, timeout)
        if not services:
            echo(f"vtb calibrate: no vtb bridge found (no {name} service within {timeout:g} s): start the graph "
                 f"(./vtb run, ./vtb demo or ros2 launch vtb_bringup vtb.launch.py) on the same ROS_DOMAIN_ID",
                 file=sys.stderr)
            return 2
        worst = 0
        for s in services:
            ok, message = call(node, s, timeout)
            if ok:
                echo(f"{s}: {message}")
            else:
                echo(f"{s}: {'refused' if ok is False else 'no answer'}: {message}", file=sys.stderr)
            worst = max(worst, 0 if ok else 1 if ok is False else 2)
        return worst
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
