"""`./vtb bench soak --processes`: one process per node, as `ros2 launch` starts them
(vtb_bringup.process_graph), fed over DDS; CPU and memory summed over the node processes.
Functional only: 30 s cannot judge a slope."""
import json
import subprocess
import sys


def test_soak_of_the_multi_process_graph(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, "-m", "vtb_bringup.cli", "bench", "soak", "--processes", "--minutes", "0.5",
                        "--sample-every", "10", "--json", str(out)], capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["graph_exit_code"] == 0, result["graph_output_tail"]   # every node stopped cleanly
    assert result["graph_command"].startswith("one process per node")
    samples = result["samples"]
    assert 2 <= len(samples) <= 4, samples
    for s in samples:
        # the launcher and the four nodes (detector, pose, gaze, bridge), each its own process
        assert s["processes"] >= 5, s
        assert s["latency_ms"]["answers"] > 0 and s["page_connected"] and s["cpu_percent"] > 0, s
    assert result["page_events"] > 0
