"""The detector node in its own process: images over max_pixels (a PNG bomb, a raw image) are
skipped before decoding with the tracking state untouched, and /diagnostics goes WARN while
images arrive unanswered and when they stop."""
import importlib.util
import time
from pathlib import Path

import cv2
from sensor_msgs.msg import CompressedImage, Image

from vtb_detector.image_msg import rgb_to_image


def _sibling(name):
    """A helper module of this folder (--import-mode=importlib puts no test folder on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"vtb_detector_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Graph = _sibling("test_detector_node").Graph
png_bomb = _sibling("test_image_size_limit").png_bomb

WAIT = 0.1


def last_status(g):
    return g.diagnostics[-1] if g.diagnostics else None


def test_png_bombs_are_skipped_undecoded_and_diagnostics_warn(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image",
                      "-r", "faces:=/vtbtest/faces", "-p", "input_compressed:=true")
    g = Graph(ros, CompressedImage, "/vtbtest/image/compressed")
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    good = CompressedImage(format="jpeg", data=jpeg.tobytes())
    g.send_until(good, lambda: g.faces and g.faces[-1].faces, "FaceArray for a JPEG image")
    face_id = g.faces[-1].faces[0].id

    # 187 KB PNGs of 8000x8000 at 10 Hz (each would take about 1 s to decode) until the
    # diagnostics say ERROR: unanswered input goes WARN after 2 s, ERROR after 5 s
    bomb = CompressedImage(format="png", data=png_bomb(8000, 8000, complete=True))
    n_faces, n_diagnostics, sent = len(g.faces), len(g.diagnostics), 0
    while not any(s.level == b"\x02" for s in g.diagnostics[n_diagnostics:]):
        assert sent < 100, "no ERROR in 10 s of unanswered images"
        g.pub.publish(bomb)
        sent += 1
        ros.spin_for(WAIT)
    levels = [(s.level, s.message.split(" for ")[0]) for s in g.diagnostics[n_diagnostics:]]
    assert (b"\x01", "inputs arrive but no output") in levels, levels
    assert levels[-1] == (b"\x02", "inputs arrive but no output"), levels
    assert levels.index((b"\x01", "inputs arrive but no output")) < len(levels) - 1
    assert int(g.counts()["rejected"]) >= 0.8 * (sent - 10), (g.counts(), sent)   # none queued behind a decode
    assert len(g.faces) == n_faces, "a refused image gives no FaceArray"
    assert "more than max_pixels = 33177600" in proc.output()

    g.send_until(good, lambda: len(g.faces) > n_faces, "FaceArray after the bombs")
    assert [f.id for f in g.faces[-1].faces] == [face_id], "the tracking state went on untouched"
    ros.spin_until(lambda: last_status(g).message == "ok" or last_status(g).message.startswith("latency"),
                   timeout=5, what="diagnostics back to ok")

    # the images stop: a WARN that says so
    ros.spin_until(lambda: last_status(g).message.startswith("no input for"), timeout=6,
                   what="diagnostics saying no input")
    assert last_status(g).level == b"\x01"
    assert proc.alive() and "Traceback" not in proc.output()


def test_raw_images_over_max_pixels_are_skipped_and_the_limit_is_live(ros, start_node, astronaut_rgb):
    proc = start_node("vtb_detector", "detector_node", "-r", "image:=/vtbtest/image", "-r", "faces:=/vtbtest/faces",
                      "-p", f"max_pixels:={512 * 512 - 1}")
    g = Graph(ros)
    image = rgb_to_image(Image, astronaut_rgb)
    g.send_until(image, lambda: int(g.counts().get("rejected", 0)) >= 1, "rejection of a 512x512 image")
    assert g.faces == [] and "512x512 is 262144 pixels, more than max_pixels = 262143" in proc.output()
    assert ros.set_parameters("/vtb_detector", max_pixels=512 * 512)["max_pixels"].successful
    g.send_until(image, lambda: g.faces, "FaceArray once max_pixels allows the image")
