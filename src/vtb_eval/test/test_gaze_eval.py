"""./vtb eval gaze on a few cases: its numbers are there, and easy cases come out right."""
from vtb_eval.gaze_eval import format_table, run_gaze_eval


def test_gaze_eval_on_a_few_cases():
    r = run_gaze_eval(heads=((0, 0, 0),), gaze_yaws=(-20, 20), gaze_pitches=(0,), rest_jaws=(), neutral=False,
                      echo=lambda m: None)
    for key in ("gaze_mae_deg", "gaze_head_relative_mae_deg", "blink_accuracy", "mouth_open_accuracy"):
        assert key in r
    assert r["gaze_failures"] == 0 and r["gaze_n"] == 2
    left, right = sorted(r["gaze_rows"], key=lambda row: row["gaze"][0])
    assert left["estimated_head_relative"][0] < -8 and right["estimated_head_relative"][0] > 8, \
        "looking 20 degrees to either side reads on the right side"
    assert r["gaze_head_relative_mae_deg"] < 12
    by_jaw = r["mouth_open_by_jaw"]
    assert by_jaw["-1.0"] < by_jaw["0.5"] < by_jaw["1.0"], "mouth opening grows with the jaw"
    assert r["mouth_open_accuracy"] == 1.0
    assert "gaze error" in format_table(r)
