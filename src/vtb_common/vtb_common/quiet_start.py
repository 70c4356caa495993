"""The first thing a node executable runs: Ctrl-C or SIGTERM while the node is still importing
(numpy, OpenCV, LiteRT, rclpy and the messages take 1-4 s) ends it quietly, exit 0.

The console script imports its entry module before anything else; if that module is the node's
own, its imports run with Python's default SIGINT handler and a Ctrl-C in those seconds printed
a KeyboardInterrupt traceback from deep inside an import (23 of 36 node processes of a
`ros2 launch` stopped in its first seconds did, exit -2 or 1). So each package's `entry` module
imports only this, which installs a quiet handler and then imports the node; run_node's
StopSignals takes over once rclpy is up. No rclpy here.
"""
from __future__ import annotations

import importlib
import os
import signal


def _quiet_exit(signum, frame):
    # Nothing is running yet, so there is nothing to clean up. Not SystemExit: raised while a C
    # extension initialises (rclpy's _rclpy_pybind11) it turns into "ImportError: initialization
    # failed" with a traceback, exit 1 (seen at 0.3 s in the test).
    os._exit(0)


def start(module: str, function: str = "main"):
    """Quiet SIGINT and SIGTERM, then import `module` and call its `function`."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _quiet_exit)
    return getattr(importlib.import_module(module), function)()
