"""`./vtb bench graph`: the running graph over DDS, from image stamp to AvatarParameters.

The graph (`vtb run --outputs none`, every node in one process) runs as a child process, as a
user runs it; this process plays a camera: it publishes pre-rendered frames of the moving face
on the graph's image topic (sensor-data QoS, with CameraInfo) at a fixed rate, stamped with its
clock at publish time, and listens to avatar_parameters. Latency = arrival - stamp, for stamps it
sent (the bridge's easing frames, stamped otherwise, are not answers). Both processes read one
clock: the machine's.

One child per scenario: each scenario gets its own executor and a fresh process, so its memory
high-water mark (VmHWM) and CPU time are its own and not left over from the scenario before.

Scenarios: 30 fps 640x480 (the goal: p99 < 33 ms on a 2-core CPU, graph RSS < 400 MB); 60 and
120 fps 1280x720, to show that when frames come faster than the graph can go they are dropped
(the detector's one-frame slot) rather than queued: latency stays level through the run instead of
growing; and 30 fps 640x480 on rclpy's MultiThreadedExecutor, the comparison behind the runner's
single-threaded default.

Fast DDS settings come from the environment, as for `vtb run` (the table names them). With
Fast DDS's defaults, shared-memory segments of 512 KB, most 640x480 RGB frames (921 KB) never
reach another process; the "lost" column counts them.
"""
from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from .monitor import stamp_ns

VGA, HD = (640, 480), (1280, 720)
P99_GOAL_MS, RSS_GOAL_MB = 33.0, 400.0


def scenarios(executor: str = "both") -> list[dict]:
    """The scenarios on one executor; `both`: on the runner's default (events) plus VGA on the
    single- and multi-threaded executors."""
    main = executor if executor in ("single", "multi") else "events"
    suffix = {"events": "", "single": ", single-threaded executor", "multi": ", multi-threaded executor"}[main]
    out = [dict(name=f"30 fps 640x480{suffix}", rate=30.0, size=VGA, executor=main),
           dict(name=f"60 fps 1280x720{suffix}", rate=60.0, size=HD, executor=main),
           # 60 fps 720p may not overload the graph (it kept up on a 2-core CPU once DDS delivered
           # every frame): twice that does, so the detector's dropping is seen
           dict(name=f"120 fps 1280x720{suffix}", rate=120.0, size=HD, executor=main)]
    if executor == "both":
        out += [dict(name="30 fps 640x480, single-threaded executor", rate=30.0, size=VGA, executor="single"),
                dict(name="30 fps 640x480, multi-threaded executor", rate=30.0, size=VGA, executor="multi")]
    return out


# /proc readings of the graph process ---------------------------------------------------------
def proc_status_mb(pid: int, key: str) -> float | None:
    """VmRSS (resident now) or VmHWM (resident at its peak) of a process, in MB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0    # kB
    except OSError:
        pass
    return None


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()     # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores: how busy the machine was, this bench and others."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]    # idle + iowait
    return sum(v) - idle, sum(v)


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# the camera side -----------------------------------------------------------------------------
def render_cycle(frames: int, rate: float, size) -> list:
    """(Image, CameraInfo) messages of the rendered clip, played forth and back so the loop has no
    jump (a jump would make the tracker lose the face and re-detect each loop). Rendered and
    converted before the measurement so rendering takes no CPU from the graph."""
    from sensor_msgs.msg import Image
    from vtb_detector.image_msg import rgb_to_image
    from .graph import CAMERA_FRAME
    from .runner import camera_info_for
    from .sources import clip_source
    msgs = []
    for frame in clip_source(frames, rate, size=size).frames():
        image = rgb_to_image(Image, frame.rgb)
        image.header.frame_id = CAMERA_FRAME
        msgs.append((image, camera_info_for(frame, image.header.stamp, CAMERA_FRAME)))
    return msgs + msgs[-2:0:-1]


class Camera:
    """A node in this process: publishes the cycle on the image topic and gathers the answers."""

    def __init__(self, context, topics: dict, cycle: list, rate: float):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CameraInfo, Image
        from vtb_detector.node import IMAGE_QOS
        from vtb_msgs.msg import AvatarParameters
        self.node = rclpy.create_node("vtb_graph_bench", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.cycle, self.period = cycle, 1.0 / rate
        self.image_pub = self.node.create_publisher(Image, topics["image"], IMAGE_QOS)
        self.info_pub = self.node.create_publisher(CameraInfo, topics["camera_info"], IMAGE_QOS)
        self.answers_sub = self.node.create_subscription(AvatarParameters, topics["avatar_parameters"],
                                                         self.on_answer, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 10)
        self.sent = {}          # stamp ns -> True, for the stamps of the current phase
        self.latency_ms = {}    # stamp ns -> ms, first answer per stamp
        self.detector = None    # (stamp ns, {received, processed, dropped, ...}) of the last diagnostics
        self.late = 0           # frames published more than one period behind schedule
        self._i = 0

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def on_answer(self, msg):
        now = self.now_ns()
        key = stamp_ns(msg.header.stamp)
        if key in self.sent and key not in self.latency_ms:
            self.latency_ms[key] = (now - key) / 1e6

    def on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith("vtb_detector"):
                values = {kv.key: kv.value for kv in status.values}
                counts = {k: int(values[k]) for k in ("received", "processed", "dropped", "rejected") if k in values}
                self.detector = (self.now_ns(), counts)

    def spin_until(self, predicate, timeout: float, alive=lambda: True) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or not alive():
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def play(self, seconds: float):
        """Publish at the rate for `seconds` (from this thread; the caller spins). Sleeps to an
        absolute schedule so the pace does not drift; when more than one period behind (this
        process starved of CPU) it skips ahead, as a camera would, instead of sending a burst."""
        next_at = time.monotonic()
        end = next_at + seconds
        while next_at < end:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -self.period:
                self.late += 1
                next_at = time.monotonic()
            image, info = self.cycle[self._i % len(self.cycle)]
            self._i += 1
            stamp = self.node.get_clock().now()
            image.header.stamp = stamp.to_msg()
            self.sent[stamp.nanoseconds] = True   # before publishing: the answer may come at once
            if info is not None:
                info.header.stamp = image.header.stamp
                self.info_pub.publish(info)
            self.image_pub.publish(image)
            next_at += self.period

    def play_and_spin(self, seconds: float, every=None):
        """play() on a thread while this one spins; `every()` is called about 5 times a second."""
        player = threading.Thread(target=self.play, args=(seconds,), name="vtb-bench-camera", daemon=True)
        player.start()
        next_call = 0.0
        while player.is_alive():
            self.executor.spin_once(timeout_sec=0.02)
            if every is not None and time.monotonic() >= next_call:
                next_call = time.monotonic() + 0.2
                every()

    def detector_counts_after(self, t_ns: int, timeout: float = 5.0) -> dict | None:
        """The detector's counters from a /diagnostics message sent after t_ns (it sends one a second)."""
        self.spin_until(lambda: self.detector is not None and self.detector[0] > t_ns, timeout)
        return self.detector[1] if self.detector is not None and self.detector[0] > t_ns else None

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


# one scenario --------------------------------------------------------------------------------
def run_scenario(name: str, rate: float, size, executor: str, seconds: float, warmup: float, frames: int,
                 context, topics: dict, echo=print) -> dict:
    echo(f"bench graph: {name}: rendering {frames} frames of {size[0]}x{size[1]}")
    cycle = render_cycle(frames, rate, size)
    cam = Camera(context, topics, cycle, rate)
    log = tempfile.NamedTemporaryFile("w+", prefix="vtb-graph-bench-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "vtb_bringup.cli", "run", "--outputs", "none", "--stats-every", "0",
           "--executor", executor]
    # its own session: a Ctrl-C at the terminal reaches this process, which then stops the graph
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    alive = lambda: proc.poll() is None   # noqa: E731

    def output() -> str:
        with open(log.name, errors="replace") as f:
            return f.read()[-3000:]
    try:
        echo(f"bench graph: {name}: graph process {proc.pid} starting ({executor}-threaded executor)")
        if not cam.spin_until(lambda: cam.image_pub.get_subscription_count() > 0
                              and cam.answers_sub.get_publisher_count() > 0, 90, alive):
            raise RuntimeError(f"the graph did not come up on the topics\n{output()}")
        # warm-up (not measured): models loaded, caches and DDS paths hot, the face tracked
        t_warm = time.monotonic()
        while alive() and (time.monotonic() - t_warm < warmup or not cam.latency_ms):
            if time.monotonic() - t_warm > 60:
                raise RuntimeError(f"no AvatarParameters for the frames sent in 60 s\n{output()}")
            cam.play_and_spin(1.0)
        if not alive():
            raise RuntimeError(f"the graph process ended early (exit {proc.returncode})\n{output()}")
        # a pause, so the detector's counters at the start are not mid-frame (its last frame done)
        before = cam.detector_counts_after(cam.now_ns() + int(0.3e9))
        cam.sent, cam.latency_ms, cam.late = {}, {}, 0

        rss = []
        cpu0, machine0, t0 = proc_cpu_s(proc.pid), machine_cpu(), time.monotonic()
        own0 = time.process_time()
        echo(f"bench graph: {name}: measuring for {seconds:g} s")
        cam.play_and_spin(seconds, every=lambda: rss.append(proc_status_mb(proc.pid, "VmRSS")))
        elapsed = time.monotonic() - t0
        cpu1, machine1, own1 = proc_cpu_s(proc.pid), machine_cpu(), time.process_time()
        end_ns = cam.now_ns()
        cam.spin_until(lambda: False, 1.0)      # answers for the last frames
        after = cam.detector_counts_after(end_ns + int(0.3e9))
        hwm = proc_status_mb(proc.pid, "VmHWM")
    finally:
        cam.close()
        code = stop(proc)
        log.close()
        text = output()
        os.unlink(log.name)

    sent, lat = len(cam.sent), np.array(list(cam.latency_ms.values()))
    detector = {k: after[k] - before[k] for k in after} if before and after else None
    # latency over time: a queue would make the last third slower than the first
    ordered = [cam.latency_ms[k] for k in sorted(cam.latency_ms)]
    third = max(len(ordered) // 3, 1)
    pct = lambda q: round(float(np.percentile(lat, q)), 2) if len(lat) else None   # noqa: E731
    busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1)
    return {
        "name": name, "rate_fps": rate, "size": list(size), "executor": executor, "seconds": round(elapsed, 2),
        "sent": sent, "sent_fps": round(sent / elapsed, 2), "late_sends": cam.late,
        "answered": len(lat), "unanswered": sent - len(lat),
        # frames that never reached the detector's callback: lost by DDS (best effort, sensor-data
        # QoS) or overwritten in the subscription's 5-deep queue before the executor took them
        "lost_before_detector": sent - detector["received"] if detector else None,
        "throughput_fps": round(len(lat) / elapsed, 2),
        "detector": detector,     # its counters over the measurement: received, processed, dropped
        "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                       "max": round(float(lat.max()), 2) if len(lat) else None,
                       "p50_first_third": round(float(np.median(ordered[:third])), 2) if ordered else None,
                       "p50_last_third": round(float(np.median(ordered[-third:])), 2) if ordered else None},
        "graph_rss_mb": {"max": round(max(r for r in rss if r is not None), 1) if any(rss) else None,
                         "hwm": round(hwm, 1) if hwm else None},
        "graph_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "bench_cpu_percent_of_one_core": round(100 * (own1 - own0) / elapsed, 1),
        "machine_busy_percent": round(100 * busy, 1),   # all cores: graph + bench + anything else
        "graph_exit_code": code,
        "graph_output_tail": text[-600:] if code != 0 else "",
    }


def stop(proc, timeout: float = 20.0) -> int:
    """Ctrl-C (SIGINT), as a user stops `vtb run`; SIGKILL only if it does not end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def dds_settings() -> dict:
    """The Fast DDS settings both processes inherit from the environment; none set: Fast DDS's
    defaults (its shared-memory segments are 512 KB, less than one 640x480 RGB frame)."""
    names = ("RMW_IMPLEMENTATION", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE",
             "FASTDDS_BUILTIN_TRANSPORTS", "ROS_AUTOMATIC_DISCOVERY_RANGE")
    return {n: os.environ[n] for n in names if os.environ.get(n)}


def run_graph_bench(seconds: float = 20.0, executor: str = "both", warmup: float = 3.0, frames: int = 60,
                    only: list[dict] | None = None, echo=print) -> dict:
    """Every scenario (or `only` these) for `seconds` each; returns the results and the goals."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from . import graph
    # a domain of its own, localhost only: another graph running on the machine (or a test
    # session) must not answer this bench's frames or send it images. The child inherits it.
    domain = 1 + os.getpid() % 100
    os.environ.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    topics = {**graph.resolve_topics({"outputs": "none"}),
              "avatar_parameters": graph.topic_name(graph.resolve({"outputs": "none"})[0].namespace,
                                                    "avatar_parameters")}
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
    load_before = loadavg()
    try:
        results = [run_scenario(**s, seconds=seconds, warmup=warmup, frames=frames, context=context,
                                topics=topics, echo=echo) for s in (only or scenarios(executor))]
    finally:
        rclpy.try_shutdown(context=context)
    result = {"scenarios": results, "seconds_per_scenario": seconds, "warmup_seconds": warmup,
              "frames_cycled": 2 * frames - 2, "dds": dds_settings(),
              "load_before": load_before, "load_after": loadavg(),
              "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version()}}
    vga = next((r for r in results if r["size"] == list(VGA) and r["rate_fps"] == 30.0), None)
    p99 = vga["latency_ms"]["p99"] if vga else None
    hwm = [r["graph_rss_mb"]["hwm"] for r in results if r["graph_rss_mb"]["hwm"]]
    result["goals"] = {
        "p99_ms_30fps_vga": {"goal": P99_GOAL_MS, "value": p99, "executor": vga["executor"] if vga else None,
                             "reached": p99 is not None and p99 < P99_GOAL_MS},
        "graph_rss_mb": {"goal": RSS_GOAL_MB, "value": max(hwm) if hwm else None,
                         "reached": bool(hwm) and max(hwm) < RSS_GOAL_MB},
        # overload: a queue would make latency grow through the run; dropping keeps it level
        "latency_bounded_hd": {r["name"]: bounded(r["latency_ms"]) for r in results
                               if r["size"] == list(HD) and r["answered"]},
    }
    return result


def bounded(latency: dict) -> bool:
    """Latency did not grow through the run: the last third's median within 25 % + 5 ms of the
    first third's. (Queued, each frame would wait for the backlog before it, which grows.)"""
    return latency["p50_last_third"] <= 1.25 * latency["p50_first_third"] + 5.0


def format_table(r: dict) -> str:
    f = lambda v, w=7, d=1: f"{v:{w}.{d}f}" if v is not None else " " * (w - 1) + "-"   # noqa: E731
    lines = [f"graph over DDS (vtb run --outputs none, one process) fed by a camera process; "
             f"{r['seconds_per_scenario']:g} s per scenario after {r['warmup_seconds']:g} s warm-up; "
             f"image stamp -> /avatar_parameters",
             "DDS: " + (", ".join(f"{k}={v}" for k, v in r["dds"].items()) or "defaults"),
             f"{'scenario':42} {'sent':>5} {'lost':>5} {'det.drop':>8} {'answ':>5} {'out/s':>6} {'p50':>6} {'p90':>6} "
             f"{'p99':>6} {'max':>6} {'RSS MB':>7} {'HWM MB':>7} {'CPU %':>6}"]
    for s in r["scenarios"]:
        lat, det = s["latency_ms"], s["detector"] or {}
        lost = s["lost_before_detector"]
        lines.append(f"{s['name']:42} {s['sent']:5d} {'-' if lost is None else lost:>5} "
                     f"{det.get('dropped', '-'):>8} {s['answered']:5d} "
                     f"{f(s['throughput_fps'], 6)} {f(lat['p50'], 6)} {f(lat['p90'], 6)} {f(lat['p99'], 6)} "
                     f"{f(lat['max'], 6)} {f(s['graph_rss_mb']['max'])} {f(s['graph_rss_mb']['hwm'])} "
                     f"{f(s['graph_cpu_percent_of_one_core'], 6, 0)}")
    lines.append("(latency in ms; lost: sent, never reached the detector's callback (DDS or its 5-deep queue); "
                 "det.drop: received, replaced unprocessed by a newer frame; answ: AvatarParameters for frames "
                 "sent; CPU: graph process, % of one core)")
    for s in r["scenarios"]:
        det, lat = s["detector"], s["latency_ms"]
        seen = (f"detector received {det['received']}, processed {det['processed']}, dropped {det['dropped']}"
                if det else "detector counters: not received")
        lines.append(f"  {s['name']}: sent {s['sent_fps']:.1f}/s ({s['late_sends']} late); {seen}; "
                     f"p50 first third {f(lat['p50_first_third'], 0)} ms, last third {f(lat['p50_last_third'], 0)} ms; "
                     f"machine {s['machine_busy_percent']:.0f}% busy; graph exit {s['graph_exit_code']}")
    g = r["goals"]
    p99, rss = g["p99_ms_30fps_vga"], g["graph_rss_mb"]
    if p99["value"] is not None:
        # the latency of answered frames only: say how many were answered, so losses are not hidden
        vga = next(s for s in r["scenarios"] if s["size"] == list(VGA) and s["rate_fps"] == 30.0)
        lines.append(f"p99 < {p99['goal']:g} ms at 30 fps VGA ({p99['executor']}-threaded executor): "
                     f"{'reached' if p99['reached'] else 'NOT reached'} ({f(p99['value'], 0)} ms; "
                     f"{vga['answered']} of {vga['sent']} frames answered, {vga['throughput_fps']:.1f}/s)")
    lines.append(f"graph RSS < {rss['goal']:g} MB (peak VmHWM over the scenarios): "
                 f"{'reached' if rss['reached'] else 'NOT reached'} ({f(rss['value'], 0)} MB)")
    for hd in (s for s in r["scenarios"] if s["name"] in g["latency_bounded_hd"]):
        lat, det = hd["latency_ms"], hd["detector"] or {}
        lines.append(f"{hd['name']}, dropped rather than queued: {hd['unanswered']} of {hd['sent']} frames "
                     f"unanswered (lost {hd['lost_before_detector']}, dropped {det.get('dropped', '-')}); latency "
                     f"{'bounded' if g['latency_bounded_hd'][hd['name']] else 'GROWING'}: p50 "
                     f"{f(lat['p50_first_third'], 0)} ms in the first third, {f(lat['p50_last_third'], 0)} ms in the "
                     f"last, p99 {f(lat['p99'], 0)} ms")
    lines.append(f"load average before {r['load_before'][0]:.2f}, after {r['load_after'][0]:.2f}; "
                 f"{r['machine']['cpus']} CPUs ({r['machine']['processor']})")
    return "\n".join(lines)
