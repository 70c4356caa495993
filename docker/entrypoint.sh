#!/usr/bin/env bash
# Enter vtb's environment (ROS 2, vtb's venv and colcon workspace), then run the command
# (./vtb demo by default; compose.yaml runs ros2 launch vtb_bringup vtb.launch.py).
set -e
cd /opt/vtb
# shellcheck disable=SC1090
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# the venv (sees the distribution's packages) and install/setup.bash of the image's build
# shellcheck disable=SC1091
source /opt/vtb/activate.bash
# onnxruntime-gpu's CUDA and cuDNN are pip packages in the venv (nvidia/<name>/lib for CUDA 12,
# nvidia/cu13/lib for CUDA 13). ONNX Runtime's CUDA provider loads them with dlopen, which looks
# on LD_LIBRARY_PATH; the host's driver (libcuda) comes from the NVIDIA Container Toolkit.
for lib in /opt/vtb/.venv/lib/python3*/site-packages/nvidia/*/lib; do
  if [ -d "$lib" ]; then
    LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
export LD_LIBRARY_PATH
exec "$@"
