"""declare_parameters: live parameters checked, applied, then stored; read-only ones refused by
rclpy; a wrong type refused by rclpy; an apply that fails refuses the set and stores nothing."""
import rclpy
from rclpy.parameter import Parameter

from vtb_common.parameters import declare_parameters, in_range, one_of

PARAMETERS = [("threshold", 0.5, "a threshold, 0..1, for the test"),
              ("mode", "a", "a mode, 'a' or 'b', for the test"),
              ("topic", "in", "a topic fixed at start, for the test")]


def test_live_read_only_and_refusals():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("vtb_params_test", context=context)
        applied = []

        def apply(values, changed):
            if values["mode"] == "b" and values["threshold"] > 0.9:
                return "mode b needs threshold <= 0.9"
            applied.append(set(changed))

        p = declare_parameters(node, PARAMETERS, {"threshold": in_range(0.0, 1.0), "mode": one_of("a", "b")},
                               apply, {"topic": "chooses the topic"})
        d = node.describe_parameter("topic")
        assert d.read_only and d.additional_constraints == "read-only: chooses the topic"
        assert d.description == PARAMETERS[2][2] and not node.describe_parameter("mode").read_only

        [r] = node.set_parameters([Parameter("threshold", value=0.95)])
        assert r.successful and p["threshold"] == 0.95 and applied == [{"threshold"}]
        [r] = node.set_parameters([Parameter("mode", value="b")])
        assert not r.successful and "needs threshold" in r.reason and p["mode"] == "a"
        assert node.get_parameter("mode").value == "a"
        for name, value, reason in [("threshold", -0.1, "threshold: must be >= 0.0"), ("mode", "c", "must be one of"),
                                    ("threshold", "x", "Wrong parameter type"), ("topic", "out", "read-only")]:
            [r] = node.set_parameters([Parameter(name, value=value)])
            assert not r.successful and reason in r.reason, (name, r.reason)
        assert p == {"threshold": 0.95, "mode": "a", "topic": "in"} and len(applied) == 1
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
