"""gates: a statistic judged from its interval, next to the baseline's; too few samples is never a silent pass."""

from __future__ import annotations

import json
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.stats import wilson_interval
from conformance.gates import GateResult, compare, judge, rate_gate, relative, side

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.sampled_from(sorted(OPS)), finite, finite, st.integers(1, 10_000), st.integers(1, 100))
def test_a_point_value_without_interval_follows_the_operator(op: str, stat: float, thr: float, n: int,
                                                             min_n: int) -> None:
    g = compare("legal", "terms", stat, thr, op, n, min_n=min_n)
    if n < min_n:
        assert g.verdict == "insufficient" and not g.passed
        assert f"n={n}" in g.message and str(min_n) in g.message
    else:
        assert g.verdict == ("pass" if OPS[op](stat, thr) else "regression")
        assert g.passed is OPS[op](stat, thr)
    assert (g.suite, g.gate, g.statistic, g.threshold, g.op, g.n) == ("legal", "terms", stat, thr, op, n)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.sampled_from(["<=", ">="]))
def test_an_interval_is_judged_by_where_it_lies(a: float, b: float, thr: float, op: str) -> None:
    lo, hi = sorted((a, b))
    got = side((lo, hi), thr, op)
    good = hi <= thr if op == "<=" else lo >= thr
    bad = lo > thr if op == "<=" else hi < thr
    assert got == ("meets" if good else "violates" if bad else "unknown")


def test_agreement_20_of_20_does_not_pass_095_its_interval_only_shows_084() -> None:
    """Finding 2 of the verdict-trust issue: 20/20 against 0.95 used to pass."""
    interval = wilson_interval(20, 20)
    g = compare("s", "classification.agreement", 1.0, 0.95, ">=", 20, interval=interval, zero_tolerance=False)
    assert interval[0] == pytest.approx(0.839, abs=1e-3)
    assert g.verdict == "insufficient"


def test_a_ratio_whose_interval_straddles_the_threshold_is_insufficient_not_a_regression() -> None:
    """Finding 2: max_ttft_p95_ratio failed at 1.235 with a 95% CI of 0.69–2.19 on a run nothing slowed."""
    g = compare("legal", "latency.max_ttft_p95_ratio", 1.235, 1.2, "<=", 40, interval=(0.69, 2.19))
    assert g.verdict == "insufficient"
    assert compare("legal", "r", 1.9, 1.2, "<=", 40, interval=(1.3, 2.5)).verdict == "regression"
    assert compare("legal", "r", 1.05, 1.2, "<=", 40, interval=(0.9, 1.15)).verdict == "pass"


def test_a_threshold_both_endpoints_fail_alike_is_baseline_fails_never_regression() -> None:
    """Finding 1: 17/17 invalid JSON for both endpoints is the golden's problem, not the candidate's."""
    g = rate_gate("finance", "schema.invalid_rate", [True] * 17, [True] * 17, 0.0, "<=")
    assert g.verdict == "baseline_fails" and g.baseline == 1.0
    tools = rate_gate("cs", "tool_calls.match_rate", [False] * 5, [False] * 5, 0.98, ">=")
    assert tools.verdict == "baseline_fails"


def test_a_candidate_worse_than_a_failing_baseline_is_still_a_regression() -> None:
    cand = [True] * 18 + [False] * 2
    base = [True] * 2 + [False] * 18
    assert rate_gate("s", "schema.invalid_rate", cand, base, 0.0, "<=").verdict == "regression"


def test_zero_tolerance_is_judged_on_what_was_observed() -> None:
    clean = rate_gate("s", "availability.error_rate", [False] * 20, [False] * 20, 0.0, "<=")
    assert clean.verdict == "pass"  # no interval upper bound could ever reach 0
    one = rate_gate("s", "availability.error_rate", [True] + [False] * 19, [False] * 20, 0.0, "<=")
    assert one.verdict == "regression"
    every = rate_gate("s", "tool_calls.match_rate", [True] * 5, [True] * 5, 1.0, ">=")
    assert every.verdict == "pass"
    # a non-zero rate limit is a claim about the rate: 71 clean occurrences cannot show ≤ 0.1%
    drift = compare("s", "terms.drift_rate", 0.0, 0.001, "<=", 71, interval=wilson_interval(0, 71))
    assert drift.verdict == "insufficient"


def test_relative_reads_the_paired_difference_against_the_margin() -> None:
    assert relative((0.05, 0.30), "<=", 0.0) == "violates"   # candidate shown worse (more invalid)
    assert relative((-0.10, 0.02), "<=", 0.05) == "meets"
    assert relative((-0.10, 0.20), "<=", 0.05) == "unknown"
    assert relative((-0.30, -0.05), ">=", 0.0) == "violates"  # candidate shown to match less often
    assert judge("unknown", baseline=None, versus="violates") == "regression"
    assert judge("violates", baseline="violates", versus="unknown") == "baseline_fails"
    assert judge("violates", baseline="violates", versus="violates") == "regression"


def test_no_statistic_is_insufficient_not_a_pass() -> None:
    g = compare("s", "latency", None, 2500, "<=", 0)
    assert g.verdict == "insufficient" and not g.passed
    assert compare("s", "latency", None, 2500, "<=", 500).verdict == "insufficient"
    assert compare("s", "latency", float("nan"), 2500, "<=", 500).verdict == "insufficient"
    custom = compare("s", "g", None, 1, "<=", 0, message="baseline produced no valid JSON")
    assert custom.message == "baseline produced no valid JSON"


def test_unknown_operator_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown comparison '=>'"):
        compare("s", "g", 1.0, 1.0, "=>", 10)


def test_blocking_depends_on_strict_only_for_the_undecided_verdicts() -> None:
    def g(verdict: str) -> GateResult:
        return GateResult("s", "g", 1.0, 1.0, "<=", 1, verdict)  # type: ignore[arg-type]

    assert g("regression").blocking() and g("error").blocking()
    assert not g("insufficient").blocking() and g("insufficient").blocking(strict=True)
    assert not g("baseline_fails").blocking() and g("baseline_fails").blocking(strict=True)
    assert not g("pass").blocking(strict=True)


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (GateResult("legal", "terms", 0.0012, 0.001, "<=", 833, "regression"),
         "✗ legal.terms 0.0012 <= 0.001 (n=833) REGRESSION"),
        (GateResult("s", "agreement", 1.0, 0.95, ">=", 20, "pass", (0.8316, 1.0)),
         "✓ s.agreement 1 >= 0.95 (n=20, 95% CI 0.832–1.000)"),
        (GateResult("s", "p99", None, 2500, "<=", 0, "insufficient", message="no samples"),
         "? s.p99 n/a <= 2500 (n=0) INSUFFICIENT — no samples"),
        (GateResult("s", "inv", 1.0, 0.0, "<=", 17, "baseline_fails", baseline=1.0),
         "≈ s.inv 1 <= 0 (n=17; baseline 1) BASELINE_FAILS"),
        (GateResult("s", "x", 3.0, None, ">=", 5, "error", message="boom"), "! s.x 3 (n=5) ERROR — boom"),
    ],
)
def test_line(result: GateResult, line: str) -> None:
    assert result.line() == line


pairs = st.none() | st.tuples(finite, finite)
gate_results = st.builds(
    GateResult,
    suite=st.text(min_size=1, max_size=10), gate=st.text(min_size=1, max_size=10),
    statistic=st.none() | finite, threshold=st.none() | finite, op=st.sampled_from(sorted(OPS)),
    n=st.integers(0, 10**6), verdict=st.sampled_from(["pass", "regression", "insufficient", "baseline_fails",
                                                      "error"]),
    interval=pairs, message=st.text(max_size=20), baseline=st.none() | finite, baseline_interval=pairs,
    difference_interval=pairs,
    faults=st.dictionaries(st.sampled_from(["baseline", "candidate"]),
                           st.dictionaries(st.sampled_from(["timeout", "client_error"]), st.integers(1, 9))),
)


@given(gate_results)
def test_to_dict_round_trips_through_json(g: GateResult) -> None:
    d = json.loads(json.dumps(g.to_dict()))
    assert GateResult.from_dict(d) == g
    assert GateResult.from_dict({**d, "kind": "gate", "extra": 1}) == g  # report rows carry more keys


def test_from_dict_defaults_and_reads_an_older_runs_fail_as_regression() -> None:
    g = GateResult.from_dict({"suite": "s", "gate": "g", "verdict": "pass"})
    assert (g.statistic, g.threshold, g.op, g.n, g.interval, g.message) == (None, None, ">=", 0, None, "")
    assert GateResult.from_dict({"suite": "s", "gate": "g", "verdict": "fail"}).verdict == "regression"
