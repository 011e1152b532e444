"""gates: a suite statistic against a threshold; too few samples is never a silent pass."""

from __future__ import annotations

import json
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.gates import GateResult, compare

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.sampled_from(sorted(OPS)), finite, finite, st.integers(1, 10_000), st.integers(1, 100))
def test_verdict_follows_the_operator_once_there_are_enough_samples(
    op: str, stat: float, thr: float, n: int, min_n: int
) -> None:
    g = compare("legal", "terms", stat, thr, op, n, min_n=min_n)
    if n < min_n:
        assert g.verdict == "insufficient" and not g.passed
        assert f"n={n}" in g.message and str(min_n) in g.message
    else:
        assert g.verdict == ("pass" if OPS[op](stat, thr) else "fail")
        assert g.passed is OPS[op](stat, thr)
    assert (g.suite, g.gate, g.statistic, g.threshold, g.op, g.n) == ("legal", "terms", stat, thr, op, n)


def test_boundaries_are_inclusive_only_for_inclusive_operators() -> None:
    assert compare("s", "g", 0.95, 0.95, ">=", 20).passed
    assert not compare("s", "g", 0.95, 0.95, ">", 20).passed
    assert compare("s", "g", 0.001, 0.001, "<=", 20).passed
    assert not compare("s", "g", 0.001, 0.001, "<", 20).passed


def test_no_statistic_is_insufficient_not_a_pass() -> None:
    g = compare("s", "latency", None, 2500, "<=", 0)
    assert g.verdict == "insufficient" and not g.passed
    assert compare("s", "latency", None, 2500, "<=", 500).verdict == "insufficient"
    custom = compare("s", "g", None, 1, "<=", 0, message="baseline produced no valid JSON")
    assert custom.message == "baseline produced no valid JSON"


def test_unknown_operator_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown comparison '=>'"):
        compare("s", "g", 1.0, 1.0, "=>", 10)


def test_interval_and_message_are_carried() -> None:
    g = compare("legal", "classification", 1.0, 0.95, ">=", 20, interval=(0.832, 1.0), message="kappa 0.9")
    assert g.interval == (0.832, 1.0) and g.message == "kappa 0.9"


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (GateResult("legal", "terms", 0.0012, 0.001, "<=", 833, "fail"), "✗ legal.terms 0.0012 <= 0.001 (n=833)"),
        (GateResult("s", "agreement", 1.0, 0.95, ">=", 20, "pass", (0.8316, 1.0)),
         "✓ s.agreement 1 >= 0.95 (n=20, 95% CI 0.832–1.000)"),
        (GateResult("s", "p99", None, 2500, "<=", 0, "insufficient", message="no samples"),
         "? s.p99 n/a <= 2500 (n=0) — no samples"),
        (GateResult("s", "x", 3.0, None, ">=", 5, "error", message="boom"), "! s.x 3 (n=5) — boom"),
    ],
)
def test_line(result: GateResult, line: str) -> None:
    assert result.line() == line


gate_results = st.builds(
    GateResult,
    suite=st.text(min_size=1, max_size=10), gate=st.text(min_size=1, max_size=10),
    statistic=st.none() | finite, threshold=st.none() | finite, op=st.sampled_from(sorted(OPS)),
    n=st.integers(0, 10**6), verdict=st.sampled_from(["pass", "fail", "insufficient", "error"]),
    interval=st.none() | st.tuples(finite, finite), message=st.text(max_size=20),
)


@given(gate_results)
def test_to_dict_round_trips_through_json(g: GateResult) -> None:
    d = json.loads(json.dumps(g.to_dict()))
    assert GateResult.from_dict(d) == g
    assert GateResult.from_dict({**d, "kind": "gate", "extra": 1}) == g  # report rows carry more keys


def test_from_dict_defaults() -> None:
    g = GateResult.from_dict({"suite": "s", "gate": "g", "verdict": "pass"})
    assert (g.statistic, g.threshold, g.op, g.n, g.interval, g.message) == (None, None, ">=", 0, None, "")
