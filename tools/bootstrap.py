#!/usr/bin/env python3
"""Set up vtb's environment: a venv, ROS 2, the project's Python packages, and a colcon build.

Run by ./vtb before every command; it must stay fast when nothing changed. Standard library
only: it runs before the venv exists.

Two setups:
  * "wheels": no ROS distribution is sourced. ROS 2 Jazzy comes from PyPI wheels into .venv,
    pinned by requirements/constraints.txt, and the wheels' CMake files are repaired inside
    the venv (they name include directories of the machine that built them).
  * "ros-<distro>": ROS_DISTRO is set (a ROS install or the ros:jazzy image is sourced). The venv
    sees the system's packages and only what they lack is installed; colcon builds against
    the sourced distribution.

In the wheel setup colcon also builds compat/ (stand-ins for interface packages no wheel
provides, e.g. tf2_msgs), each unless the venv holds a real one; on a ROS install only src/.

Each step is skipped when a stamp says its inputs have not changed; each prints its time.
"""
import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQ = ROOT / "requirements"
BUILD = ROOT / "build"
INSTALL = ROOT / "install"
# stand-ins for interface packages no wheel provides; built in the wheel setup only
COMPAT = ROOT / "compat"
# Bump to force every machine through the pip step again (e.g. when a repair below changes).
BOOTSTRAP_VERSION = "3"


def log(msg):
    print(f"[vtb setup] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    """A setup step; its output goes to stderr like the rest of setup's, so a command's own
    stdout (`./vtb detect --json`) stays what the command printed even when setup ran first."""
    log("$ " + " ".join(str(c) for c in cmd))
    kw.setdefault("stdout", sys.stderr)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256_of(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def read_stamp(path):
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def mode():
    distro = os.environ.get("ROS_DISTRO")
    return f"ros-{distro}" if distro else "wheels"


def venv_python():
    return VENV / "bin" / "python"


def step(name, fn):
    t0 = time.monotonic()
    did = fn()
    if did:
        log(f"{name}: done in {time.monotonic() - t0:.1f} s")
    return did


def ensure_venv():
    stamp = VENV / ".vtb-mode"
    if venv_python().exists() and read_stamp(stamp) == mode():
        return False
    if VENV.exists():
        log(f"setup changed to {mode()}: recreating {VENV}")
        run(["rm", "-rf", VENV])
    python = os.environ.get("VTB_PYTHON", sys.executable)
    cmd = [python, "-m", "venv"]
    if mode() != "wheels":
        # see the distribution's rclpy, cv_bridge, tf2_ros, ...; install only what is missing
        cmd.append("--system-site-packages")
    run(cmd + [VENV])
    stamp.write_text(mode() + "\n")
    return True


def pip_inputs():
    files = [REQ / "python.txt"]
    if mode() == "wheels":
        files += [REQ / "ros-jazzy-wheels.txt", REQ / "constraints.txt"]
    return files


def ensure_packages():
    stamp = VENV / ".vtb-packages"
    want = sha256_of(BOOTSTRAP_VERSION, mode(), *(f.read_bytes() for f in pip_inputs()))
    if read_stamp(stamp) == want:
        return False
    pip = [venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if mode() == "wheels":
        run(pip + ["-r", REQ / "ros-jazzy-wheels.txt", "-r", REQ / "python.txt",
                   "-c", REQ / "constraints.txt"])
        repair_wheel_cmake_files()
    else:
        # keep every package the distribution ships at its version (numpy above all: cv_bridge
        # is compiled against it) and add only what is missing
        keep = VENV / "ros-distribution-constraints.txt"
        frozen = subprocess.run([venv_python(), "-m", "pip", "freeze", "--all"], check=True,
                                capture_output=True, text=True).stdout
        keep.write_text("".join(line + "\n" for line in frozen.splitlines() if "==" in line))
        run(pip + ["-r", REQ / "python.txt", "colcon-common-extensions", "-c", keep])
    stamp.write_text(want + "\n")
    return True


REPAIR_SCRIPT = r"""
# The Jazzy wheels' exported CMake targets name the include directories of the machine that
# built them (/opt/python/cp3XX-cp3XX/...). Point them at this venv's Python and numpy.
import re, sys, sysconfig, pathlib, numpy
share = pathlib.Path(sys.prefix) / "share"
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
pat_np = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(_core|core)/include")
pat_py = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
n = 0
for f in share.glob("*/cmake/*.cmake"):
    text = f.read_text()
    new = pat_py.sub(py_inc, pat_np.sub(np_inc, text))
    if new != text:
        f.write_text(new)
        n += 1
print(f"repaired {n} CMake files in {share}")
"""


def repair_wheel_cmake_files():
    env = dict(os.environ, _ROS_WHEELS_BOOTSTRAP_COMPLETE="1")
    run([venv_python(), "-c", REPAIR_SCRIPT], env=env)


def real_package_in_venv(name, venv=VENV):
    """Whether the venv (the wheel setup's ament prefix) holds a real `name`: registered in its
    ament index, or importable from its site-packages. Plain file checks, no interpreter start."""
    if (venv / "share" / "ament_index" / "resource_index" / "packages" / name).exists():
        return True
    return any((sp / name).is_dir() for sp in venv.glob("lib/python3*/site-packages"))


def all_compat_packages(compat=COMPAT):
    return sorted(d.name for d in compat.iterdir() if (d / "package.xml").is_file()) if compat.is_dir() else []


def compat_packages(setup, venv=VENV, compat=COMPAT):
    """The stand-ins of compat/ to build: none on a ROS install (the distribution has the real
    packages), and in the wheel setup those the venv does not hold for real."""
    if setup != "wheels":
        return []
    return [n for n in all_compat_packages(compat) if not real_package_in_venv(n, venv)]


def base_paths(setup, venv=VENV, compat=COMPAT):
    """colcon's --base-paths: src/, plus compat/ when any stand-in is to be built."""
    return ["src"] + (["compat"] if compat_packages(setup, venv, compat) else [])


def colcon_command(setup, python, venv=VENV, compat=COMPAT):
    """The colcon build command line for `setup` ("wheels" or "ros-<distro>")."""
    paths = base_paths(setup, venv, compat)
    cmd = [python, "-m", "colcon", "build", "--symlink-install", "--base-paths", *paths]
    skip = [n for n in all_compat_packages(compat) if n not in compat_packages(setup, venv, compat)]
    if "compat" in paths and skip:
        # compat/ is searched for the stand-ins still wanted: leave out those a real package replaces
        cmd += ["--packages-skip", *skip]
    return cmd + ["--event-handlers", "console_direct-", "console_cohesion-", "summary+",
                  "--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={python}",
                  "-DCMAKE_BUILD_TYPE=Release"]


def remove_unwanted_compat_builds(setup):
    """A stand-in built earlier but no longer wanted (a ROS install now, or a real package in the
    venv) must not stay in install/: it would shadow the real one when install/setup.bash is
    sourced. Only what was built from compat/ is removed (its package.xml says so)."""
    wanted = compat_packages(setup)
    for name in all_compat_packages():
        if name in wanted:
            continue
        installed = INSTALL / name / "share" / name / "package.xml"
        try:
            ours = "Build-only stand-in for vtb" in installed.read_text()
        except OSError:  # not installed (or a dangling link to a removed checkout)
            ours = installed.is_symlink()
        if ours:
            log(f"removing the {name} stand-in from install/ and build/ (not wanted in {setup})")
            run(["rm", "-rf", INSTALL / name, BUILD / name])


def source_fingerprint():
    """Paths, sizes and mtimes of everything colcon builds: cheap, and changes with any edit."""
    h = hashlib.sha256()
    paths = base_paths(mode())
    h.update(("base-paths " + " ".join(paths) + " compat " + " ".join(compat_packages(mode())) + "\n").encode())
    for p in sorted(f for b in paths for f in (ROOT / b).rglob("*")):
        # node_modules: the tests' npm packages (installed after the build) are not built
        if "__pycache__" in p.parts or "node_modules" in p.parts or p.suffix == ".pyc" or not p.is_file():
            continue
        st = p.stat()
        h.update(f"{p.relative_to(ROOT)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    h.update(read_stamp(VENV / ".vtb-packages").encode() if (VENV / ".vtb-packages").exists() else b"")
    return h.hexdigest()


def build_env():
    env = dict(os.environ)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    if mode() == "wheels":
        # the venv is the ament prefix: share/ament_index, share/<pkg>/cmake, lib/
        env["AMENT_PREFIX_PATH"] = str(VENV)
        env["CMAKE_PREFIX_PATH"] = str(VENV)
        env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(VENV / "lib")] + [str(p) for p in sorted(site_packages().glob("ros_*.libs"))]
            + [env.get("LD_LIBRARY_PATH", "")])
    return env


def site_packages():
    return next(VENV.glob("lib/python3*/site-packages"))


def ensure_build(force=False):
    stamp = BUILD / ".vtb-source"
    want = source_fingerprint()
    if not force and read_stamp(stamp) == want and (INSTALL / "setup.bash").exists():
        return False
    remove_unwanted_compat_builds(mode())
    # colcon from the venv, so ament_python entry points get the venv's interpreter
    run(colcon_command(mode(), venv_python()), cwd=ROOT, env=build_env())
    BUILD.mkdir(exist_ok=True)
    stamp.write_text(want + "\n")
    return True


JS_TOOLS = ROOT / "src" / "vtb_bridge" / "test" / "js"
CHROMIUM = Path("/usr/bin/chromium")


def ensure_js_tools():
    """npm ci for the tests' JavaScript peers (socket.io server and client, playwright-core
    driving Debian's chromium), when package-lock.json changed or node_modules is missing."""
    lock = JS_TOOLS / "package-lock.json"
    if not lock.is_file():
        return False
    stamp = JS_TOOLS / "node_modules" / ".vtb-lock.sha256"
    want = sha256_of(lock.read_bytes())
    if read_stamp(stamp) == want:
        return False
    if not shutil.which("npm"):
        log("npm is not installed: the browser and Socket.IO peer tests need Node.js and npm "
            "(Debian: apt-get install nodejs npm), then run ./vtb test again")
        return False
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_TOOLS)
    stamp.write_text(want + "\n")
    return True


def ensure_chromium():
    """Debian's chromium for the avatar page test (never a browser a tool downloads itself)."""
    if CHROMIUM.exists():
        return False
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) for the avatar page test")
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rebuild", action="store_true", help="run colcon build even if nothing changed")
    ap.add_argument("--test-tools", action="store_true",
                    help="also set up what the tests need beyond Python: npm packages, Debian's chromium")
    args = ap.parse_args()
    if any(c.isspace() for c in str(ROOT)):
        # colcon's generated install/local_setup.bash does not quote the workspace path: with a
        # space in it every later ./vtb command would exit 127, so refuse before doing anything
        log(f"the checkout's path {str(ROOT)!r} contains a space, which colcon's setup scripts cannot "
            f"handle; move or clone it to a path without spaces")
        sys.exit(2)
    t0 = time.monotonic()
    lock_path = ROOT / ".vtb-setup.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two ./vtb at once must not build into each other
        did = [step(f"venv ({mode()})", ensure_venv),
               step("python packages", ensure_packages),
               step("colcon build", lambda: ensure_build(args.rebuild))]
        if args.test_tools:
            did += [step("test tools: npm", ensure_js_tools), step("test tools: chromium", ensure_chromium)]
    state = "ready" if any(did) else "up to date"
    log(f"{state} ({mode()}, {time.monotonic() - t0:.1f} s)")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        log(f"failed: {' '.join(map(str, e.cmd))} exited with {e.returncode}")
        sys.exit(e.returncode or 1)
