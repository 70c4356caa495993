"""The graph with one process per node, as `ros2 launch vtb_bringup vtb.launch.py` starts it:
the same executables, node names, namespaces, parameters and remappings (graph.resolve), each
node its own process. For `./vtb bench soak --processes`, which measures what the multi-process
graph costs on machines that have no `ros2 launch` (launch and ros2cli are not wheels here).

Not a launcher for users (no events, respawn or lifecycle management: use `ros2 launch`). SIGINT
and SIGTERM go to every node; it ends when they have, with the first non-zero exit code.

    python -m vtb_bringup.process_graph [--config YAML] [--outputs server] [other graph arguments]
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from . import graph


def node_command(spec: graph.NodeSpec, params_dir: Path) -> list[str]:
    """The executable of `spec` with its --ros-args, as launch_ros builds them."""
    from ament_index_python.packages import get_package_prefix
    exe = Path(get_package_prefix(spec.package)) / "lib" / spec.package / spec.executable
    params = params_dir / f"{spec.name}.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(spec.parameters)}}))
    args = ["--ros-args", "-r", f"__node:={spec.name}", "-r", f"__ns:={spec.namespace}",
            "--params-file", str(params)]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return [str(exe), *args]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vtb_bringup.process_graph", description=__doc__.split("\n\n")[0])
    for name, default, description in graph.ARGUMENTS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=description)
    args = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    try:
        specs = graph.resolve(args)
    except graph.GraphError as e:
        print(f"process_graph: {e}", file=sys.stderr)
        return 2
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="vtb-process-graph-") as tmp:
        procs = [subprocess.Popen(node_command(spec, Path(tmp))) for spec in specs]
        print("process_graph: " + ", ".join(f"{s.name} (pid {q.pid})" for s, q in zip(specs, procs)),
              file=sys.stderr, flush=True)
        while not stopping and all(q.poll() is None for q in procs):
            time.sleep(0.1)
        for q in procs:                      # as ros2 launch: SIGINT, then SIGTERM after 5 s
            if q.poll() is None:
                q.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5.0
        for q in procs:
            try:
                q.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                q.terminate()
                q.wait(5)
    codes = [q.returncode for q in procs]
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main())
