"""./vtb bench cpu: ./vtb run on a video in its own process and MediaPipe's Face Landmarker on the
same video, each measured by its CPU seconds; a few seconds of a rendered clip written to a video
file (CI has no ../shared)."""
import json
import sys

import numpy as np
import pytest


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory):
    import cv2
    from vtb_eval.render import render_clip
    path = tmp_path_factory.mktemp("cpu") / "clip.mp4"
    frames = [rgb for rgb, *_ in render_clip(45)]
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
    for rgb in frames:
        out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out.release()
    return path


def test_bench_cpu_measures_vtb_run_and_mediapipe_on_the_same_video(clip_video):
    from vtb_bringup.cpu_bench import format_table, run_cpu_bench
    r = run_cpu_bench(clip_video, seconds=4.0, echo=lambda m: None)
    vtb, mp = r["vtb"], r["mediapipe"]
    assert r["fps"] == pytest.approx(15.0)
    # about 4 s at 15 fps; the graph's avatar frames come from the video's own images
    assert 30 <= vtb["frames"] <= 75 and vtb["images"] >= vtb["frames"] - 2
    assert 30 <= mp["frames"] <= 75 and mp["faces_found"] >= 0.9 * mp["frames"]
    for x in (vtb, mp):
        assert 0.5 < x["cpu_ms_per_frame"] < 500 and x["core_percent"] == pytest.approx(x["cpu_ms_per_frame"] * 1.5)
        assert 0 < x["latency_ms"]["p50"] <= x["latency_ms"]["p99"]
    assert r["ratio"] == pytest.approx(vtb["cpu_ms_per_frame"] / mp["cpu_ms_per_frame"])
    assert set(vtb["stages"]) == {"faces", "head_poses", "gaze", "face_state", "avatar_parameters"}
    # each stage's tail beside its median: where the latency's p99 comes from
    faces = vtb["stages"]["faces"]
    assert 0 < faces["stage_ms_p50"] <= faces["stage_ms_p99"]
    text = format_table(r)
    assert "(ms from the previous topic, median / p99): faces (detector)" in text
    assert "ratio vtb / MediaPipe" in text and "MediaPipe 0.10.21 Face Landmarker" in text and "goals:" in text
    assert "vtb's inputs: detector processed" in text and "parts late for their own image" in text
    assert "detector per image (mean ms): image" in text
    # the source decodes at a lower priority, and says how late its frames went out
    src = vtb["nodes"]["vtb_source"]
    assert src["nice"] == 10 and src["published"] >= vtb["images"] and 0 <= src["late_ms_p50"] <= src["late_ms_p99"]
    assert "vtb's source:" in text and "thread at nice 10" in text
    json.dumps(r)


def test_vtb_run_writes_its_stats_json(tmp_path, clip_video):
    import subprocess
    stats = tmp_path / "stats.json"
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "run", "--video", str(clip_video), "--duration", "3",
                        "--outputs", "none", "--stats-every", "0", "--stats-json", str(stats)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(stats.read_text())
    assert s["avatar_frames"] > 0 and 0 < s["cpu_s"] and 2.5 < s["wall_s"] < 10
    assert s["topics"]["avatar_parameters"]["count"] == s["avatar_frames"]
    assert np.isfinite(s["topics"]["faces"]["from_image_ms_p99"])
    # what the nodes did with their inputs: every image the detector got is processed or dropped;
    # every image the bridge handled is counted, and what became of the late parts
    det, bridge = s["nodes"]["vtb_detector"], s["nodes"]["vtb_bridge"]
    in_flight = det["received"] - (det["processed"] + det["dropped"] + det["rejected"])
    assert 0 <= in_flight <= 2 and det["processed"] > 0
    ms = det["ms_per_image"]   # where the detector's time goes
    assert set(ms) == {"image", "detect", "crop", "landmarks", "iris", "total"}
    assert 0 < ms["landmarks"] < ms["total"] and ms["detect"] > 0 and ms["image"] > 0
    assert bridge["images"] >= det["processed"] - 3 and set(bridge["images_without"]) == \
        {"faces", "head_poses", "gaze", "face_state"}
    assert bridge["late_parts_carried"] >= 0 and bridge["late_parts_dropped"] >= 0
