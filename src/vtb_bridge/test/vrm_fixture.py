"""Small valid VRM avatars for the tests of the VRM page (not a test file: import it).

`write_vrm(path, "0")` writes a VRM 0.x file (glTF extension `VRM`, specVersion 0.0, model facing
-Z), `write_vrm(path, "1")` a VRM 1.0 file (`VRMC_vrm` specVersion 1.0 + an empty
`VRMC_springBone`, model facing +Z). Both are binary glTF (.vrm = GLB) written by pygltflib, ~1.6 m
tall, in metres, with:

- a humanoid skeleton (every bone either spec marks required, plus upperChest, shoulders, eyes);
- unskinned meshes as children of the bones (they move with them): a blue body and limbs, a skin
  head, dark eye discs on the eye bones (so gaze moves them), a red mouth;
- morph targets: each eye disc collapses vertically (blink), the mouth opens;
- expressions: blink, blinkLeft/blinkRight (the avatar's own left/right eye), aa/ih/ou/ee/oh
  (the mouth target at different weights) and a custom `jawOpen` (for perfect-sync tests);
- lookAt of type bone, meta with every required field.

Geometry is built in VRM 1.0's frame (front +Z, avatar's left +X) and turned 180 degrees about Y
for VRM 0.x (front -Z, avatar's left -X).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pygltflib

# Bones (VRM 1.0 names, which VRM 0.x shares): parent, position in the model (metres, 1.0 frame).
SKELETON: dict[str, tuple[str | None, tuple[float, float, float]]] = {
    "hips": (None, (0.0, 0.85, 0.0)),
    "spine": ("hips", (0.0, 0.95, 0.0)),
    "chest": ("spine", (0.0, 1.08, 0.0)),
    "upperChest": ("chest", (0.0, 1.20, 0.0)),
    "neck": ("upperChest", (0.0, 1.35, 0.0)),
    "head": ("neck", (0.0, 1.42, 0.0)),
    # eyeball centres inside the head: the discs in front of them swing when the bone turns
    "leftEye": ("head", (0.035, 1.53, 0.060)),
    "rightEye": ("head", (-0.035, 1.53, 0.060)),
    "leftShoulder": ("upperChest", (0.03, 1.30, 0.0)),
    "leftUpperArm": ("leftShoulder", (0.15, 1.30, 0.0)),
    "leftLowerArm": ("leftUpperArm", (0.40, 1.30, 0.0)),
    "leftHand": ("leftLowerArm", (0.63, 1.30, 0.0)),
    "rightShoulder": ("upperChest", (-0.03, 1.30, 0.0)),
    "rightUpperArm": ("rightShoulder", (-0.15, 1.30, 0.0)),
    "rightLowerArm": ("rightUpperArm", (-0.40, 1.30, 0.0)),
    "rightHand": ("rightLowerArm", (-0.63, 1.30, 0.0)),
    "leftUpperLeg": ("hips", (0.09, 0.80, 0.0)),
    "leftLowerLeg": ("leftUpperLeg", (0.09, 0.45, 0.0)),
    "leftFoot": ("leftLowerLeg", (0.09, 0.08, 0.0)),
    "rightUpperLeg": ("hips", (-0.09, 0.80, 0.0)),
    "rightLowerLeg": ("rightUpperLeg", (-0.09, 0.45, 0.0)),
    "rightFoot": ("rightLowerLeg", (-0.09, 0.08, 0.0)),
}

# Required humanoid bones: VRM 1.0 (humanoid.md) and VRM 0.x (which also requires chest and neck).
REQUIRED_BONES_1 = (
    "hips", "spine", "head",
    "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg", "rightFoot",
    "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand",
)
REQUIRED_BONES_0 = REQUIRED_BONES_1 + ("chest", "neck")

HEAD_CENTRE = (0.0, 1.52, 0.0)
HEAD_RADIUS = 0.10

COLOURS = {  # linear RGBA base colours; unlit so a screenshot shows them as they are
    "skin": (0.95, 0.72, 0.58, 1.0),
    "eye": (0.02, 0.02, 0.03, 1.0),
    "mouth": (0.80, 0.03, 0.03, 1.0),
    "body": (0.05, 0.15, 0.85, 1.0),
}

# Expression -> (mesh part, weight 0..1). The mouth's one target reused at different openings.
EXPRESSIONS_1 = {
    "blink": [("leftEyeDisc", 1.0), ("rightEyeDisc", 1.0)],
    "blinkLeft": [("leftEyeDisc", 1.0)],
    "blinkRight": [("rightEyeDisc", 1.0)],
    "aa": [("mouth", 1.0)],
    "ih": [("mouth", 0.3)],
    "ou": [("mouth", 0.5)],
    "ee": [("mouth", 0.4)],
    "oh": [("mouth", 0.7)],
}
CUSTOM_EXPRESSIONS = {"jawOpen": [("mouth", 1.0)]}
# lookAt: a gaze of LOOK_IN degrees (or more) turns the eye bones LOOK_OUT degrees, in every
# direction; larger than the usual 90 -> 10 so that a screenshot shows the eyes move
LOOK_IN, LOOK_OUT = 45.0, 15.0
# VRM 0.x presetName for each 1.0 preset name
PRESET_0 = {"blink": "blink", "blinkLeft": "blink_l", "blinkRight": "blink_r",
            "aa": "a", "ih": "i", "ou": "u", "ee": "e", "oh": "o"}


class _Bin:
    """The GLB's binary chunk: each array becomes a bufferView + accessor (4-byte aligned)."""

    def __init__(self, gltf: pygltflib.GLTF2):
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, *, indices: bool = False) -> int:
        if indices:
            array = np.asarray(array, dtype=np.uint16).reshape(-1)
            ctype, atype, target = pygltflib.UNSIGNED_SHORT, pygltflib.SCALAR, pygltflib.ELEMENT_ARRAY_BUFFER
        else:
            array = np.asarray(array, dtype=np.float32).reshape(-1, 3)
            ctype, atype, target = pygltflib.FLOAT, pygltflib.VEC3, pygltflib.ARRAY_BUFFER
        raw = array.tobytes()
        self.gltf.bufferViews.append(pygltflib.BufferView(
            buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target))
        self.data += raw + b"\0" * (-len(raw) % 4)
        acc = pygltflib.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=ctype,
                                 count=len(array), type=atype)
        if not indices:  # POSITION accessors (morph targets too) must have min and max
            acc.min = [float(v) for v in array.min(axis=0)]
            acc.max = [float(v) for v in array.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


# --- geometry (in the owning bone's local space, 1.0 frame) ------------------------------------

def _box(centre, size):
    c, h = np.asarray(centre, float), np.asarray(size, float) / 2
    pos, nrm, idx = [], [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            n = np.zeros(3); n[axis] = sign
            u, v = np.roll(np.eye(3), 1, axis=0)[axis], np.roll(np.eye(3), 2, axis=0)[axis]
            if sign < 0:
                u, v = v, u  # keep the winding counter-clockwise seen from outside
            base = len(pos)
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                pos.append(c + h * (n + a * u + b * v)); nrm.append(n)
            idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return np.array(pos), np.array(nrm), idx


def _sphere(centre, radius, rings=8, segments=12):
    pos, nrm, idx = [], [], []
    for i in range(rings + 1):
        theta = math.pi * i / rings
        for j in range(segments + 1):
            phi = 2 * math.pi * j / segments
            n = np.array([math.sin(theta) * math.sin(phi), math.cos(theta), math.sin(theta) * math.cos(phi)])
            pos.append(np.asarray(centre) + radius * n); nrm.append(n)
    for i in range(rings):
        for j in range(segments):
            a, b = i * (segments + 1) + j, (i + 1) * (segments + 1) + j
            idx += [a, b, a + 1, a + 1, b, b + 1]
    return np.array(pos), np.array(nrm), idx


def _disc(centre, rx, ry, segments=12):
    """A flat ellipse facing +Z (a fan around its centre)."""
    pos = [np.asarray(centre, float)]
    for j in range(segments):
        a = 2 * math.pi * j / segments
        pos.append(np.asarray(centre) + [rx * math.cos(a), ry * math.sin(a), 0.0])
    idx = []
    for j in range(segments):
        idx += [0, 1 + j, 1 + (j + 1) % segments]
    return np.array(pos), np.tile([0.0, 0.0, 1.0], (len(pos), 1)), idx


def _collapse_y(pos, cy):
    """Morph deltas that flatten the vertices onto the line y = cy (an eye closing)."""
    d = np.zeros_like(pos); d[:, 1] = cy - pos[:, 1]
    return d


def _on_head(x, y, front=0.006):
    """z of a point just in front of the head sphere's surface at (x, y)."""
    dx, dy = x - HEAD_CENTRE[0], y - HEAD_CENTRE[1]
    return HEAD_CENTRE[2] + math.sqrt(HEAD_RADIUS ** 2 - dx * dx - dy * dy) + front


# --- parts -------------------------------------------------------------------------------------

def build_skeleton(flip: bool) -> tuple[list[pygltflib.Node], dict[str, int]]:
    """One node per bone, translations only (rest pose = T-pose, no rotation or scale)."""
    nodes, index = [], {}
    for name in SKELETON:
        index[name] = len(nodes)
        nodes.append(pygltflib.Node(name=name, children=[]))
    for name, (parent, p) in SKELETON.items():
        local = np.subtract(p, SKELETON[parent][1]) if parent else np.asarray(p)
        nodes[index[name]].translation = [float(v) for v in _frame(local, flip)]
        if parent:
            nodes[index[parent]].children.append(index[name])
    return nodes, index


def _frame(v, flip):
    """1.0 frame -> the file's frame: VRM 0.x is turned 180 degrees about Y."""
    v = np.asarray(v, float)
    return v * [-1.0, 1.0, -1.0] if flip else v


def mesh_parts():
    """Each part: (bone, material, (positions, normals, indices) in model space, morph deltas)."""
    def limb(a, b, thick):
        pa, pb = np.asarray(SKELETON[a][1]), np.asarray(SKELETON[b][1])
        size = np.abs(pb - pa) + thick
        return (pa + pb) / 2, size

    parts = {
        "body": ("chest", "body", _box((0.0, 1.07, 0.0), (0.32, 0.52, 0.18)), None),
        "head": ("head", "skin", _sphere(HEAD_CENTRE, HEAD_RADIUS), None),
    }
    for side in ("left", "right"):
        for a, b in (("UpperArm", "LowerArm"), ("LowerArm", "Hand"), ("UpperLeg", "LowerLeg"),
                     ("LowerLeg", "Foot")):
            c, s = limb(side + a, side + b, 0.09)
            parts[side + a] = (side + a, "body", _box(c, s), None)
    for side in ("left", "right"):
        x, y = SKELETON[side + "Eye"][1][0], SKELETON[side + "Eye"][1][1]
        # 1 cm proud of the face, so that a disc turned LOOK_OUT degrees stays outside the head
        geo = _disc((x, y, _on_head(x, y, front=0.010)), 0.017, 0.020)
        parts[side + "EyeDisc"] = (side + "Eye", "eye", geo, _collapse_y(geo[0], y))
    my = 1.475
    geo = _disc((0.0, my, _on_head(0.0, my)), 0.026, 0.004)
    opened = np.zeros_like(geo[0]); opened[:, 1] = (geo[0][:, 1] - my) * 5.0  # 0.8 cm -> 4 cm tall
    parts["mouth"] = ("head", "mouth", geo, opened)
    return parts


def build_meshes(gltf, buf, bones, flip) -> dict[str, tuple[int, int]]:
    """Materials, meshes (with their morph targets) and one node per mesh under its bone.
    Returns part -> (mesh index, node index)."""
    materials = {}
    for name, rgba in COLOURS.items():
        materials[name] = len(gltf.materials)
        gltf.materials.append(pygltflib.Material(
            name=name, extensions={"KHR_materials_unlit": {}},
            pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
                baseColorFactor=list(rgba), metallicFactor=0.0, roughnessFactor=1.0)))
    out = {}
    for part, (bone, material, (pos, nrm, idx), delta) in mesh_parts().items():
        origin = np.asarray(SKELETON[bone][1])
        local = np.array([_frame(p - origin, flip) for p in pos])
        normals = np.array([_frame(n, flip) for n in nrm])
        prim = pygltflib.Primitive(
            attributes=pygltflib.Attributes(POSITION=buf.add(local), NORMAL=buf.add(normals)),
            indices=buf.add(idx, indices=True), material=materials[material])
        mesh = pygltflib.Mesh(name=part, primitives=[prim])
        if delta is not None:
            prim.targets = [{"POSITION": buf.add(np.array([_frame(d, flip) for d in delta]))}]
            mesh.weights = [0.0]
            mesh.extras = {"targetNames": ["blink" if "Eye" in part else "open"]}
        gltf.meshes.append(mesh)
        node = len(gltf.nodes)
        gltf.nodes.append(pygltflib.Node(name=part + "Mesh", mesh=len(gltf.meshes) - 1))
        gltf.nodes[bones[bone]].children.append(node)
        out[part] = (len(gltf.meshes) - 1, node)
    return out


def vrm0_extension(bones, meshes) -> dict:
    """The `VRM` extension, VRM 0.x (vrm-specification/specification/0.0)."""
    def group(name, preset, binds):
        return {"name": name, "presetName": preset, "isBinary": False, "materialValues": [],
                "binds": [{"mesh": meshes[p][0], "index": 0, "weight": 100.0 * w} for p, w in binds]}

    curve = {"curve": [0, 0, 0, 1, 1, 1, 1, 0], "xRange": LOOK_IN, "yRange": LOOK_OUT}  # linear
    groups = [group(n[0].upper() + n[1:], PRESET_0[n], b) for n, b in EXPRESSIONS_1.items()]
    groups += [group(n, "unknown", b) for n, b in CUSTOM_EXPRESSIONS.items()]
    return {
        "exporterVersion": "vtb vrm_fixture",
        "specVersion": "0.0",
        "meta": {
            "title": "vtb test avatar", "version": "1.0", "author": "vtb tests",
            "contactInformation": "", "reference": "",
            "allowedUserName": "OnlyAuthor", "violentUssageName": "Disallow",
            "sexualUssageName": "Disallow", "commercialUssageName": "Disallow",
            "otherPermissionUrl": "", "licenseName": "Redistribution_Prohibited", "otherLicenseUrl": "",
        },
        "humanoid": {
            "humanBones": [{"bone": b, "node": n, "useDefaultValues": True} for b, n in bones.items()],
            "armStretch": 0.05, "legStretch": 0.05, "upperArmTwist": 0.5, "lowerArmTwist": 0.5,
            "upperLegTwist": 0.5, "lowerLegTwist": 0.5, "feetSpacing": 0, "hasTranslationDoF": False,
        },
        "firstPerson": {
            "firstPersonBone": bones["head"], "firstPersonBoneOffset": {"x": 0, "y": 0.06, "z": 0},
            "meshAnnotations": [{"mesh": m, "firstPersonFlag": "Auto"} for m, _ in meshes.values()],
            "lookAtTypeName": "Bone",
            "lookAtHorizontalInner": curve, "lookAtHorizontalOuter": curve,
            "lookAtVerticalDown": curve, "lookAtVerticalUp": curve,
        },
        "blendShapeMaster": {"blendShapeGroups": groups},
        "secondaryAnimation": {"boneGroups": [], "colliderGroups": []},
        "materialProperties": [],
    }


def vrm1_extension(bones, meshes) -> dict:
    """The `VRMC_vrm` extension, VRM 1.0 (vrm-specification/specification/VRMC_vrm-1.0)."""
    def expression(binds):
        return {"isBinary": False, "overrideBlink": "none", "overrideLookAt": "none",
                "overrideMouth": "none",
                "morphTargetBinds": [{"node": meshes[p][1], "index": 0, "weight": w} for p, w in binds]}

    rng = {"inputMaxValue": LOOK_IN, "outputScale": LOOK_OUT}
    return {
        "specVersion": "1.0",
        "meta": {
            "name": "vtb test avatar", "version": "1.0", "authors": ["vtb tests"],
            "licenseUrl": "https://vrm.dev/licenses/1.0/",
            "avatarPermission": "onlyAuthor", "commercialUsage": "personalNonProfit",
            "allowExcessivelyViolentUsage": False, "allowExcessivelySexualUsage": False,
            "allowPoliticalOrReligiousUsage": False, "allowAntisocialOrHateUsage": False,
            "creditNotation": "required", "allowRedistribution": False, "modification": "prohibited",
        },
        "humanoid": {"humanBones": {b: {"node": n} for b, n in bones.items()}},
        "firstPerson": {"meshAnnotations": [{"node": n, "type": "auto"} for _, n in meshes.values()]},
        "lookAt": {"type": "bone", "offsetFromHeadBone": [0.0, 0.06, 0.0],
                   "rangeMapHorizontalInner": rng, "rangeMapHorizontalOuter": rng,
                   "rangeMapVerticalDown": rng, "rangeMapVerticalUp": rng},
        "expressions": {"preset": {n: expression(b) for n, b in EXPRESSIONS_1.items()},
                        "custom": {n: expression(b) for n, b in CUSTOM_EXPRESSIONS.items()}},
    }


def write_vrm(path, version: str) -> Path:
    """Write a VRM 0.x (version "0") or 1.0 (version "1") avatar to `path` and return it."""
    if version not in ("0", "1"):
        raise ValueError(f"VRM version must be '0' or '1', not {version!r}")
    flip = version == "0"
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator="vtb vrm_fixture"))
    buf = _Bin(gltf)
    gltf.nodes, bones = build_skeleton(flip)
    meshes = build_meshes(gltf, buf, bones, flip)
    gltf.scenes = [pygltflib.Scene(nodes=[bones["hips"]])]
    gltf.scene = 0
    if flip:
        ext = {"VRM": vrm0_extension(bones, meshes)}
    else:
        ext = {"VRMC_vrm": vrm1_extension(bones, meshes),
               "VRMC_springBone": {"specVersion": "1.0", "colliders": [], "colliderGroups": [], "springs": []}}
    gltf.extensions = ext
    gltf.extensionsUsed = ["KHR_materials_unlit", *ext]
    gltf.buffers = [pygltflib.Buffer(byteLength=len(buf.data))]
    gltf.set_binary_blob(bytes(buf.data))
    path = Path(path)
    gltf.save_binary(str(path))
    return path
