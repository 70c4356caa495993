"""Is this file a VRM model? A .vrm is a binary glTF (GLB) whose JSON chunk uses the VRM 0.x
extension `VRM` or VRM 1.0's `VRMC_vrm`. Checked where a user names one (`./vtb run --vrm`, the
bridge's `vrm_file`) so that a folder, an empty file or a PNG is refused at start with what is
wrong, instead of an avatar page that silently never loads it. No rclpy here."""
from __future__ import annotations

import json
import struct
from pathlib import Path

GLB_MAGIC = b"glTF"
VRM_EXTENSIONS = ("VRM", "VRMC_vrm")


def vrm_problem(path) -> str | None:
    """None for a readable VRM 0.x / 1.0 file, else what is wrong with `path`, in a few words."""
    p = Path(path).expanduser()
    if p.is_dir():
        return f"{path} is a folder, not a .vrm file"
    if not p.is_file():
        return f"no such file: {path}"
    try:
        with p.open("rb") as f:
            header = f.read(20)
            if len(header) == 0:
                return f"{path} is empty"
            if header[:4] != GLB_MAGIC:
                return f"{path} is not a VRM: a .vrm is a binary glTF, which starts with 'glTF' (this starts with {header[:4]!r})"
            if len(header) < 20:
                return f"{path} is not a VRM: a binary glTF cut short ({len(header)} bytes)"
            version, _, chunk_length, chunk_type = struct.unpack("<III4s", header[4:20])
            if version != 2 or chunk_type != b"JSON":
                return f"{path} is not a VRM: glTF version {version}, first chunk {chunk_type!r} (want 2, JSON)"
            document = json.loads(f.read(chunk_length))
    except (OSError, ValueError) as e:
        return f"cannot read {path} as a VRM: {e}"
    used = set(document.get("extensionsUsed") or []) | set(document.get("extensions") or {})
    if not used & set(VRM_EXTENSIONS):
        return f"{path} is a glTF model but not a VRM (no {' or '.join(VRM_EXTENSIONS)} extension)"
    return None
