"""The VRM test avatars of vrm_fixture.py: valid GLB/glTF with the VRM extension each version
needs (checked here in Python, read back with pygltflib), and loaded by the real three.js
GLTFLoader + @pixiv/three-vrm in Node (js/load_vrm.mjs), which must see every expression, the
bones and lookAt the VRM page uses. Without node or the npm packages the second test fails and
says how to set them up (it never skips)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
from pathlib import Path

import pygltflib
import pytest

HERE = Path(__file__).resolve().parent
JS = HERE / "js"
SETUP = "set it up with ./vtb (its setup runs `npm ci --prefix src/vtb_bridge/test/js`), or by hand"

_spec = importlib.util.spec_from_file_location("vrm_fixture", HERE / "vrm_fixture.py")
vrm_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vrm_fixture)

EXPRESSIONS = {"blink", "blinkLeft", "blinkRight", "aa", "ih", "ou", "ee", "oh", "jawOpen"}
EXTENSION = {"0": "VRM", "1": "VRMC_vrm"}


def glb_json(path: Path) -> dict:
    """The GLB container read by hand (header, JSON chunk, BIN chunk, 4-byte aligned): a check
    independent of pygltflib, which wrote it."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert bin_type == 0x004E4942 and 28 + json_len + bin_len == len(data)
    doc = json.loads(data[20:20 + json_len])
    assert doc["buffers"][0]["byteLength"] <= bin_len
    return doc


@pytest.mark.parametrize("version", ["0", "1"])
def test_fixture_is_valid_gltf_with_vrm(tmp_path, version):
    path = vrm_fixture.write_vrm(tmp_path / f"avatar{version}.vrm", version)
    doc = glb_json(path)
    gltf = pygltflib.GLTF2.load_binary(str(path))
    blob = gltf.binary_blob()
    n_nodes, n_acc, n_meshes = len(doc["nodes"]), len(doc["accessors"]), len(doc["meshes"])

    assert doc["asset"]["version"] == "2.0"
    assert EXTENSION[version] in doc["extensionsUsed"] and EXTENSION[version] in doc["extensions"]
    for node in doc["nodes"]:
        assert all(0 <= c < n_nodes for c in node.get("children", []))
        assert node.get("mesh", 0) < n_meshes
    for view in doc["bufferViews"]:
        assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + view["byteLength"] <= len(blob)
    for acc in doc["accessors"]:
        view = doc["bufferViews"][acc["bufferView"]]
        size = {5126: 12, 5123: 2}[acc["componentType"]]
        assert acc["count"] * size <= view["byteLength"]
    for mesh in doc["meshes"]:
        counts = {len(p.get("targets", [])) for p in mesh["primitives"]}
        assert len(counts) == 1  # every primitive of a mesh has the same morph targets
        assert len(mesh.get("weights", [])) == counts.pop()
        for prim in mesh["primitives"]:
            for acc in [*prim["attributes"].values(), prim["indices"],
                        *(a for t in prim.get("targets", []) for a in t.values())]:
                assert 0 <= acc < n_acc
            for t in prim.get("targets", []):
                pos = doc["accessors"][t["POSITION"]]
                assert "min" in pos and "max" in pos  # glTF requires them on POSITION
    # every node is reachable from the scene exactly once (a tree)
    seen, todo = [], list(doc["scenes"][doc["scene"]]["nodes"])
    while todo:
        seen.append(todo.pop())
        todo += doc["nodes"][seen[-1]].get("children", [])
    assert sorted(seen) == list(range(n_nodes))

    ext = doc["extensions"][EXTENSION[version]]
    assert ext["specVersion"] == {"0": "0.0", "1": "1.0"}[version]
    if version == "1":
        bones = {b: v["node"] for b, v in ext["humanoid"]["humanBones"].items()}
        required = vrm_fixture.REQUIRED_BONES_1
        assert ext["lookAt"]["type"] == "bone"
        assert ext["meta"]["licenseUrl"] == "https://vrm.dev/licenses/1.0/"
        assert {"name", "authors", "avatarPermission", "commercialUsage"} <= set(ext["meta"])
        names = set(ext["expressions"]["preset"]) | set(ext["expressions"]["custom"])
        binds = [(b["node"], b["index"]) for e in [*ext["expressions"]["preset"].values(),
                                                   *ext["expressions"]["custom"].values()]
                 for b in e["morphTargetBinds"]]
        binds = [(doc["nodes"][n]["mesh"], i) for n, i in binds]
        front = 1.0  # VRM 1.0 faces +Z, the avatar's left is +X
    else:
        bones = {b["bone"]: b["node"] for b in ext["humanoid"]["humanBones"]}
        required = vrm_fixture.REQUIRED_BONES_0
        assert ext["firstPerson"]["lookAtTypeName"] == "Bone"
        assert {"title", "author", "allowedUserName", "licenseName"} <= set(ext["meta"])
        groups = ext["blendShapeMaster"]["blendShapeGroups"]
        presets = {g["presetName"]: g for g in groups}
        assert {"blink_l", "blink_r", "a", "i", "u", "e", "o"} <= set(presets)
        assert presets["blink_l"]["binds"][0]["weight"] == 100
        names = {g["name"] for g in groups}
        assert any(g["name"] == "jawOpen" and g["presetName"] == "unknown" for g in groups)
        binds = [(b["mesh"], b["index"]) for g in groups for b in g["binds"]]
        front = -1.0  # VRM 0.x faces -Z, the avatar's left is -X
    assert set(required) <= set(bones)
    assert all(0 <= n < n_nodes for n in bones.values())
    assert "jawOpen" in names
    for mesh, index in binds:
        assert index < len(doc["meshes"][mesh]["primitives"][0]["targets"])

    def world(node):  # translations only: the sum along the parent chain
        parent = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
        p = [0.0, 0.0, 0.0]
        while node is not None:
            p = [a + b for a, b in zip(p, doc["nodes"][node].get("translation", [0, 0, 0]))]
            node = parent.get(node)
        return p

    assert world(bones["leftEye"])[0] * front > 0 > world(bones["rightEye"])[0] * front
    assert world(bones["leftEye"])[2] * front > 0  # eyes in front of the head centre
    assert 1.4 < world(bones["head"])[1] < 1.6


def need_three_vrm() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node (Node.js) is not on PATH: {SETUP}")
    for pkg in ("three", "@pixiv/three-vrm"):
        if not (JS / "node_modules" / pkg / "package.json").is_file():
            pytest.fail(f"{JS / 'node_modules' / pkg} is missing: {SETUP}")
    return node


@pytest.mark.parametrize("version", ["0", "1"])
def test_three_vrm_loads_fixture(tmp_path, version):
    node = need_three_vrm()
    path = vrm_fixture.write_vrm(tmp_path / f"avatar{version}.vrm", version)
    run = subprocess.run([node, JS / "load_vrm.mjs", path], capture_output=True, text=True,
                         timeout=60, cwd=JS)
    assert run.returncode == 0, run.stderr[-2000:]
    vrm = json.loads(run.stdout)
    assert vrm["metaVersion"] == version
    assert vrm["lookAtType"] == "bone"
    assert EXPRESSIONS <= set(vrm["expressions"])
    assert {"hips", "head", "neck", "leftEye", "rightEye", "leftUpperArm", "rightFoot"} <= set(vrm["bones"])
    # each expression moves the meshes it should: the subject's own left eye for blinkLeft
    assert vrm["binds"]["blinkLeft"] == ["leftEyeDiscMesh"]
    assert vrm["binds"]["blinkRight"] == ["rightEyeDiscMesh"]
    for mouth in ("aa", "ih", "ou", "ee", "oh", "jawOpen"):
        assert vrm["binds"][mouth] == ["mouthMesh"]
    front = 1.0 if version == "1" else -1.0  # three-vrm keeps VRM 0.x facing -Z (rotateVRM0 turns it)
    assert vrm["leftEyeX"] * front > 0 > vrm["rightEyeX"] * front
    assert 1.5 < vrm["height"] < 1.7
