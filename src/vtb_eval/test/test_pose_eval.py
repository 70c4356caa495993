"""./vtb eval pose on a small grid: its numbers are there and sane, and the filter steadies."""
from vtb_eval.pose_eval import format_table, run_pose_eval
from vtb_pose.pnp import METHODS


def test_pose_eval_on_a_small_grid():
    r = run_pose_eval(yaws=(-30, 0, 30), pitches=(0, 15), rolls=(0,), distances=(0.6,), jitter_frames=40,
                      echo=lambda m: None)
    for key in ("mae_yaw", "mae_pitch", "mae_roll", "mae_mean", "max_err", "n", "failures", "jitter_deg"):
        assert key in r
    assert r["n"] == 6 and r["failures"] == 0
    assert r["mae_mean"] < 5.0 and r["max_err"] < 12.0, "easy poses are measured within a few degrees"
    assert r["distance_mae_m"] < 0.06
    assert r["jitter_deg"] < r["jitter_deg_unfiltered"], "the One-Euro filter steadies a still head"
    assert set(r["methods"]) == set(METHODS), "every PnP method is measured on the same landmarks"
    table = format_table(r)
    assert "MAE" in table and "jitter" in table and "<- used" in table
