"""The executables' entry points: quiet on Ctrl-C while the node still imports (vtb_common.quiet_start)."""
from vtb_common.quiet_start import start


def main():
    return start("vtb_gaze.node")
