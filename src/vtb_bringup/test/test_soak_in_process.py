"""`./vtb bench soak --in-process`: the graph plays the clip itself (`vtb run --clip --loop`, as a
user runs it) and the soak only listens. Functional only: 30 s cannot judge a slope."""
import json
import subprocess
import sys


def test_soak_in_process_measures_the_graph_playing_its_own_clip(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "bench", "soak", "--in-process", "--minutes", "0.5",
                        "--sample-every", "5", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["graph_exit_code"] == 0, result["graph_output_tail"]
    assert result["graph_command"].startswith("vtb run --clip --loop")
    assert result["camera"]["played_by"] == "the graph's process" and result["camera"]["frames_cycled"] == 150
    samples = result["samples"]
    assert 5 <= len(samples) <= 7, samples
    for s in samples:
        lat = s["latency_ms"]   # image stamps seen on /faces, answered on /avatar_parameters
        assert lat["answers"] > 0 and 0 < lat["p50"] <= lat["p95"] < 5000, s
        assert s["page_connected"] and 50 < s["rss_mb"], s
    assert result["page_events"] > 0
    # the frames are kept compressed: the clip no longer puts the graph near 400 MB
    assert result["verdict"]["graph_rss_mb"]["value"] < 400
    assert "playing the looping clip" in r.stdout
