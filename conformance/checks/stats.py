"""Small-sample statistics for suite gates, without scipy.

Why a module of its own: several gates (schema invalid rate, tool-call match rate, agreement) report a
proportion measured on a few dozen golden cases; a bare "0/20 invalid" hides how little 20 cases prove.
The Wilson score interval is used because, unlike the normal approximation, it stays inside [0, 1] and
is still informative at k = 0 or k = n — exactly the cases a passing gate produces.
"""

from __future__ import annotations

import math

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
    return (max(0.0, centre - half), min(1.0, centre + half))
