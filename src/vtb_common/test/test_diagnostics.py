"""StageHealth's levels: no input is its own state, a stall goes WARN then ERROR, a late
stage WARN, and a recovered one OK again."""
import pytest

from vtb_common.diagnostics import ERROR, OK, WARN, StageHealth


def feed(h, t0, t1, fps=30, output=True, latency=0.02):
    """Inputs (and outputs `latency` later) at `fps` from t0 to t1."""
    n = int((t1 - t0) * fps)
    for i in range(n):
        t = t0 + i / fps
        h.note_input(t)
        if output:
            h.note_output(latency, t + latency)
    return t0 + n / fps


def test_no_input_is_its_own_state_not_an_error():
    h = StageHealth("perception")
    assert h.status(100.0)[:2] == (OK, "no input yet")


def test_a_stall_goes_warn_then_error_and_recovers():
    h = StageHealth("perception", stall_warn_s=2.0, stall_error_s=5.0)
    t = feed(h, 0.0, 3.0)
    level, message, values = h.status(t)
    assert (level, message) == (OK, "ok")
    assert float(values["input_rate_hz"]) == pytest.approx(18.0, abs=1)   # 90 in the 5 s window
    assert values["latency_ms_median"] == "20.0"
    # inputs keep arriving, outputs stop
    t_stall = t
    t = feed(h, t, t + 3.0, output=False)
    level, message, _ = h.status(t)
    assert level == WARN and message.startswith("inputs arrive but no output for 3.")
    t = feed(h, t, t + 3.0, output=False)
    assert h.status(t)[0] == ERROR and t - t_stall > 5
    t = feed(h, t, t + 1.0)   # outputs again
    assert h.status(t)[:2] == (OK, "ok")


def test_input_that_stops_warns_and_a_resumed_stream_is_not_a_stall():
    h = StageHealth("perception", input_timeout_s=2.0)
    t = feed(h, 0.0, 1.0)
    assert h.status(t + 1.5)[0] == OK
    level, message, _ = h.status(t + 10.0)
    assert (level, message) == (WARN, "no input for 10.0 s")
    # after a long gap, the first inputs of a new stream have not stalled (the last output was 10 s ago)
    h.note_input(t + 10.0)
    assert h.status(t + 10.5)[0] == OK
    assert h.status(t + 13.0)[0] == WARN   # ... until they go unanswered for stall_warn_s


def test_no_output_ever_is_a_stall_from_the_first_input():
    h = StageHealth("perception")
    t = feed(h, 0.0, 6.0, output=False)
    assert h.status(t)[0] == ERROR
    assert "outputs" in h.status(t)[2] and "latency_ms_median" not in h.status(t)[2]


def test_latency_above_the_threshold_warns():
    h = StageHealth("perception", latency_warn_s=0.1)
    t = feed(h, 0.0, 2.0, latency=0.25)
    level, message, values = h.status(t)
    assert (level, message) == (WARN, "latency 250 ms, above 100 ms")
    t = feed(h, t, t + 6.0, latency=0.03)   # the window forgets the slow ones
    assert h.status(t)[0] == OK
