"""compat/ (stand-ins for interface packages the ROS 2 wheels lack, e.g. tf2_msgs) is built in
the wheel setup only, never where a real package exists, and never left behind to shadow one.
Checked on bootstrap's command line, without running colcon."""
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("vtb_bootstrap", ROOT / "tools" / "bootstrap.py")
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)


def base_paths_of(cmd):
    i = cmd.index("--base-paths") + 1
    j = next(k for k in range(i, len(cmd)) if str(cmd[k]).startswith("--"))
    return cmd[i:j]


@pytest.fixture
def empty_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    return venv


def test_compat_has_the_tf2_msgs_stand_in():
    assert bootstrap.all_compat_packages() == ["tf2_msgs"]
    xml = (ROOT / "compat" / "tf2_msgs" / "package.xml").read_text()
    assert "Build-only stand-in" in xml and "wheel setup" in xml


def test_ros_install_builds_src_only(empty_venv):
    for setup in ("ros-jazzy", "ros-humble"):
        cmd = bootstrap.colcon_command(setup, "python", venv=empty_venv)
        assert base_paths_of(cmd) == ["src"]
        assert bootstrap.compat_packages(setup, venv=empty_venv) == []


def test_wheel_setup_builds_compat(empty_venv):
    cmd = bootstrap.colcon_command("wheels", "python", venv=empty_venv)
    assert base_paths_of(cmd) == ["src", "compat"]
    assert "--packages-skip" not in cmd


@pytest.mark.parametrize("where", ["ament_index", "site_packages"])
def test_wheel_setup_never_shadows_a_real_tf2_msgs(empty_venv, where):
    if where == "ament_index":
        (empty_venv / "share" / "ament_index" / "resource_index" / "packages" / "tf2_msgs").touch()
    else:
        (empty_venv / "lib" / "python3.11" / "site-packages" / "tf2_msgs").mkdir()
    assert bootstrap.real_package_in_venv("tf2_msgs", empty_venv)
    cmd = bootstrap.colcon_command("wheels", "python", venv=empty_venv)
    assert base_paths_of(cmd) == ["src"]


def test_a_stand_in_no_longer_wanted_is_removed_from_install(tmp_path, monkeypatch):
    """Built in the wheel setup, then the checkout goes to a ROS install: install/tf2_msgs must go,
    or sourcing install/setup.bash would put it in front of the real one."""
    install, build = tmp_path / "install", tmp_path / "build"
    share = install / "tf2_msgs" / "share" / "tf2_msgs"
    share.mkdir(parents=True)
    (share / "package.xml").symlink_to(ROOT / "compat" / "tf2_msgs" / "package.xml")
    (build / "tf2_msgs").mkdir(parents=True)
    (install / "vtb_pose").mkdir()
    monkeypatch.setattr(bootstrap, "INSTALL", install)
    monkeypatch.setattr(bootstrap, "BUILD", build)
    bootstrap.remove_unwanted_compat_builds("wheels")  # still wanted here: kept
    assert (install / "tf2_msgs").exists()
    bootstrap.remove_unwanted_compat_builds("ros-jazzy")
    assert not (install / "tf2_msgs").exists() and not (build / "tf2_msgs").exists()
    assert (install / "vtb_pose").exists()


def test_a_real_tf2_msgs_in_install_is_left_alone(tmp_path, monkeypatch):
    install = tmp_path / "install"
    share = install / "tf2_msgs" / "share" / "tf2_msgs"
    share.mkdir(parents=True)
    (share / "package.xml").write_text("<package><name>tf2_msgs</name><description>Messages and "
                                       "service definitions for tf2.</description></package>")
    monkeypatch.setattr(bootstrap, "INSTALL", install)
    monkeypatch.setattr(bootstrap, "BUILD", tmp_path / "build")
    bootstrap.remove_unwanted_compat_builds("ros-jazzy")
    assert (install / "tf2_msgs").exists()


def test_this_checkout_matches_its_setup():
    built = (ROOT / "install" / "tf2_msgs").exists()
    if os.environ.get("ROS_DISTRO"):
        assert not built or "Build-only stand-in" not in (
            ROOT / "install" / "tf2_msgs" / "share" / "tf2_msgs" / "package.xml").read_text()
    else:
        assert built == bool(bootstrap.compat_packages("wheels"))
