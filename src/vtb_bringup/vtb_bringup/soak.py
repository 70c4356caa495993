"""`./vtb bench soak`: the graph for minutes on end, to see that memory, CPU and latency stay flat.

The graph runs as a user runs it, in a child process: `vtb run` with the built-in avatar server
on (a free port) and a page client connected to it (python-socketio, reading every `result_data`
event, as the browser page does). This process plays the camera as `./vtb bench graph` does: the
rendered clip of a real face, forth and back so the loop has no jump, at 30 fps 640x480, rendered
before the start so the graph's RSS holds none of it; latency = arrival of /avatar_parameters -
the image stamp, for the stamps sent (the bridge's easing frames are not answers).

Every `sample_every` seconds (10): RSS of the graph (the process and its children, from /proc),
its CPU % of one core over the window, its open file descriptors, and latency p50/p95 over the
window. At the end, after the warm-up (the first minute: models loading, caches filling) is left
out: the RSS slope (MB/min, linear least squares), the latency trend (median of the last third of
the answers against the first third) and pass/fail against the goals.
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from .graph_bench import VGA, Camera, loadavg, render_cycle, stop
from .monitor import stamp_ns

SAMPLE_EVERY_S, WARMUP_S = 10.0, 60.0
CLIP_FRAMES = 150   # `vtb run --clip`'s default
RSS_SLOPE_GOAL, RSS_GOAL_MB, LATENCY_DRIFT_GOAL = 0.1, 400.0, 0.20   # MB/min, MB, last/first third - 1


# /proc readings of the graph: its process and every descendant -----------------------------
def process_tree(root: int) -> list[int]:
    """`root` and its descendants (a process that starts helpers counts them too)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue    # gone meanwhile
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_reading(pids: list[int]) -> dict:
    """RSS (MB), CPU seconds (user + system) and open fds, summed over `pids`."""
    rss = cpu = fds = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                rss += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0) / 1024.0
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, ValueError, IndexError):
            continue
    return {"rss_mb": rss, "cpu_s": cpu, "fds": int(fds), "processes": len(pids)}


# what this process watches -----------------------------------------------------------------
class PageClient:
    """The avatar page's part: a Socket.IO client on the built-in server, reading every event."""

    def __init__(self, url: str, namespace: str = "/kizuna", event: str = "result_data"):
        import socketio
        self.url, self.namespace, self.events = url, namespace, 0
        self.sio = socketio.Client(reconnection=True, logger=False, engineio_logger=False)
        self.sio.on(event, self._on_event, namespace=namespace)

    def _on_event(self, data):
        self.events += 1

    def connect(self, timeout: float) -> bool:
        import socketio
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sio.connect(self.url, namespaces=[self.namespace], transports=["websocket"], wait_timeout=3)
                return True
            except socketio.exceptions.ConnectionError:   # the server is not up yet
                time.sleep(1.0)
        return False

    @property
    def connected(self) -> bool:
        return self.sio.connected

    def close(self):
        self.sio.disconnect()   # nothing to do when already gone with the graph


class Listener:
    """With the clip played inside the graph's process (`vtb run --clip --loop`): this process
    only listens. The image stamps are those of /faces (small messages: the images are not copied
    here); latency = arrival of /avatar_parameters - the stamp, for the stamps seen on /faces."""

    late = 0    # frames are sent by the graph itself

    def __init__(self, context, topics: dict):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from vtb_msgs.msg import AvatarParameters, FaceArray
        self.node = rclpy.create_node("vtb_soak_listener", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.sent, self.latency_ms = {}, {}   # as Camera's: stamp ns -> True; stamp ns -> ms
        self.faces_sub = self.node.create_subscription(FaceArray, topics["faces"], self.on_faces, 10)
        self.answers_sub = self.node.create_subscription(AvatarParameters, topics["avatar_parameters"],
                                                         self.on_answer, 10)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def on_faces(self, msg):
        self.sent[stamp_ns(msg.header.stamp)] = True

    def on_answer(self, msg):
        now, key = self.now_ns(), stamp_ns(msg.header.stamp)
        if key in self.sent and key not in self.latency_ms:
            self.latency_ms[key] = (now - key) / 1e6

    def ready(self) -> bool:
        return self.faces_sub.get_publisher_count() > 0 and self.answers_sub.get_publisher_count() > 0

    def spin_until(self, predicate, timeout: float, alive=lambda: True) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or not alive():
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def play_and_spin(self, seconds: float, every=None):
        end, next_call = time.monotonic() + seconds, 0.0
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)
            if every is not None and time.monotonic() >= next_call:
                next_call = time.monotonic() + 0.2
                every()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


# the soak ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def soak_config(directory: Path, port: int) -> Path:
    """The default graph YAML with the bridge's server on `port` (8000 may be taken)."""
    from . import graph
    data = yaml.safe_load(graph.default_config().read_text())
    for node in data["nodes"]:
        if node["executable"] == "bridge_node":
            node.setdefault("parameters", {})["server_port"] = port
    path = directory / "vtb-soak.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def percentile(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def verdict(samples: list[dict], latency: list[tuple], warmup: float) -> dict:
    """The goals judged on what came after the warm-up. `latency`: (seconds since start, ms)."""
    steady = [s for s in samples if s["t_s"] >= warmup]
    slope = None
    if len(steady) >= 2:
        t_min = np.array([s["t_s"] for s in steady]) / 60.0
        slope = round(float(np.polyfit(t_min, [s["rss_mb"] for s in steady], 1)[0]), 3)
    rss_max = round(max(s["rss_mb"] for s in samples), 1) if samples else None
    lat = [ms for t, ms in latency if t >= warmup]
    third = len(lat) // 3
    first = round(float(np.median(lat[:third])), 2) if third else None
    last = round(float(np.median(lat[-third:])), 2) if third else None
    drift = round(last / first - 1.0, 3) if first else None
    out = {
        "rss_slope_mb_per_min": {"value": slope, "goal": RSS_SLOPE_GOAL,
                                 "passed": slope is not None and slope < RSS_SLOPE_GOAL},
        "graph_rss_mb": {"value": rss_max, "goal": RSS_GOAL_MB, "passed": rss_max is not None and rss_max < RSS_GOAL_MB},
        "latency_flat": {"p50_first_third_ms": first, "p50_last_third_ms": last, "drift": drift,
                         "goal": LATENCY_DRIFT_GOAL, "passed": drift is not None and drift <= LATENCY_DRIFT_GOAL},
    }
    out["passed"] = all(v["passed"] for v in out.values())
    return out


def run_soak(minutes: float = 30.0, sample_every: float = SAMPLE_EVERY_S, warmup: float | None = None,
             rate: float = 30.0, size=VGA, frames: int = 60, in_process: bool = False, processes: bool = False,
             echo=print) -> dict:
    """The graph for `minutes` (after it answers its first frame), sampled every `sample_every` s.
    `warmup`: seconds left out of the verdict (default one minute, or a fifth of a shorter soak).
    `in_process`: the graph plays the clip itself, as a user runs it (`vtb run --clip --loop`,
    its 150 frames at 30 fps VGA); this process then only listens. `processes`: one process per
    node, as `ros2 launch` starts them (vtb_bringup.process_graph), fed over DDS; the CPU and
    memory are then the sum over the node processes."""
    if processes and in_process:
        raise ValueError("processes: the nodes are fed over DDS (in_process plays the clip inside vtb run)")
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from . import graph
    seconds = 60.0 * minutes
    warmup = min(WARMUP_S, seconds / 5) if warmup is None else warmup
    # a domain of its own, localhost only (as ./vtb bench graph): no other graph answers
    domain = 1 + os.getpid() % 100
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    arguments = {"outputs": "server"}
    topics = {**graph.resolve_topics(arguments),
              **{t: graph.topic_name(graph.resolve(arguments)[0].namespace, t) for t in ("avatar_parameters", "faces")}}
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
    if in_process:
        frames, rate, size, cycle = CLIP_FRAMES, 30.0, VGA, ()
        cam = Listener(context, topics)
        ready = cam.ready
    else:
        echo(f"bench soak: rendering {frames} frames of {size[0]}x{size[1]}")
        cycle = render_cycle(frames, rate, size)
        cam = Camera(context, topics, cycle, rate)
        ready = lambda: cam.image_pub.get_subscription_count() > 0 and cam.answers_sub.get_publisher_count() > 0
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="vtb-soak-")
    log_path = Path(tmp.name) / "graph.log"
    source = ["--clip", "--loop", "--frames", str(CLIP_FRAMES)] if in_process else []
    config = ["--config", str(soak_config(Path(tmp.name), port))]
    if processes:
        cmd = [sys.executable, "-m", "vtb_bringup.process_graph", "--outputs", "server", *config]
        graph_command = "one process per node (as ros2 launch), --outputs server"
    else:
        cmd = [sys.executable, "-m", "vtb_bringup.cli", "run", *source, "--outputs", "server", "--stats-every", "0",
               *config]
        graph_command = "vtb run " + " ".join(source + ["--outputs", "server"])
    page = PageClient(f"http://127.0.0.1:{port}")
    log = open(log_path, "w")
    # its own session: a Ctrl-C at the terminal reaches this process, which then stops the graph
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    alive = lambda: proc.poll() is None

    def output() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    samples, code, t0_ns = [], None, 0
    load_before = loadavg()
    try:
        echo(f"bench soak: graph process {proc.pid} starting ({graph_command}, server on port {port})")
        if not cam.spin_until(ready, 120, alive):
            raise RuntimeError(f"the graph did not come up on the topics (exit {proc.poll()})\n{output()}")
        t_up = time.monotonic()
        while alive() and not cam.latency_ms:
            if time.monotonic() - t_up > 60:
                raise RuntimeError(f"no AvatarParameters for the frames sent in 60 s\n{output()}")
            cam.play_and_spin(1.0)
        if not page.connect(30):
            raise RuntimeError(f"the page client could not connect to the built-in server on {port}\n{output()}")
        echo(f"bench soak: answering; page client connected; {minutes:g} min at {rate:g} fps "
             f"{size[0]}x{size[1]}, a sample every {sample_every:g} s, the first {warmup:g} s are warm-up")
        cam.sent, cam.latency_ms, cam.late = {}, {}, 0
        t0, t0_ns = time.monotonic(), cam.now_ns()
        state = {"reading": tree_reading(process_tree(proc.pid)), "t": t0, "events": page.events, "n": 0,
                 "next": t0 + sample_every}

        def sample():
            now = time.monotonic()
            if now < state["next"] or not alive():
                return
            state["next"] += sample_every
            reading = tree_reading(process_tree(proc.pid))
            window = list(cam.latency_ms.values())[state["n"]:]   # answers in arrival order
            dt = now - state["t"]
            samples.append({
                "t_s": round(now - t0, 1), "rss_mb": round(reading["rss_mb"], 1),
                "cpu_percent": round(100 * (reading["cpu_s"] - state["reading"]["cpu_s"]) / dt, 1),
                "fds": reading["fds"], "processes": reading["processes"],
                "latency_ms": {"p50": percentile(window, 50), "p95": percentile(window, 95), "answers": len(window)},
                "answers_per_s": round(len(window) / dt, 1),
                "page_events_per_s": round((page.events - state["events"]) / dt, 1),
                "page_connected": page.connected,
            })
            echo("bench soak: " + format_sample(samples[-1]))
            state.update(reading=reading, t=now, events=page.events, n=state["n"] + len(window))

        cam.play_and_spin(seconds + 0.5, every=sample)   # + 0.5: the last sample falls inside
        if not alive():
            raise RuntimeError(f"the graph ended during the soak (exit {proc.returncode})\n{output()}")
        sent = len(cam.sent)
    finally:
        page.close()
        cam.close()
        code = stop(proc)
        log.close()
        text = output()
        tmp.cleanup()
        rclpy.try_shutdown(context=context)
    latency = sorted(((k - t0_ns) / 1e9, ms) for k, ms in cam.latency_ms.items())   # by image stamp
    return {"minutes": minutes, "sample_every_s": sample_every, "warmup_s": warmup,
            "graph_command": f"{graph_command}{'' if processes else ' (one process)'}, a page client connected",
            "camera": {"rate_fps": rate, "size": list(size), "frames_cycled": len(cycle) or frames, "sent": sent,
                       "played_by": "the graph's process" if in_process else "the soak's process",
                       "late_sends": cam.late},
            "samples": samples, "page_events": page.events,
            "latency_ms": {"p50": percentile([ms for _, ms in latency], 50),
                           "p95": percentile([ms for _, ms in latency], 95), "answers": len(latency)},
            "verdict": verdict(samples, latency, warmup),
            "graph_exit_code": code, "graph_output_tail": text[-600:] if code != 0 else "",
            "load_before": load_before, "load_after": loadavg(),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}}


def format_sample(s: dict) -> str:
    lat = s["latency_ms"]
    f = lambda v: f"{v:6.1f}" if v is not None else "     -"
    return (f"{s['t_s']:7.0f} {s['rss_mb']:7.1f} {s['cpu_percent']:6.1f} {s['fds']:4d} {f(lat['p50'])} {f(lat['p95'])} "
            f"{s['answers_per_s']:6.1f} {s['page_events_per_s']:6.1f}")


def format_table(r: dict) -> str:
    cam = r["camera"]
    fed = "playing" if cam.get("played_by") == "the graph's process" else "fed"
    lines = [f"soak: {r['graph_command']}; {fed} the looping clip at {cam['rate_fps']:g} fps "
             f"{cam['size'][0]}x{cam['size'][1]}; {r['minutes']:g} min, a sample every {r['sample_every_s']:g} s; "
             f"the first {r['warmup_s']:g} s are warm-up (out of the verdict)",
             f"{'t s':>7} {'RSS MB':>7} {'CPU %':>6} {'fds':>4} {'p50':>6} {'p95':>6} {'out/s':>6} {'page/s':>6}"]
    lines += [format_sample(s) for s in r["samples"]]
    lines.append("(RSS: the graph's processes; CPU: % of one core over the window; latency in ms over the window, "
                 "image stamp -> /avatar_parameters; page/s: Socket.IO events the page client read)")
    v = r["verdict"]
    word = lambda ok: "pass" if ok else "FAIL"
    slope, rss, lat = v["rss_slope_mb_per_min"], v["graph_rss_mb"], v["latency_flat"]
    lines.append(f"RSS slope after warm-up < {slope['goal']:g} MB/min: {word(slope['passed'])} ({slope['value']} MB/min)")
    lines.append(f"graph RSS < {rss['goal']:g} MB: {word(rss['passed'])} (max {rss['value']} MB)")
    lines.append(f"latency flat (last third's p50 within {100 * lat['goal']:.0f}% of the first's): "
                 f"{word(lat['passed'])} ({lat['p50_first_third_ms']} -> {lat['p50_last_third_ms']} ms)")
    lines.append(f"soak: {'PASSED' if v['passed'] else 'FAILED'}; load average before {r['load_before'][0]:.2f}, "
                 f"after {r['load_after'][0]:.2f} on {r['machine']['cpus']} CPUs; graph exit {r['graph_exit_code']}")
    return "\n".join(lines)
