"""`./vtb bench soak`, briefly: the graph on the looping clip with a page client, sampled, and a
verdict with the shape the README's table needs. Functional only: 30 s cannot judge a slope."""
import json
import subprocess
import sys


def test_soak_samples_the_graph_and_judges_the_goals(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "bench", "soak", "--minutes", "0.5",
                        "--sample-every", "5", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["graph_exit_code"] == 0, result["graph_output_tail"]   # stopped cleanly
    samples = result["samples"]
    assert 5 <= len(samples) <= 7, samples
    for s in samples:
        assert 50 < s["rss_mb"] and s["cpu_percent"] > 0 and s["fds"] > 0 and s["processes"] >= 1, s
        lat = s["latency_ms"]
        assert lat["answers"] > 0 and 0 < lat["p50"] <= lat["p95"] < 5000, s
        assert s["answers_per_s"] > 0 and s["page_connected"], s
    # the page client read the server's events, not only connected
    assert result["page_events"] > 0 and sum(s["page_events_per_s"] for s in samples) > 0
    v = result["verdict"]
    assert set(v) == {"rss_slope_mb_per_min", "graph_rss_mb", "latency_flat", "passed"}
    assert isinstance(v["rss_slope_mb_per_min"]["value"], float) and v["graph_rss_mb"]["value"] > 50
    assert v["latency_flat"]["p50_first_third_ms"] > 0 and v["latency_flat"]["p50_last_third_ms"] > 0
    assert v["passed"] == all(v[k]["passed"] for k in v if k != "passed")
    assert "RSS slope after warm-up" in r.stdout and "soak: " in r.stdout
