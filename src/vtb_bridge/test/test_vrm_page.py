"""The VRM avatar page (issue 13) in real headless Chromium, and the files the server gives it.

Chromium is Debian's /usr/bin/chromium driven by playwright-core (test/js/vrm_shots.js), WebGL
through SwiftShader (its software GPU). The page gets its frames from a real AvatarServer over
Socket.IO; the VRM files are the generated ones of vrm_fixture (VRM 0.x and 1.0). Screenshots are
compared by pixels with the page's panel hidden (?panel=0). Needs Node.js, the npm packages of
test/js (npm ci --prefix src/vtb_bridge/test/js) and chromium; it fails, never skips, without them.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vtb_bridge.avatar_server import VRM_PAGE, WEB_DIR, AvatarServer


def _fixture():
    """vrm_fixture.py beside this file (pytest's importlib mode puts no test folder on sys.path)."""
    import importlib.util
    import sys
    if "vrm_fixture" not in sys.modules:
        spec = importlib.util.spec_from_file_location("vrm_fixture", Path(__file__).with_name("vrm_fixture.py"))
        sys.modules["vrm_fixture"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["vrm_fixture"]


write_vrm = _fixture().write_vrm

JS = Path(__file__).resolve().parent / "js"
NM = JS / "node_modules"
CHROMIUM = os.environ.get("VTB_CHROMIUM", "/usr/bin/chromium")
SETUP = "`npm ci --prefix src/vtb_bridge/test/js` and `apt-get install -y chromium` (./vtb's setup does both)"
# vendored file -> the npm package's file it must equal
VENDORED = {
    "three/build/three.module.js": "three/build/three.module.js",
    "three/build/three.core.js": "three/build/three.core.js",
    "three/examples/jsm/loaders/GLTFLoader.js": "three/examples/jsm/loaders/GLTFLoader.js",
    "three/examples/jsm/utils/BufferGeometryUtils.js": "three/examples/jsm/utils/BufferGeometryUtils.js",
    "three/examples/jsm/utils/SkeletonUtils.js": "three/examples/jsm/utils/SkeletonUtils.js",
    "three/LICENSE": "three/LICENSE",
    "three-vrm/three-vrm.module.min.js": "@pixiv/three-vrm/lib/three-vrm.module.min.js",
    "three-vrm/LICENSE": "@pixiv/three-vrm/LICENSE",
}
DEFAULT_BG = np.array([0xd9, 0xec, 0xf2])


def need_browser():
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node (Node.js) is not on PATH: {SETUP}")
    for pkg in ("playwright-core", "three", "@pixiv/three-vrm"):
        if not (NM / pkg / "package.json").is_file():
            pytest.fail(f"{NM / pkg} is missing: {SETUP}")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: {SETUP}")
    return node


# ---- the files ---------------------------------------------------------------------------------

def test_vendored_three_and_three_vrm_are_the_pinned_npm_files_and_the_page_loads_nothing_from_outside():
    pinned = json.loads((JS / "package.json").read_text())["dependencies"]
    for vendored, npm in VENDORED.items():
        assert (NM / npm).is_file(), f"{NM / npm} is missing: {SETUP}"
        assert (WEB_DIR / "vendor" / vendored).read_bytes() == (NM / npm).read_bytes(), \
            f"copy {NM / npm} to web/vendor/{vendored} (see web/vendor/README.md)"
    for pkg in ("three", "@pixiv/three-vrm"):
        installed = json.loads((NM / pkg / "package.json").read_text())["version"]
        assert pinned[pkg] == installed, (pkg, pinned[pkg], installed)
        assert f"{installed}" in (WEB_DIR / "vendor" / "README.md").read_text()
    # the import map names vendored files only, and every import the vendored modules make resolves
    html = VRM_PAGE.read_text()
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))["imports"]
    for target in imports.values():
        assert target.startswith("/vendor/") and (WEB_DIR / target[1:]).exists(), target
    for path in [VRM_PAGE, *sorted((WEB_DIR / "vrm").glob("*.js"))]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


def get(port, path, host=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def test_server_serves_the_vrm_page_its_modules_and_the_users_model_only(tmp_path):
    vrm = write_vrm(tmp_path / "me.vrm", "1")
    server = AvatarServer(port=0, vrm_file=vrm)
    server.start()
    bare = AvatarServer(port=0)
    bare.start()
    try:
        port = server.port
        status, headers, body = get(port, "/")
        assert status == 200 and body == VRM_PAGE.read_bytes()
        csp = headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1).split()
        # scripts from this server and the one inline import map (by its hash): nothing inline, no eval
        mapped = re.search(r'<script type="importmap">(.*?)</script>', body.decode(), re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(mapped.encode()).digest()).decode()
        assert script_src == ["'self'", f"'sha256-{digest}'"], csp
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp
        assert get(port, "/2d")[2] == (WEB_DIR / "avatar.html").read_bytes()
        status, headers, body = get(port, "/vendor/three/build/three.module.js")
        assert status == 200 and "javascript" in headers["Content-Type"]
        assert get(port, "/vrm/app.js")[0] == 200
        for path in ("/vendor/", "/vrm/", "/vendor/../avatar_server.py", "/vendor/%2e%2e/avatar_server.py"):
            assert get(port, path)[0] in (403, 404), path
        assert get(port, "/vendor/three/build/three.module.js", host="rebind.example")[0] == 403
        status, headers, body = get(port, "/model.vrm")
        assert status == 200 and body == vrm.read_bytes()
        assert json.loads(get(port, "/config.json")[2])["vrm_url"] == "/model.vrm"
        assert get(bare.port, "/model.vrm")[0] == 404
        assert json.loads(get(bare.port, "/config.json")[2])["vrm_url"] is None
    finally:
        server.stop()
        bare.stop()
    with pytest.raises(FileNotFoundError):
        AvatarServer(port=0, vrm_file=tmp_path / "missing.vrm").start()


# ---- in Chromium -------------------------------------------------------------------------------

class Poser:
    """Streams frames with `pose` (Live2D params) to the server at 30 Hz."""

    def __init__(self, server):
        self.server, self.pose, self.shapes, self.running = server, {}, {}, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            self.server.send({"params": dict(self.pose), "blendshapes": dict(self.shapes)})
            time.sleep(1 / 30)

    def stop(self):
        self.running = False
        self.thread.join(2)


def lines_of(proc):
    out = []
    for line in proc.output().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def shoot(start_process, server, tmp_path, query, shots, *flags, timeout=120):
    """Opens the page (URL + query) with vrm_shots.js; shots = [(name, {param: value}[, {ARKit
    blendshape: value}])] taken in turn, the streamed frame switching to the next shot's once one
    is taken. Returns
    ({name: RGB(A) array}, {name: page state}, every output line)."""
    node = need_browser()
    url = server.url
    poser = Poser(server)
    specs = [f"{shot[0]}:" + ",".join(f"{k}={v}" for k, v in shot[1].items()) for shot in shots]

    def pose(shot):
        poser.pose, poser.shapes = dict(shot[1]), dict(shot[2] if len(shot) > 2 else {})
    try:
        pose(shots[0])
        proc = start_process([node, JS / "vrm_shots.js", url.rstrip("/") + "/" + query, tmp_path, *flags, *specs],
                             name="vrm_shots")
        deadline = time.monotonic() + timeout
        while True:
            lines = lines_of(proc)
            taken = [o["shot"] for o in lines if "shot" in o]
            if any("done" in o or "error" in o for o in lines):
                break
            if len(taken) < len(shots):
                pose(shots[len(taken)])
            assert time.monotonic() < deadline, "the page did not take its screenshots:\n" + proc.output()
            time.sleep(0.05)
    finally:
        poser.stop()
    lines = lines_of(proc)
    assert not [o for o in lines if "pageerror" in o or "requestfailed" in o or "error" in o
                or o.get("console") == "error"], lines
    # nothing but this server: no CDN, no other host
    requests = [o["request"] for o in lines if "request" in o]
    assert requests and all(r.startswith(url.rstrip("/")) for r in requests), requests
    webgl = next(o["webgl"] for o in lines if "webgl" in o)
    assert webgl or "--no-webgl" in flags, "no WebGL in headless Chromium (SwiftShader)"
    from PIL import Image
    images = {o["shot"]: np.asarray(Image.open(o["file"])).astype(np.int16) for o in lines if "shot" in o}
    states = {o["shot"]: o["state"] for o in lines if "shot" in o}
    return images, states, lines


def skin(img):
    """The face: pinkish-beige pixels (red > green > blue, not the mouth's red, not the background)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (r > 150) & (g > 120) & (r > g) & (g > b) & (r - b > 30)


def dark(img):
    return img[..., :3].max(axis=2) < 90


def iris(img):
    """The default character's blue irises (the background is bluish too, but far less)."""
    r, b = img[..., 0], img[..., 2]
    return (b - r > 60) & (r < 120)


def mouth_red(img):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (r > 100) & (g < 90) & (b < 100) & (r - g > 60)


def head_box(front):
    """Rows and columns of the face in the front shot (the upper part of the picture)."""
    mask = skin(front[:330])
    ys, xs = np.nonzero(mask)
    assert mask.sum() > 2000, f"no face in the picture ({mask.sum()} skin pixels)"
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1), xs.mean()


POSES = [("front", {"ParamAngleX": 0.0}), ("left", {"ParamAngleX": -30.0}), ("right", {"ParamAngleX": 30.0}),
         ("wink", {"ParamEyeLOpen": 0.0}), ("mouth", {"ParamMouthOpenY": 1.0}), ("look", {"ParamEyeBallX": 1.0})]


def check_expressions(images, states, kind):
    """Head turning left and right, the left-eye wink, the open mouth: by pixels."""
    front = images["front"][..., :3]
    rows, cols, cx = head_box(front)
    assert states["front"]["model"] == kind and states["left"]["params"]["ParamAngleX"] == -30

    def centre(img, mask_of):
        mask = mask_of(img[rows, cols])
        assert mask.sum() > 30, f"nothing to measure ({mask.sum()} pixels)"
        return np.nonzero(mask)[1].mean()
    # ParamAngleX > 0 turns the face to the screen's right. The default character's face (skin)
    # moves that way (its hair shows behind); the fixture's head is a plain ball, so its eyes tell
    features = skin if kind == "default" else dark
    shift = centre(images["right"], features) - centre(images["left"], features)
    assert shift > 5, f"{kind}: the face moved {shift:+.1f} px from left to right"
    eyes = iris if kind == "default" else dark
    eyes_shift = centre(images["right"], eyes) - centre(images["left"], eyes)
    assert eyes_shift > 20, f"{kind}: the eyes moved {eyes_shift:+.1f} px from left to right"
    assert states["right"]["head"]["y"] > 5 > -5 > states["left"]["head"]["y"], (states["left"]["head"], states["right"]["head"])
    # the wink: ParamEyeLOpen is the character's own left eye, on the screen's right
    changed = np.abs(images["wink"][..., :3] - front).sum(axis=2)[rows, cols] > 60
    mid = int(round(cx)) - cols.start
    on_right, on_left = changed[:, mid:].sum(), changed[:, :mid].sum()
    assert on_right > 40 and on_right > 5 * on_left, f"{kind}: wink changed {on_right} px right, {on_left} left"
    if kind != "default":                     # the fixture's eye disc collapses: less dark there
        assert dark(images["wink"][rows, cols][:, mid:]).sum() < 0.5 * dark(front[rows, cols][:, mid:]).sum()
    # the open mouth: many more mouth pixels
    m_open, m_shut = mouth_red(images["mouth"][rows, cols]).sum(), mouth_red(front[rows, cols]).sum()
    assert m_open > 3 * max(m_shut, 20), f"{kind}: mouth pixels {m_shut} -> {m_open}"
    # the gaze: ParamEyeBallX > 0 moves the pupils (lookAt) to the screen's right
    pupils = iris if kind == "default" else dark
    gaze = centre(images["look"], pupils) - centre(front, pupils)
    assert gaze > 1.0, f"{kind}: the eyes moved {gaze:+.1f} px"
    return {"turn_px": round(shift, 1), "turn_eyes_px": round(eyes_shift, 1), "wink_px": (int(on_left), int(on_right)),
            "mouth_px": (int(m_shut), int(m_open)), "gaze_px": round(gaze, 1)}


def test_default_avatar_turns_winks_opens_its_mouth_and_looks(start_process, tmp_path):
    server = AvatarServer(port=0)
    server.start()
    try:
        images, states, _ = shoot(start_process, server, tmp_path, "?panel=0", POSES, "--model", "default")
    finally:
        server.stop()
    print("default:", check_expressions(images, states, "default"))
    # ?panel=0: nothing but the background in the panel's corner
    assert (np.abs(images["front"][10:200, 560:790, :3] - DEFAULT_BG).sum(axis=2) < 12).mean() > 0.99


@pytest.mark.parametrize("version", ["0", "1"])
def test_the_servers_vrm_file_loads_and_follows_the_face(start_process, tmp_path, version):
    server = AvatarServer(port=0, vrm_file=write_vrm(tmp_path / f"fixture{version}.vrm", version))
    server.start()
    try:
        images, states, lines = shoot(start_process, server, tmp_path, "?panel=0", POSES, "--model", f"vrm{version}")
    finally:
        server.stop()
    assert any(o.get("request", "").endswith("/model.vrm") for o in lines)
    print(f"vrm{version}:", check_expressions(images, states, f"vrm{version}"))


def test_expressions_named_by_arkit_blendshapes_follow_the_frames_blendshapes(start_process, tmp_path):
    # the fixture's custom "jawOpen" expression opens its mouth: driven by blendshapes.jawOpen alone
    # (ParamTest only tells the screenshot script which frame is which)
    server = AvatarServer(port=0, vrm_file=write_vrm(tmp_path / "sync.vrm", "1"))
    server.start()
    try:
        images, states, _ = shoot(start_process, server, tmp_path, "?panel=0",
                                  [("shut", {"ParamTest": 0.0}, {"jawOpen": 0.0}),
                                   ("open", {"ParamTest": 1.0}, {"jawOpen": 1.0})], "--model", "vrm1")
    finally:
        server.stop()
    assert states["open"]["blendshapes"]["jawOpen"] == 1.0 and states["open"]["params"]["ParamTest"] == 1.0
    m_shut, m_open = mouth_red(images["shut"][..., :3]).sum(), mouth_red(images["open"][..., :3]).sum()
    assert m_open > 3 * max(m_shut, 20), f"mouth pixels {m_shut} -> {m_open}"
    print(f"jawOpen: mouth pixels {m_shut} -> {m_open}")


def test_a_dropped_vrm_replaces_the_default_avatar(start_process, tmp_path):
    vrm = write_vrm(tmp_path / "dropped.vrm", "0")
    server = AvatarServer(port=0)
    server.start()
    try:
        images, states, lines = shoot(start_process, server, tmp_path, "?panel=0",
                                      [("front", {"ParamAngleX": 0.0}), ("right", {"ParamAngleX": 30.0})],
                                      "--drop", vrm, "--model", "vrm0")
    finally:
        server.stop()
    ready = next(o["ready"] for o in lines if "ready" in o)
    assert ready["model"] == "vrm0" and states["right"]["model"] == "vrm0"
    assert not any(o.get("request", "").endswith(".vrm") for o in lines)    # read locally, not fetched
    assert states["right"]["head"]["y"] > 5


@pytest.mark.parametrize("bg", ["transparent", "#00ff00", "<script>alert(1)</script>"])
def test_background_options_for_streaming(start_process, tmp_path, bg):
    from urllib.parse import quote
    server = AvatarServer(port=0)
    server.start()
    try:
        flags = ["--alpha"] if bg == "transparent" else []
        images, states, lines = shoot(start_process, server, tmp_path, "?panel=0&bg=" + quote(bg),
                                      [("shot", {"ParamAngleX": 0.0})], *flags, "--model", "default")
    finally:
        server.stop()
    img = images["shot"]
    corners = np.array([img[2, 2], img[2, -3], img[-3, 2], img[-3, -3]])
    if bg == "transparent":
        assert img.shape[2] == 4 and (corners[:, 3] == 0).all(), corners
        assert (img[..., 3] == 0).mean() > 0.4 and (img[150:300, 330:470, 3] == 255).mean() > 0.9
    elif bg == "#00ff00":
        assert (np.abs(corners[:, :3] - [0, 255, 0]).sum(axis=1) <= 3).all(), corners
    else:                                     # not a colour: ignored, never inserted as HTML
        assert (np.abs(corners[:, :3] - DEFAULT_BG).sum(axis=1) <= 3).all(), corners
        assert states["shot"]["options"]["background"] == "#d9ecf2"
        assert not [o for o in lines if "dialog" in o]


def test_vtb_run_and_demo_pass_vrm_to_the_bridges_vrm_file(tmp_path):
    from vtb_bridge.vrm_file import vrm_problem
    from vtb_bringup.cli import build_parser
    from vtb_bringup.graph import GraphError, resolve
    vrm = write_vrm(tmp_path / "me.vrm", "0")
    bridge = next(s for s in resolve({"vrm": str(vrm)}) if s.package == "vtb_bridge")
    assert bridge.parameters["vrm_file"] == str(vrm.resolve())
    assert "vrm_file" not in next(s for s in resolve({}) if s.package == "vtb_bridge").parameters
    with pytest.raises(GraphError, match="vrm: no such file"):
        resolve({"vrm": str(tmp_path / "missing.vrm")})
    # what is wrong with a file that is not a VRM, said at start (before: a folder said "no such
    # file", an empty or non-VRM file was accepted and the page never showed it)
    import json
    import struct
    (tmp_path / "empty.vrm").write_bytes(b"")
    (tmp_path / "photo.vrm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    doc = json.dumps({"asset": {"version": "2.0"}}).encode()
    doc += b" " * (-len(doc) % 4)
    (tmp_path / "plain.glb").write_bytes(b"glTF" + struct.pack("<II", 2, 20 + len(doc))
                                         + struct.pack("<I4s", len(doc), b"JSON") + doc)
    for name, words in [(".", "is a folder"), ("empty.vrm", "is empty"), ("photo.vrm", "starts with 'glTF'"),
                        ("plain.glb", r"not a VRM \(no VRM or VRMC_vrm extension\)")]:
        with pytest.raises(GraphError, match=words):
            resolve({"vrm": str(tmp_path / name)})
    assert vrm_problem(write_vrm(tmp_path / "one.vrm", "1")) is None and vrm_problem(vrm) is None
    assert build_parser().parse_args(["run", "--vrm", str(vrm)]).vrm == str(vrm)
    assert build_parser().parse_args(["demo", "--vrm", str(vrm)]).vrm == str(vrm)


def test_the_panels_calibrate_button_sliders_and_checkbox_reach_the_bridge(start_process, tmp_path):
    # the bridge's side, as the node sets it: the command changes its settings and publishes them
    server = AvatarServer(port=0)
    current = {"head_sensitivity": 1.0, "eye_sensitivity": 1.5, "smoothing": 1.0, "mirror": True}
    asked = []

    def settings(change):
        asked.append(dict(change))
        current.update(change)
        server.publish_settings(current)
        if "mirror" in change:        # as the bridge answers when its settings file cannot be written
            return True, "set mirror=False for this run; not kept for the next start: /x: Is a directory", {"kept": False}
        return True, "ok"
    server.commands["settings"] = settings
    server.commands["calibrate_neutral"] = lambda data: (True, "neutral: yaw/pitch/roll -8.0/-3.0/2.0")
    server.publish_settings(current)
    server.start()
    try:
        _, _, lines = shoot(start_process, server, tmp_path, "", [("shot", {"ParamAngleX": 0.0})],
                            "--set", "head_sensitivity=2.5", "--set", "mirror=false", "--calibrate")
    finally:
        server.stop()
    ready = next(o["ready"] for o in lines if "ready" in o)
    assert ready["settings"]["eye_sensitivity"] == 1.5          # shown on connect
    assert asked == [{"head_sensitivity": 2.5}, {"mirror": False}], asked
    done = {o["set"]: o for o in lines if "set" in o}
    assert done["head_sensitivity"]["shown"] == "2.5" and done["mirror"]["shown"] is False
    # saved: nothing to say; applied but not saved: the panel says so (before: the same as saved)
    assert done["head_sensitivity"]["panel_state"] == ""
    assert done["mirror"]["panel_state"].startswith("applied, not saved: ") and "Is a directory" in done["mirror"]["panel_state"]
    assert done["mirror"]["state"]["settings"] == {**current}
    answer = next(o for o in lines if "calibration" in o)
    assert answer["calibration"]["success"] is True and answer["panel"] == "ok: neutral: yaw/pitch/roll -8.0/-3.0/2.0"


def test_without_webgl_the_page_shows_the_2d_one_with_the_same_options(start_process, tmp_path):
    """The 3D page sends a browser without WebGL to /2d with its query, and /2d follows it: an
    OBS source set up with ?bg=transparent&panel=0 gets a transparent page without the panel
    (before: /2d ignored both, an opaque box with a debug dump)."""
    server = AvatarServer(port=0)
    server.start()
    try:
        images, states, lines = shoot(start_process, server, tmp_path, "?token=abc&panel=0&bg=transparent",
                                      [("shot", {"ParamAngleX": 10.0})], "--no-webgl", "--alpha")
    finally:
        server.stop()
    assert next(o["webgl"] for o in lines if "webgl" in o) is None
    ready = next(o for o in lines if "ready" in o)
    assert ready["url"] == server.url + "2d?token=abc&panel=0&bg=transparent", ready["url"]   # the query goes along
    state = states["shot"]
    assert state["params"]["ParamAngleX"] == 10.0 and "model" not in state
    assert state["options"] == {"background": "transparent", "transparent": True, "panel": False}
    assert next(o["panel"] for o in lines if "shot" in o) is None, "no panel"
    img = images["shot"]
    assert img.shape[2] == 4 and (img[..., 3] == 0).mean() > 0.4, "a transparent background"
    assert (img[..., 3] == 255).mean() > 0.03, "the character is drawn"


@pytest.mark.parametrize("size", ["480x360", "640x480", "800x600"])
def test_the_panel_does_not_cover_the_face(start_process, tmp_path, size):
    """At 480-640 px wide the 270 px panel covered the avatar's face; under 720 px it now starts
    folded (its status line and "settings"), and it never overlaps the face."""
    server = AvatarServer(port=0)
    server.start()
    try:
        images, _, lines = shoot(start_process, server, tmp_path, "", [("front", {"ParamAngleX": 0.0})],
                                 "--model", "default", "--size", size)
    finally:
        server.stop()
    width = int(size.split("x")[0])
    front = images["front"][..., :3]
    assert front.shape[1] == width
    ys, xs = np.nonzero(skin(front))
    assert len(xs) > 500, f"no face in the picture ({len(xs)} skin pixels)"
    face = (xs.min(), ys.min(), xs.max(), ys.max())
    left, top, right, bottom = next(o["panel"] for o in lines if "shot" in o)
    overlap = max(0, min(right, face[2]) - max(left, face[0])) * max(0, min(bottom, face[3]) - max(top, face[1]))
    assert overlap == 0, f"{size}: the panel {left, top, right, bottom} covers the face {face}"
    if width >= 720:                          # wide enough: the whole panel, sliders and all
        assert right - left >= 250 and bottom - top > 120
