# Enter vtb's environment in your own shell:   source activate.bash
# (run ./vtb once first: it creates .venv and builds the workspace).
# Works from bash and zsh; sets up the venv, the colcon workspace and, with the ROS wheels,
# the library path the wheels need.

if [ -n "${BASH_SOURCE[0]:-}" ]; then
  VTB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
else
  VTB_ROOT="$(cd "$(dirname "$0")" && pwd)"
fi
export VTB_ROOT

if [ ! -x "$VTB_ROOT/.venv/bin/python" ]; then
  echo "vtb: no environment yet; run $VTB_ROOT/vtb --help once to create it" >&2
  return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
. "$VTB_ROOT/.venv/bin/activate"

# Fast DDS with a shared-memory segment that holds a camera image (see the file's comment):
# without it most images never cross from one process to another. A profile of your own wins.
if [ -z "${FASTRTPS_DEFAULT_PROFILES_FILE:-}${FASTDDS_DEFAULT_PROFILES_FILE:-}" ]; then
  export FASTRTPS_DEFAULT_PROFILES_FILE="$VTB_ROOT/src/vtb_bringup/config/fastdds.xml"
  export FASTDDS_DEFAULT_PROFILES_FILE="$FASTRTPS_DEFAULT_PROFILES_FILE"
fi

if [ -z "${ROS_DISTRO:-}" ]; then
  # ROS 2 from wheels: the venv is the ament prefix, and its libraries live in lib/ and in
  # site-packages/ros_*.libs. Setting the path here (and marking it done) spares every Python
  # start the re-exec that ros-wheels-bootstrapper would do.
  _vtb_sp="$(ls -d "$VTB_ROOT"/.venv/lib/python3*/site-packages | head -n1)"
  _vtb_libs="$VTB_ROOT/.venv/lib"
  for _d in "$_vtb_sp"/ros_*.libs; do [ -d "$_d" ] && _vtb_libs="$_vtb_libs:$_d"; done
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$VTB_ROOT/.venv/lib:"*) ;;
    *) export LD_LIBRARY_PATH="$_vtb_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
  export AMENT_PREFIX_PATH="$VTB_ROOT/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VTB_ROOT/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
  unset _vtb_sp _vtb_libs _d
fi

if [ -f "$VTB_ROOT/install/setup.bash" ]; then
  if [ -n "${ZSH_VERSION:-}" ] && [ -f "$VTB_ROOT/install/setup.zsh" ]; then
    # shellcheck disable=SC1091
    . "$VTB_ROOT/install/setup.zsh"
  else
    # shellcheck disable=SC1091
    . "$VTB_ROOT/install/setup.bash"
  fi
fi
