from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.stats import (
    cohens_kappa,
    kappa_interval,
    mcnemar_exact,
    noninferiority,
    paired_difference_interval,
    wilson_interval,
)

counts = st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda kn: (min(kn), max(kn)))
cells = st.tuples(*[st.integers(0, 40)] * 4)


# --- Wilson ------------------------------------------------------------------------------------------------

def test_wilson_twenty_perfect_cases_do_not_prove_more_than_0_84() -> None:
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0
    assert 0.83 < lo < 0.85  # the textbook 0.839: 20/20 is compatible with a true rate of 84%


def test_wilson_zero_successes_still_has_an_upper_bound() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.30


def test_wilson_without_samples_is_uninformative_and_bad_counts_raise() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for k, n in ((3, 2), (-1, 5), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)


@given(counts)
def test_wilson_contains_the_estimate_and_mirrors(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo <= k / n <= hi
        mlo, mhi = wilson_interval(n - k, n)
        assert math.isclose(lo, 1 - mhi, abs_tol=1e-12) and math.isclose(hi, 1 - mlo, abs_tol=1e-12)


def test_wilson_narrows_with_more_cases() -> None:
    widths = [hi - lo for lo, hi in (wilson_interval(n // 2, n) for n in (10, 40, 160))]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_wilson_coverage_is_close_to_95_percent(p: float) -> None:
    rng = np.random.default_rng(7)
    n = 30
    ks = rng.binomial(n, p, size=3000)
    covered = np.mean([lo <= p <= hi for lo, hi in (wilson_interval(int(k), n) for k in ks)])
    assert covered >= 0.92


# --- Cohen's kappa -----------------------------------------------------------------------------------------

def test_kappa_textbook_example() -> None:
    # 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → p_o = 0.7, p_e = 0.5, κ = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_kappa_is_undefined_when_everyone_used_one_label() -> None:
    assert cohens_kappa(["x"] * 5, ["x"] * 5) is None
    assert kappa_interval(["x"] * 5, ["x"] * 5) is None
    assert cohens_kappa([], []) is None
    with pytest.raises(ValueError):
        cohens_kappa(["a"], ["a", "b"])


def test_kappa_interval_at_perfect_agreement_is_not_a_point() -> None:
    a = ["pos", "neg"] * 10
    assert cohens_kappa(a, a) == 1.0
    interval = kappa_interval(a, a)
    assert interval is not None
    assert interval[1] == 1.0 and interval[0] < 0.8


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=40))
def test_kappa_is_symmetric_bounded_and_inside_its_interval(pairs: list[tuple[str, str]]) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    k = cohens_kappa(a, b)
    assert k == cohens_kappa(b, a)
    if k is not None:
        assert -1.0 <= k <= 1.0 + 1e-12
        assert (k == pytest.approx(1.0)) == (a == b)
        interval = kappa_interval(a, b)
        assert interval is not None and interval[0] - 1e-9 <= k <= interval[1] + 1e-9


# --- McNemar -----------------------------------------------------------------------------------------------

def test_mcnemar_exact_small_tables() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 2**5)
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 2**7)
    assert mcnemar_exact(4, 4) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


@given(st.integers(0, 200), st.integers(0, 200))
def test_mcnemar_is_symmetric_and_a_probability(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert p == mcnemar_exact(c, b)
    assert 0.0 < p <= 1.0 or (b + c > 1000 and p >= 0.0)


def test_mcnemar_gets_smaller_as_the_split_gets_more_lopsided() -> None:
    ps = [mcnemar_exact(b, 12 - b) for b in (6, 4, 2, 0)]
    assert ps == sorted(ps, reverse=True) and ps[0] == 1.0 and ps[-1] < 0.001


# --- Newcombe paired interval ------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "expected"), [
    # the worked examples of Newcombe (1998), Statistics in Medicine 17:2635, method 10
    ((36, 12, 2, 0), (0.0569, 0.3404)),
    ((18, 12, 2, 18), (0.0562, 0.3290)),
    ((53, 0, 0, 1), (-0.0729, 0.0729)),
    ((0, 30, 0, 0), (0.8395, 1.0)),
])
def test_newcombe_matches_the_published_examples(table: tuple[int, int, int, int],
                                                 expected: tuple[float, float]) -> None:
    lo, hi = paired_difference_interval(*table)
    assert lo == pytest.approx(expected[0], abs=1e-4) and hi == pytest.approx(expected[1], abs=1e-4)


@given(cells)
def test_newcombe_contains_the_estimate_and_is_antisymmetric(t: tuple[int, int, int, int]) -> None:
    a, b, c, d = t
    lo, hi = paired_difference_interval(a, b, c, d)
    n = a + b + c + d
    assert -1.0 <= lo <= hi <= 1.0
    if n:
        assert lo - 1e-12 <= (b - c) / n <= hi + 1e-12
    rlo, rhi = paired_difference_interval(a, c, b, d)
    assert rlo == pytest.approx(-hi) and rhi == pytest.approx(-lo)


def test_newcombe_coverage_on_paired_data() -> None:
    rng = np.random.default_rng(11)
    probs = [0.80, 0.06, 0.02, 0.12]  # true difference 0.04
    tables = rng.multinomial(40, probs, size=2000)
    intervals = [paired_difference_interval(*map(int, t)) for t in tables]
    covered = np.mean([lo <= 0.04 <= hi for lo, hi in intervals])
    assert covered >= 0.92


# --- non-inferiority ---------------------------------------------------------------------------------------

def test_twenty_perfect_cases_cannot_show_noninferiority_within_two_points() -> None:
    ni = noninferiority([True] * 20, [True] * 20, margin=0.02)
    assert ni.difference == 0.0 and ni.conclusion == "inconclusive"
    assert ni.interval[0] < -0.1 and ni.mcnemar_p == 1.0


def test_many_agreeing_cases_show_noninferiority() -> None:
    new = [True] * 1950 + [False] * 50
    assert noninferiority(new, list(new), margin=0.02).conclusion == "non-inferior"


def test_a_clearly_worse_candidate_is_inferior() -> None:
    old = [True] * 200
    new = [True] * 150 + [False] * 50
    ni = noninferiority(new, old, margin=0.02)
    assert ni.conclusion == "inferior" and ni.broken == 50 and ni.fixed == 0
    assert ni.mcnemar_p < 1e-10 and "inferior" in ni.describe()


def test_noninferiority_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        noninferiority([True], [True, False], margin=0.02)
    with pytest.raises(ValueError):
        noninferiority([True], [True], margin=-0.1)
