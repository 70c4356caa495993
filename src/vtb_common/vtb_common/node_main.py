"""main() of every vtb node executable: start the node, spin, stop cleanly on SIGINT and SIGTERM.

rclpy's own signal handlers shut the context down the moment SIGINT arrives, while a node's
worker thread (the detector's) may still publish into it ("publisher's context is invalid"),
and on SIGTERM `spin()` raises ExternalShutdownException (a traceback, exit 1; `ros2 launch`
escalates SIGINT to SIGTERM after 5 s, `docker stop` sends SIGTERM). Here both signals end the
spin loop (StopSignals), the executor is shut down, then the node is destroyed (its destroy_node
stops its threads), and only then is the context shut down: exit 0, no traceback. While spinning, a signal only sets a
flag the loop checks every 0.1 s: an exception raised from the handler lands wherever Python
code runs, and inside rclpy's message conversion (take_message) pybind11 turns it into
"RuntimeError: Unable to convert call argument" and a traceback (seen in CI on SIGTERM).

A lifecycle node ends the run the same way once its shutdown transition has set `finished`.
"""
from __future__ import annotations

import faulthandler
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .parameters import ParameterError


# seconds the end of a run may take (executor, node, context) before the process is ended
CLEANUP_TIMEOUT_S = 10.0


class StopSignals:
    """SIGINT and SIGTERM handlers. While `spinning` is true they only set `requested`, for the
    spin loop to see; otherwise (starting up: loading models, discovery) they raise
    KeyboardInterrupt, which stops the start-up."""

    def __init__(self):
        self.requested = False
        self.spinning = False
        self._previous = {}

    def install(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def restore(self):
        """The handlers there were before install()."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handler(self, signum, frame):
        self.requested = True
        if not self.spinning:
            raise KeyboardInterrupt

    @staticmethod
    def ignore():
        """During the clean-up: a second signal must not cut it short with a traceback."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


EXECUTORS = ("events", "single", "multi")


def make_executor(kind: str = "events"):
    """rclpy's executor by name. "events" (the default): rclpy.experimental's EventsExecutor,
    which waits for and dispatches events in C++: on the talking-head clip `./vtb run` took 27
    ms of CPU a frame with it against 39 with the SingleThreadedExecutor, whose Python wait set
    is rebuilt on every spin (`./vtb bench cpu`). "single", "multi": rclpy's executors."""
    if kind == "multi":
        return MultiThreadedExecutor()
    if kind == "single":
        return SingleThreadedExecutor()
    if kind != "events":
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    from rclpy.experimental import EventsExecutor
    return EventsExecutor()


def run_node(make_node, args=None, fatal: tuple = (), name: str = "") -> int:
    """Run `make_node()` until SIGINT or SIGTERM, or until the node's `finished` is true (a
    lifecycle node shut down); returns the exit code (0). An exception of a `fatal` type (e.g.
    a missing model) is printed as one line and gives exit code 3."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignals().install()
    node, code = None, 0
    executor = make_executor()
    try:
        node = make_node()
        executor.add_node(node)
        stop.spinning = True
        while rclpy.ok() and not stop.requested and not getattr(node, "finished", False):
            # short waits: the loop sees a signal within 0.1 s (a plain spin() waits in C)
            executor.spin_once(timeout_sec=0.1)
        if rclpy.ok() and not stop.requested:   # finished: a little longer, so the shutdown
            for _ in range(3):                  # transition's answer goes out
                executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterError, *fatal) as e:
        print(f"{name or 'node'}: {e}", file=sys.stderr)
        code = 3
    finally:
        StopSignals.ignore()
        # a clean-up that hangs anyway ends the process (exit 1) with every thread's stack on
        # stderr, rather than waiting for a SIGKILL: faulthandler's watchdog is a C thread, so it
        # fires even while the main thread holds the GIL inside rclpy
        faulthandler.dump_traceback_later(CLEANUP_TIMEOUT_S, exit=True)
        try:
            # rclpy's own order (its executor examples): the executor lets go of the node's
            # entities, then the node destroys them. The other way round, EventsExecutor.shutdown()
            # was where the entities the node had asked to destroy were finally destroyed, and it
            # hung there (2 of 200 node stops in test_node_main's signal test; py-spy:
            # EventHandler.__exit__ under executor.shutdown(); in this order 2 of 2040, one of
            # them in rclpy's Node.destroy_node, the node handle's destruction: the watchdog's case)
            executor.shutdown()
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        finally:
            faulthandler.cancel_dump_traceback_later()
    return code

