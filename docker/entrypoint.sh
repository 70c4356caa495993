#!/usr/bin/env bash
# Source ROS and vtb's environment, then run the command (./vtb demo by default).
set -e
# shellcheck disable=SC1090
source "/opt/ros/${ROS_DISTRO}/setup.bash"
cd /opt/vtb
exec "$@"
