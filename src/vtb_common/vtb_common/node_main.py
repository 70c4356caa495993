"""main() of every vtb node executable: start the node, spin, stop cleanly on SIGINT and SIGTERM.

rclpy's own signal handlers shut the context down the moment SIGINT arrives, while a node's
worker thread (the detector's) may still publish into it ("publisher's context is invalid"),
and on SIGTERM `spin()` raises ExternalShutdownException (a traceback, exit 1; `ros2 launch`
escalates SIGINT to SIGTERM after 5 s, `docker stop` sends SIGTERM). Here both signals raise
KeyboardInterrupt in the main thread, the node is destroyed first (its destroy_node stops its
threads), and only then is the context shut down: exit 0, no traceback.

A lifecycle node ends the run the same way once its shutdown transition has set `finished`.
"""
from __future__ import annotations

import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_node(make_node, args=None, fatal: tuple = (), name: str = "") -> int:
    """Run `make_node()` until SIGINT or SIGTERM, or until the node's `finished` is true (a
    lifecycle node shut down); returns the exit code (0). An exception of a `fatal` type (e.g.
    a missing model) is printed as one line and gives exit code 3."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    node, code = None, 0
    executor = SingleThreadedExecutor()
    try:
        node = make_node()
        executor.add_node(node)
        while rclpy.ok() and not getattr(node, "finished", False):
            # short waits: the signal handler runs between them (a plain spin() waits in C)
            executor.spin_once(timeout_sec=0.1)
        if rclpy.ok():   # finished: a little longer, so the shutdown transition's answer goes out
            for _ in range(3):
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except fatal as e:
        print(f"{name or 'node'}: {e}", file=sys.stderr)
        code = 3
    finally:
        # a second signal during the clean-up must not cut it short with a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return code

