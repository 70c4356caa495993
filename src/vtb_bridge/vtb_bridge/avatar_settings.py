"""The avatar settings a user changes on the built-in page (or with `ros2 param set`), kept across
restarts in a small JSON file. No rclpy here.

    head_sensitivity   0..3   the head's motion, scaled (1: as measured)
    eye_sensitivity    0..3   the gaze, scaled
    smoothing          0..5   every time constant of the avatar parameters, scaled (1: the YAML's)
    mirror             bool   the avatar moves like the user's mirror image

They are the bridge node's parameters of the same names (live). The file is
`$XDG_CONFIG_HOME/vtb/avatar_settings.json` (~/.config/vtb/, next to the VTube Studio token),
written whole (a temporary file renamed over it, mode 0600) after every change. At start the
bridge takes the file's values for the settings not given at start; a value given at start
(`-p mirror:=true`, the YAML, a launch file), even the default, wins. A file that holds bad values
is said once and those values ignored (its good values still count); one that cannot be read as
JSON at all is said once and kept aside as `avatar_settings.json.bad` (not overwritten by the next
save), and the defaults are used.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

log = logging.getLogger("vtb_bridge.avatar_settings")

# name -> (default, lowest, highest); None bounds: a bool
SETTINGS = {
    "head_sensitivity": (1.0, 0.0, 3.0),
    "eye_sensitivity": (1.0, 0.0, 3.0),
    "smoothing": (1.0, 0.0, 5.0),
    "mirror": (True, None, None),
}
DEFAULTS = {name: spec[0] for name, spec in SETTINGS.items()}


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vtb" / "avatar_settings.json"


def check(name: str, value) -> str | None:
    """None if `value` is a good value of setting `name`, else the reason."""
    if name not in SETTINGS:
        return f"unknown setting {name!r} (known: {', '.join(SETTINGS)})"
    _, lo, hi = SETTINGS[name]
    if lo is None:
        return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {_short(value)}"
    try:
        finite = math.isfinite(value)   # an int of 400 digits does not fit a float: OverflowError
    except OverflowError:
        finite = False
    if not finite:
        return f"{name} must be a finite number, got {_short(value)}"
    if not lo <= value <= hi:
        return f"{name} must be within {lo:g}..{hi:g}, got {value:g}"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def validated(data) -> tuple[dict, list[str]]:
    """(the good settings of `data` with their proper types, the reasons for the bad ones)."""
    if not isinstance(data, dict):
        return {}, [f"settings must be an object, got {type(data).__name__}"]
    good, bad = {}, []
    for name, value in data.items():
        reason = check(str(name), value)
        if reason:
            bad.append(reason)
        else:
            good[name] = value if isinstance(SETTINGS[name][0], bool) else float(value)
    return good, bad


def load(path: Path | None) -> dict:
    """The file's good settings; {} when there is none or it cannot be read (said once)."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:   # not JSON (or not readable): kept aside, defaults used
        aside = Path(path).with_name(Path(path).name + ".bad")
        try:
            os.replace(path, aside)
            log.warning("avatar settings %s cannot be read (%s): kept as %s, the defaults used", path, e, aside)
        except OSError as e2:
            log.warning("avatar settings %s cannot be read (%s), nor moved aside (%s): the defaults used", path, e, e2)
        return {}
    good, bad = validated(data)
    if bad:
        log.warning("avatar settings %s: ignored %s", path, "; ".join(bad))
    return good


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` whole, readable by the user only: a temporary file beside it,
    0600, renamed over it (also the VTube Studio token's way)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode is ignored for a stale temporary file
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def save(path: Path, settings: dict) -> None:
    """Write `settings` whole (write_private)."""
    write_private(path, json.dumps({k: settings[k] for k in SETTINGS if k in settings}, indent=1) + "\n")
