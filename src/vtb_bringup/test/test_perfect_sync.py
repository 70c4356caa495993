"""Perfect sync from the camera to VMC: `./vtb run` on rendered images of a face winking and
opening its jaw, its VMC stream parsed by vmcp (a VMC parser library): the 52 ARKit blendshape
names arrive in every bundle, and the values move with the face."""
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

RUN = [sys.executable, "-m", "vtb_bringup.cli", "run"]
BRIDGE_TESTS = Path(__file__).resolve().parents[2] / "vtb_bridge" / "test"


def _peers():
    name = "vtb_bridge_test_peers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BRIDGE_TESTS / "peers.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def bundles(events):
    """vmcp events split at each Apply: {blend shape name: value} per bundle."""
    out, current = [], {}
    for e in events:
        kind = type(e).__name__
        if kind == "BlendShapeEvent":
            current[e.key] = e.value
        elif kind == "BlendShapeApplyEvent":
            out.append(current)
            current = {}
    return out


def test_camera_to_vmc_perfect_sync(tmp_path):
    from vtb_eval.render import HeadRenderer, default_intrinsics, pose_from_ypr
    from vtb_gaze.blendshapes import NAMES
    peers = _peers()
    k, size = default_intrinsics(640, 480), (640, 480)
    renderer = HeadRenderer()
    images = tmp_path / "images"
    images.mkdir()
    # in name order: eyes open, the subject's left eye shut, the jaw open; 8 frames each
    for i, expression in enumerate([{}] * 8 + [{"eyelids": (1, 0)}] * 8 + [{"jaw": 1.0}] * 8):
        rgb = renderer.render(pose_from_ypr(0, 0, 0), np.array([0.0, 0.0, 0.5]), k, size, **expression)
        cv2.imwrite(str(images / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    rx = peers.VMCReceiver.shared()
    from vtb_bringup.graph import default_config
    config = yaml.safe_load(default_config().read_text())
    for node in config["nodes"]:
        if node["package"] == "vtb_bridge":
            node["parameters"].update(vmc_port=rx.port, vmc_host="127.0.0.1", mirror=False)
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump(config))
    with rx:
        r = subprocess.run([*RUN, "--config", graph, "--images", images, "--rate", "8", "--outputs", "vmc",
                            "--stats-every", "0"], capture_output=True, text=True, timeout=180)
        time.sleep(0.3)
        got = bundles(rx.events)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert rx.messages == len(rx.events), "vmcp parsed every message"
    tracked = [b for b in got if "eyeBlinkLeft" in b]
    assert len(tracked) >= 12, f"{len(tracked)} of {len(got)} bundles carried the blendshapes"
    assert all(set(NAMES) <= set(b) for b in tracked), "all 52 ARKit names in each bundle"
    assert all(0.0 <= v <= 1.0 for b in tracked for v in b.values())
    blink_left = [b["eyeBlinkLeft"] for b in tracked]
    blink_right = [b["eyeBlinkRight"] for b in tracked]
    jaw = [b["jawOpen"] for b in tracked]
    print(f"{len(tracked)} bundles; eyeBlinkLeft {min(blink_left):.2f}..{max(blink_left):.2f}, "
          f"eyeBlinkRight max {max(blink_right):.2f}, jawOpen {min(jaw):.2f}..{max(jaw):.2f}")
    # mirror off: the subject's left eye is the avatar's left; the values move with the face
    assert min(blink_left) < 0.2 and max(blink_left) > 0.5
    assert max(blink_right) < 0.45
    assert max(jaw) > min(jaw) + 0.08
