"""VMCOutput refuses a port outside 1..65535 at once (before: accepted, then every frame failed
with OverflowError) and skips a frame holding NaN or infinity with a throttled log line (never
raises, never sends a made-up pose); good frames before and after still go out."""
import logging
import math
import socket

import pytest

from vtb_bridge.avatar_frame import AvatarFrame
from vtb_bridge.vmc_output import VMCOutput


@pytest.mark.parametrize("port", [70000, 0, -1, 65536, 1.5, "39539", True])
def test_a_port_outside_1_to_65535_is_refused(port):
    with pytest.raises(ValueError, match="port must be"):
        VMCOutput("127.0.0.1", port)


def good(i=0):
    return AvatarFrame("abcd", 1.0 + i, {"ParamA": 0.5, "ParamEyeBallX": 0.1}, euler=(5.0, 10.0, 0.0))


BAD = [AvatarFrame("abcd", 1.0, {"ParamA": math.nan}),
       AvatarFrame("abcd", 1.0, {}, euler=(math.nan, 0.0, 0.0)),
       AvatarFrame("abcd", 1.0, {}, eye=(math.inf, 0.0)),
       AvatarFrame("abcd", 1.0, {}, blink=(1.0, -math.inf)),
       AvatarFrame("abcd", 1.0, {}, mouth=math.nan),
       AvatarFrame("abcd", 1.0, {"ParamEyeBallX": "x"})]


def test_non_finite_frames_are_skipped_with_one_log_line(caplog):
    caplog.set_level(logging.INFO)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.3)
    with rx, VMCOutput("127.0.0.1", rx.getsockname()[1]) as out:
        assert out.send(good(0))
        first = rx.recv(65536)
        for _ in range(3):
            for f in BAD:
                assert out.send(f) is False          # before: sent, NaN as 0 (a made-up pose)
        assert out.send(good(1))
        second = rx.recv(65536)
        with pytest.raises(socket.timeout):
            rx.recv(65536)                           # nothing else came: no bad frame went out
        assert first.startswith(b"#bundle") and second.startswith(b"#bundle")
        assert out.counters()["not_finite"] == 3 * len(BAD) and out.counters()["sent"] == 2
    lines = [r for r in caplog.records if r.name == "vtb_bridge.vmc_output"]
    assert len(lines) == 1 and "NaN" in lines[0].getMessage()
