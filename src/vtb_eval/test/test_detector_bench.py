"""`vtb bench detector`: the table's numbers come from both paths on the same network."""
import json

import numpy as np

from vtb_detector.anchor_detector import nms
from vtb_eval.detector_bench import format_table, naive_nms, run_detector_bench


def test_bench_result_is_json_and_the_table_shows_every_scale(astronaut_rgb):
    result = run_detector_bench(scales=(0.25, 0.5), repeats=1, image=astronaut_rgb, weights="random",
                                variants={"8+16+32": ()})
    json.loads(json.dumps(result))
    rows = result["rows"]
    assert [r["scale"] for r in rows] == [0.25, 0.5]
    assert rows[0]["input"] == [128, 128] and rows[1]["input"] == [256, 256]
    assert rows[1]["anchors"] == (32 * 32 + 16 * 16 + 8 * 8) * 2
    for r in rows:
        assert r["naive_ms"] > 0 and r["fast_ms"] > 0 and r["network_ms"] > 0
        assert abs(r["speedup"] - r["naive_ms"] / r["fast_ms"]) < 0.02
        # both paths find the same faces (the random network's) but for float rounding: the
        # naive path resizes in float64, the fast one in uint8, so a face near the threshold or
        # an NMS tie may go either way (exact agreement without a resize: test_anchor_detector)
        assert abs(r["faces_naive"] - r["faces_fast"]) <= 2
        assert r["faces_matched"] >= 0.8 * max(r["faces_naive"], r["faces_fast"]) > 0
        assert r["max_box_difference_px"] < 2.0
    table = format_table(result)
    assert "random, seed 0 weights" in table and "speed-up" in table
    main_table = table.split("pyramid levels kept")[0]
    assert len([line for line in main_table.splitlines() if line.lstrip().startswith(("0.25", "0.5"))]) == 2


def test_naive_and_vectorised_nms_agree():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(10, 60, (300, 2))
    corners = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0.5, 1, 300).astype(np.float32)
    dets = np.concatenate([corners, scores[:, None]], 1).tolist()
    assert nms(corners, scores, 0.4).tolist() == naive_nms(dets, 0.4)


def test_bench_on_the_trained_weights_finds_the_face_and_measures_the_level_variants(astronaut_rgb, tmp_path):
    import cv2
    clip = tmp_path / "still.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 512))
    for _ in range(3):
        writer.write(cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    result = run_detector_bench(scales=(0.5, 1.0), repeats=1, image=astronaut_rgb, clips=[clip])
    assert "trained" in result["model"]["weights"]
    for r in result["rows"]:
        assert r["faces_fast"] == r["faces_naive"] == r["faces_matched"] == 1, "one face, as in the photo"
    levels = {(r["scale"], r["levels"]): r for r in result["levels"]}
    assert set(levels) == {(s, v) for s in (0.5, 1.0) for v in ("8+16+32", "16+32", "32", "8+16")}
    assert levels[(1.0, "8+16+32")]["faces"] == 1 and levels[(1.0, "8+16+32")]["clips"] == {"still.mp4": 3}
    assert levels[(1.0, "8+16+32")]["speedup_vs_all"] == 1.0
    table = format_table(result)
    assert "pyramid levels kept" in table and "still.mp4" in table
