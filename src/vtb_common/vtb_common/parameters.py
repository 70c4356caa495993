"""Declare a node's PARAMETERS so that `ros2 param set` never succeeds silently.

Every parameter is either live or read-only:
  live       named in `live` with a check(value) -> reason-or-None; a set is checked, then
             handed (with every value after the set) to the node's apply(values, changed),
             which may still refuse it by returning a reason (e.g. a model that fails to load)
             or raising ValueError; only then is it stored.
  read-only  everything else: ParameterDescriptor(read_only=True), and rclpy refuses the set
             ("Trying to set a read-only parameter"). The reason it is fixed goes in the
             descriptor's additional_constraints (shown by `ros2 param describe`).
rclpy refuses a value of the wrong type itself (the type of the default) before any check.

At start the same checks run on the values given (`-p`, a launch file, a parameters file, the
graph YAML): a refused one raises ParameterError, which run_node and `./vtb run` turn into one
line with the reason and exit code 3, as a live set would be refused. A set that changes no value
(`ros2 param load` of the node's own dump) applies nothing.
"""
from __future__ import annotations

import math
from typing import Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

Check = Callable[[object], "str | None"]


class ParameterError(ValueError):
    """A bad parameter value given at start: the node stops with this one line (exit 3)."""


def declare_parameters(node, parameters, live: dict[str, Check], apply, read_only_reason="fixed at start",
                       start_checks: dict[str, Check] | None = None,
                       together: "Callable[[dict], str | None] | None" = None) -> dict:
    """Declare (name, default, description) `parameters` on `node`; returns {name: value},
    a dict kept up to date with every accepted set. `apply(values, changed)` is called with
    the values after a set and the set of changed names, before they are stored; it returns
    None to accept or a reason to refuse. `read_only_reason` may be a dict {name: reason}.
    The values given at start pass the live checks and `start_checks` (read-only ones) or
    ParameterError is raised, naming every bad one. `together(values)` checks values against
    each other (a close threshold below an open one), at start and on every set, the same way."""
    unknown = set(live) - {name for name, _, _ in parameters}
    assert not unknown, f"live parameters not declared: {unknown}"
    for name, default, description in parameters:
        if name in live:
            descriptor = ParameterDescriptor(description=description, additional_constraints="live: applied on set")
        else:
            reason = read_only_reason.get(name, "fixed at start") if isinstance(read_only_reason, dict) \
                else read_only_reason
            descriptor = ParameterDescriptor(description=description, read_only=True,
                                             additional_constraints=f"read-only: {reason}")
        node.declare_parameter(name, default, descriptor)
    values = {name: node.get_parameter(name).value for name, _, _ in parameters}
    checks = {**live, **(start_checks or {})}
    bad = [f"{name}: {reason}" for name, check in checks.items() if (reason := check(values[name]))]
    if not bad and together is not None and (reason := together(values)):
        bad.append(reason)
    if bad:
        raise ParameterError("; ".join(bad))

    def on_set(params) -> SetParametersResult:
        new, changed = dict(values), set()
        for p in params:
            if p.name not in values:
                continue
            check = live.get(p.name)
            if check is None:  # rclpy refuses read-only ones first; never apply one here
                return SetParametersResult(successful=False, reason=f"{p.name} is read-only")
            reason = check(p.value)
            if reason:
                return SetParametersResult(successful=False, reason=f"{p.name}: {reason}")
            if p.value == values[p.name] and type(p.value) is type(values[p.name]):
                continue   # the value it has: nothing to apply (ros2 param load of a dump)
            new[p.name] = p.value
            changed.add(p.name)
        if changed:
            try:
                reason = (together(new) if together is not None else None) or apply(new, changed)
            except ValueError as e:
                reason = str(e)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            values.update({name: new[name] for name in changed})
            node.get_logger().info("parameters set: " + ", ".join(f"{k}={new[k]!r}" for k in sorted(changed)))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


# checks: each returns None for a good value, else the reason ------------------------------
def any_value(v):
    return None


def in_range(lo=None, hi=None, lo_open=False):
    def check(v):
        if isinstance(v, float) and not math.isfinite(v):
            return f"must be finite, got {v}"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo}, got {v}"
        if hi is not None and v > hi:
            return f"must be <= {hi}, got {v}"
        return None
    return check


def one_of(*choices):
    def check(v):
        return None if v in choices else f"must be one of {', '.join(map(repr, choices))}, got {v!r}"
    return check
