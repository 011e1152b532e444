"""Small-sample statistics for suite gates, without scipy.

Why a module of its own: several gates (schema invalid rate, tool-call match rate, agreement) report a
proportion measured on a few dozen golden cases; a bare "0/20 invalid" hides how little 20 cases prove.
Everything here is closed-form (``math.comb`` for exact binomial tails) so the harness needs no scipy; the
percentile and its bootstrap intervals (numpy) are the one percentile every gate and report uses.

Choices, and why:

* **Wilson score interval** for one proportion: unlike the normal (Wald) approximation it stays inside
  [0, 1] and is still informative at k = 0 or k = n — exactly the cases a passing gate produces
  (20/20 agreement → 0.839–1.000, not 1.000–1.000).
* **Cohen's κ** with an interval obtained by mapping the Wilson interval of the observed agreement through
  κ's linear transform (chance agreement held fixed). The textbook asymptotic standard error collapses to
  zero at perfect agreement and would print "κ = 1.00 (1.00–1.00)" for 20 cases; the mapped interval does
  not. It ignores the sampling error of the marginals, so it is slightly optimistic — good enough to show
  scale, not a substitute for more cases.
* **McNemar's exact test**: two-sided exact binomial test on the discordant pairs of a paired design
  (the same golden cases answered by both endpoints). At golden-set sizes the χ² version is unreliable.
* **Newcombe's hybrid-score interval for a paired difference of proportions** (Newcombe 1998, method 10,
  with the φ correction as in Altman et al., *Statistics with Confidence*, p. 52). Chosen over a Wald
  interval with continuity correction because Wald collapses to ±1/n when there are no discordant pairs
  (it would "prove" non-inferiority from 20 perfect cases), and over Tango's score interval because that
  needs an iterative root search; Newcombe's is closed form from two Wilson intervals and has coverage
  close to nominal in the comparisons by Newcombe (1998) and Fagerland et al. (2014).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Z95",
    "NonInferiority",
    "bootstrap_difference_ci",
    "bootstrap_mean_ratio_ci",
    "bootstrap_percentile_ci",
    "bootstrap_ratio_ci",
    "cohens_kappa",
    "kappa_interval",
    "mcnemar_exact",
    "mover_difference",
    "noninferiority",
    "paired_difference_interval",
    "percentile",
    "wilson_interval",
]

#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (95% by default).

    ``n == 0`` gives the uninformative ``(0.0, 1.0)`` rather than raising: a gate with no samples is
    reported as "insufficient" by :func:`conformance.gates.compare`, and its interval must not crash it.
    """
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # exact at the extremes: rounding would otherwise leave 5.6e-17 above 0 for k = 0
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def _chance_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[int, int, float]:
    if len(a) != len(b):
        raise ValueError(f"paired sequences differ in length: {len(a)} vs {len(b)}")
    n = len(a)
    agree = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n) if n else 0.0
    return agree, n, p_e


def cohens_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's κ of two paired label sequences; ``None`` when undefined.

    κ is undefined when chance agreement is 1 (both raters used one and the same label throughout) or
    there are no pairs: the agreement rate is then the only honest figure, and a gate must say so rather
    than report a made-up κ.
    """
    agree, n, p_e = _chance_agreement(a, b)
    if n == 0 or p_e >= 1.0:
        return None
    return (agree / n - p_e) / (1.0 - p_e)


def kappa_interval(a: Sequence[Hashable], b: Sequence[Hashable],
                   z: float = Z95) -> tuple[float, float] | None:
    """Approximate interval for κ: the Wilson interval of the observed agreement mapped through
    κ = (p_o − p_e) / (1 − p_e) with p_e fixed (see the module docstring for why)."""
    agree, n, p_e = _chance_agreement(a, b)
    if n == 0 or p_e >= 1.0:
        return None
    lo, hi = wilson_interval(agree, n, z)
    return (max(-1.0, (lo - p_e) / (1.0 - p_e)), min(1.0, (hi - p_e) / (1.0 - p_e)))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    Under H0 the discordant pairs split Binomial(b + c, ½); the p-value doubles the smaller tail
    (capped at 1). No discordant pairs → 1.0: nothing distinguishes the two.
    """
    if b < 0 or c < 0:
        raise ValueError(f"counts must be non-negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_difference_interval(a: int, b: int, c: int, d: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe hybrid-score interval for p1 − p2 of a paired 2×2 table.

    Cells: ``a`` both succeed, ``b`` only the first succeeds, ``c`` only the second, ``d`` neither;
    p1 = (a + b)/n, p2 = (a + c)/n, so the point estimate is (b − c)/n. ``n == 0`` → (−1, 1).
    """
    if min(a, b, c, d) < 0:
        raise ValueError(f"cells must be non-negative, got {(a, b, c, d)}")
    n = a + b + c + d
    if n == 0:
        return (-1.0, 1.0)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        det = a * d - b * c
        corrected = det - n / 2 if det > n / 2 else det if det < 0 else 0.0
        phi = corrected / math.sqrt(margins)
    diff = p1 - p2
    lower = diff - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = diff + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return (max(-1.0, lower), min(1.0, upper))


@dataclass(frozen=True)
class NonInferiority:
    """Paired comparison of two success sequences against a margin δ.

    ``difference`` is new − old success rate; ``interval`` its two-sided 95% Newcombe interval (so the
    one-sided confidence for the non-inferiority claim is 97.5%, the usual regulatory convention).
    ``conclusion``: ``non-inferior`` when the lower bound is ≥ −δ, ``inferior`` when even the upper bound
    is below −δ, ``inconclusive`` otherwise — the honest answer for a small golden set.
    """

    n: int
    new_rate: float
    old_rate: float
    difference: float
    interval: tuple[float, float]
    margin: float
    fixed: int
    broken: int
    mcnemar_p: float
    conclusion: Literal["non-inferior", "inferior", "inconclusive"]

    def describe(self) -> str:
        lo, hi = self.interval
        return (f"accuracy {self.new_rate:.3f} vs {self.old_rate:.3f}: difference {self.difference:+.3f} "
                f"(95% CI {lo:+.3f}–{hi:+.3f}, margin −{self.margin:g}) → {self.conclusion}; "
                f"McNemar exact p={self.mcnemar_p:.3g} ({self.fixed} fixed, {self.broken} broken)")


def noninferiority(new_ok: Sequence[bool], old_ok: Sequence[bool], margin: float,
                   z: float = Z95) -> NonInferiority:
    """Is ``new`` (the candidate) no worse than ``old`` by more than ``margin``, pairing case by case?"""
    if len(new_ok) != len(old_ok):
        raise ValueError(f"paired sequences differ in length: {len(new_ok)} vs {len(old_ok)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    pairs = list(zip(new_ok, old_ok, strict=True))
    a = sum(1 for x, y in pairs if x and y)
    fixed = sum(1 for x, y in pairs if x and not y)
    broken = sum(1 for x, y in pairs if y and not x)
    d = len(pairs) - a - fixed - broken
    n = len(pairs)
    lo, hi = paired_difference_interval(a, fixed, broken, d, z)
    conclusion: Literal["non-inferior", "inferior", "inconclusive"] = (
        "non-inferior" if n and lo >= -margin else "inferior" if n and hi < -margin else "inconclusive")
    return NonInferiority(
        n=n, new_rate=(a + fixed) / n if n else 0.0, old_rate=(a + broken) / n if n else 0.0,
        difference=(fixed - broken) / n if n else 0.0, interval=(lo, hi), margin=margin, fixed=fixed,
        broken=broken, mcnemar_p=mcnemar_exact(fixed, broken), conclusion=conclusion)


def mover_difference(d1: float, ci1: tuple[float, float], d2: float, ci2: tuple[float, float]
                     ) -> tuple[float, float]:
    """95% interval of d1 − d2 for two *independent* estimates with their own intervals (Newcombe's MOVER: the
    distances to each bound are combined in quadrature). Used where two paired differences measured on different
    samples are compared — e.g. the candidate's drop under load against the baseline's."""
    d = d1 - d2
    lower = d - math.sqrt((d1 - ci1[0]) ** 2 + (ci2[1] - d2) ** 2)
    upper = d + math.sqrt((ci1[1] - d1) ** 2 + (d2 - ci2[0]) ** 2)
    return (lower, upper)


# ----------------------------------------------------------------------------------- percentiles, bootstrap

#: Resamples for bootstrap intervals; 2,000 keeps the 2.5%/97.5% quantiles stable to about a percent.
BOOTSTRAP_RESAMPLES = 2000


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with numpy's linear interpolation; None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear")) if len(values) else None


def _resampled_percentiles(values: Sequence[float], q: float, rng: np.random.Generator, n_resamples: int) -> Any:
    arr = np.asarray(values, dtype=float)
    out = np.empty(n_resamples)
    step = max(1, 2_000_000 // max(1, len(arr)))  # bound memory: at most ~2M indices at once
    for start in range(0, n_resamples, step):
        rows = min(step, n_resamples - start)
        idx = rng.integers(0, len(arr), size=(rows, len(arr)))
        out[start:start + rows] = np.percentile(arr[idx], q, axis=1, method="linear")
    return out


def bootstrap_percentile_ci(values: Sequence[float], q: float, *, seed: int = 0,
                            n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """Percentile-bootstrap 95% interval of the ``q``-th percentile; same seed, same interval."""
    if not len(values):
        return None
    boots = _resampled_percentiles(values, q, np.random.default_rng(seed), n_resamples)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return (float(lo), float(hi))


def bootstrap_ratio_ci(numerator: Sequence[float], denominator: Sequence[float], q: float, *, seed: int = 0,
                       n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """95% interval of percentile(numerator) / percentile(denominator), resampling both sides independently."""
    if not len(numerator) or not len(denominator):
        return None
    rng = np.random.default_rng(seed)
    num = _resampled_percentiles(numerator, q, rng, n_resamples)
    den = _resampled_percentiles(denominator, q, rng, n_resamples)
    ratios = num / np.where(den > 0, den, np.nan)
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return None
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return (float(lo), float(hi))


def bootstrap_difference_ci(numerator: Sequence[float], denominator: Sequence[float], q: float, *, seed: int = 0,
                            n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """95% interval of percentile(numerator) − percentile(denominator), resampling both sides independently —
    "is the candidate's P95 above the baseline's?" for a budget both may miss."""
    if not len(numerator) or not len(denominator):
        return None
    rng = np.random.default_rng(seed)
    diff = (_resampled_percentiles(numerator, q, rng, n_resamples)
            - _resampled_percentiles(denominator, q, rng, n_resamples))
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return (float(lo), float(hi))


def bootstrap_mean_ratio_ci(numerator: Sequence[float], denominator: Sequence[float], *, seed: int = 0,
                            n_resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """95% interval of mean(numerator) / mean(denominator), resampling both sides independently — e.g. the
    candidate's output tokens per second over the seconds of a load stage against the baseline's."""
    if len(numerator) < 2 or len(denominator) < 2:
        return None
    rng = np.random.default_rng(seed)
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    a = num[rng.integers(0, len(num), size=(n_resamples, len(num)))].mean(axis=1)
    b = den[rng.integers(0, len(den), size=(n_resamples, len(den)))].mean(axis=1)
    ratios = a / np.where(b > 0, b, np.nan)
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return None
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return (float(lo), float(hi))

