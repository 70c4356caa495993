"""`./vtb bench graph`, briefly: the graph in its own process answers the bench's frames over DDS,
the result has the shape the table and docs/bench/graph.json need, and the graph stops cleanly.
Functional only; the speed goals are the bench's to report, not a test's to time."""
from vtb_bringup.graph_bench import format_table, run_graph_bench


def test_graph_bench_runs_the_graph_and_measures_its_answers():
    # small frames at a low rate: under Fast DDS's 512 KB shared-memory segments, so every frame
    # can arrive whatever DDS settings the machine has, and light on a busy test machine
    scenario = dict(name="10 fps 320x240", rate=10.0, size=(320, 240), executor="single")
    r = run_graph_bench(seconds=3.0, warmup=1.0, frames=10, only=[scenario], echo=lambda m: None)

    assert {"scenarios", "goals", "dds", "machine", "load_before", "load_after"} <= set(r)
    (s,) = r["scenarios"]
    assert s["graph_exit_code"] == 0, s["graph_output_tail"]   # SIGINT stops `vtb run` cleanly
    assert 20 <= s["sent"] <= 32, s    # 3 s at 10 fps (fewer if this process was starved)
    assert 0 < s["answered"] <= s["sent"] and s["unanswered"] == s["sent"] - s["answered"]
    lat = s["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] < 5000, lat
    assert set(s["detector"]) >= {"received", "processed", "dropped"}, s["detector"]
    assert s["detector"]["processed"] >= s["answered"]
    assert s["lost_before_detector"] == s["sent"] - s["detector"]["received"]
    assert 50 < s["graph_rss_mb"]["max"] <= s["graph_rss_mb"]["hwm"] + 1
    assert s["graph_cpu_percent_of_one_core"] > 0

    # no VGA scenario here: the p99 goal is not judged; the memory goal is
    assert r["goals"]["p99_ms_30fps_vga"]["value"] is None
    assert r["goals"]["graph_rss_mb"]["value"] == s["graph_rss_mb"]["hwm"]
    table = format_table(r)
    assert "10 fps 320x240" in table and "graph RSS < 400 MB" in table
