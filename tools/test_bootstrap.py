"""The environment setup: idempotent, and the wheels' CMake files repaired inside the venv."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def test_second_setup_run_does_nothing():
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    r = subprocess.run(["python3", ROOT / "tools" / "bootstrap.py"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    # one line, no step ran (each step prints "done in" when it runs)
    assert "up to date" in r.stderr and "done in" not in r.stderr, r.stderr


@pytest.mark.skipif(bool(os.environ.get("ROS_DISTRO")), reason="the repair applies to the wheel setup only")
def test_wheel_cmake_files_point_inside_this_machine():
    bad = [p for p in VENV.glob("share/*/cmake/*.cmake") if "/opt/python/cp3" in p.read_text()]
    assert bad == [], f"unrepaired: {bad[:3]}"
    assert any("rosidl_generator_py" in p.name for p in VENV.glob("share/*/cmake/*.cmake"))


def test_activate_script_gives_a_working_ros_environment():
    """`source activate.bash` in a plain shell gives rclpy, the vtb messages and the nodes."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH", "PYTHONPATH",
                        "_ROS_WHEELS_BOOTSTRAP_COMPLETE", "COLCON_PREFIX_PATH", "CMAKE_PREFIX_PATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    script = (f"source {ROOT}/activate.bash && python -c 'import rclpy, vtb_msgs.msg, vtb_detector.models; "
              "from ament_index_python.packages import get_package_prefix as g; print(g(\"vtb_pose\"))'")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(ROOT / "install" / "vtb_pose")


def test_setup_steps_print_on_stderr_so_a_commands_stdout_stays_its_own():
    """colcon's build log on stdout broke `./vtb detect --json | ...` on the first call after a
    source change: every setup step's output goes to stderr."""
    import sys
    code = ("import sys; sys.path.insert(0, 'tools'); import bootstrap; "
            "bootstrap.run([sys.executable, '-c', 'print(\"from a setup step\")'])")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "from a setup step" in r.stderr


def test_a_checkout_path_with_a_space_is_refused_at_once(tmp_path):
    """colcon's install/local_setup.bash breaks on an unquoted path with a space: every ./vtb
    command exited 127 after a whole setup. Setup refuses before it starts, and says why."""
    import shutil
    import sys
    spaced = tmp_path / "my checkout" / "tools"
    spaced.mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "bootstrap.py", spaced / "bootstrap.py")
    r = subprocess.run([sys.executable, str(spaced / "bootstrap.py")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "contains a space" in r.stderr
    assert not (tmp_path / "my checkout" / ".venv").exists(), "nothing was set up"
