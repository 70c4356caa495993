"""declare_parameters: live parameters checked, applied, then stored; read-only ones refused by
rclpy; a wrong type refused by rclpy; an apply that fails refuses the set and stores nothing; a set
of the value a parameter has applies nothing; values given at start pass the same checks."""
import rclpy
from rclpy.parameter import Parameter

import pytest

from vtb_common.parameters import ParameterError, declare_parameters, in_range, one_of

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


def test_a_set_that_changes_nothing_applies_nothing_and_start_values_are_checked():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("vtb_params_noop", context=context)
        applied = []
        live = {"threshold": in_range(0.0, 1.0), "mode": one_of("a", "b")}
        declare_parameters(node, PARAMETERS, live, lambda v, changed: applied.append(set(changed)))
        # `ros2 param load` of the node's own dump: every value as it is, nothing rebuilt
        results = node.set_parameters([Parameter("threshold", value=0.5), Parameter("mode", value="a")])
        assert all(r.successful for r in results) and applied == []
        [r] = node.set_parameters([Parameter("threshold", value=0.7)])
        assert r.successful and applied == [{"threshold"}]
        node.destroy_node()

        # a value given at start that a set would refuse: ParameterError naming each bad one
        for overrides, said in [([Parameter("threshold", value=-1.0)], "threshold: must be >= 0.0"),
                                ([Parameter("mode", value="c"), Parameter("topic", value="")], "mode: must be one of"),
                                ([Parameter("topic", value="")], "topic: must not be empty")]:
            bad = rclpy.create_node("vtb_params_start", context=context, parameter_overrides=overrides)
            with pytest.raises(ParameterError, match=said):
                declare_parameters(bad, PARAMETERS, live, lambda v, c: None,
                                   start_checks={"topic": lambda v: None if v else "must not be empty"})
            bad.destroy_node()
    finally:
        rclpy.shutdown(context=context)
