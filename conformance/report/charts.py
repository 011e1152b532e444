"""Inline SVG charts for the standalone report: latency CDFs and percentile bars.

Why hand-written SVG: the report must open from a CI artifact on a machine with no network — no CDN, no
JavaScript chart library, nothing to install. A CDF and a few bars are a dozen SVG elements each. Labels are
escaped like every other text in the report (endpoint names come from configuration files), by
:func:`~conformance.report.escape.text_html`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from conformance.report.escape import text_html

#: Colour per series, in order (baseline first): colour-blind-safe blue / orange, then extras.
PALETTE: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")

_W, _H = 560, 240
_L, _R, _T, _B = 56, 32, 30, 40  # margins: left, right, top, bottom


def _nice_max(value: float) -> float:
    """Round an axis maximum up to 1, 2 or 5 × 10^k so ticks read as plain numbers."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exp = 10 ** np.floor(np.log10(value))
    return float(next(m * exp for m in (1, 2, 5, 10) if m * exp >= value))


def _ticks(vmax: float, n: int = 5) -> list[float]:
    return [vmax * i / n for i in range(n + 1)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:.3g}"


def _frame(title: str, x_label: str, y_ticks: Sequence[tuple[float, str]], x_ticks: Sequence[tuple[float, str]]) \
        -> list[str]:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
           f'role="img" aria-label="{text_html(title)}">',
           f"<title>{text_html(title)}</title>",
           f'<text x="{_L}" y="{_T - 10}" font-size="13" font-weight="600">{text_html(title)}</text>',
           f'<rect x="{_L}" y="{_T}" width="{_W - _L - _R}" height="{_H - _T - _B}" fill="#fff" stroke="#ccc"/>']
    for y, label in y_ticks:
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{_L - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{text_html(label)}</text>')
    for x, label in x_ticks:
        out.append(f'<text x="{x:.1f}" y="{_H - _B + 14}" text-anchor="middle" font-size="11">'
                   f"{text_html(label)}</text>")
    out.append(f'<text x="{(_L + _W - _R) / 2}" y="{_H - 6}" text-anchor="middle" font-size="11">'
               f"{text_html(x_label)}</text>")
    return out


def _legend(names: Sequence[str], bottom: bool) -> list[str]:
    """Top-right (bars start on the left) or bottom-right (a CDF's empty corner), on a white box."""
    if not names:
        return []
    width = 24 + 7 * max(len(n) for n in names)
    x = _W - _R - width - 6
    y0 = (_H - _B - 8 - 16 * len(names)) if bottom else _T + 6
    out = [f'<rect x="{x - 4}" y="{y0}" width="{width + 4}" height="{16 * len(names) + 4}" fill="#fff" '
           'fill-opacity="0.85" stroke="#ddd"/>']
    for i, name in enumerate(names):
        y = y0 + 14 + 16 * i
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{y}" font-size="11">{text_html(name)}</text>')
    return out


def cdf_svg(series: Mapping[str, Sequence[float]], title: str, x_label: str = "ms", points: int = 200) -> str:
    """Empirical CDF, one step line per series; the x axis ends at the largest sample (rounded up)."""
    arrays = {k: np.array(vals, dtype=float) for k, vals in series.items()}  # None → NaN, dropped with ±inf
    clean = {k: np.sort(a[np.isfinite(a)]) for k, a in arrays.items()}
    clean = {k: v for k, v in clean.items() if v.size}
    vmax = _nice_max(max((float(v[-1]) for v in clean.values()), default=1.0))
    pw, ph = _W - _L - _R, _H - _T - _B

    def sx(v: float) -> float:
        return _L + pw * v / vmax

    def sy(p: float) -> float:
        return _T + ph * (1 - p)

    out = _frame(title, x_label, [(sy(p), f"{p:.0%}") for p in (0, 0.25, 0.5, 0.75, 1)],
                 [(sx(t), _fmt(t)) for t in _ticks(vmax)])
    for i, (_, vals) in enumerate(clean.items()):
        probs = np.arange(1, vals.size + 1) / vals.size
        if vals.size > points:  # thin out: keep the shape, not every sample
            keep = np.unique(np.linspace(0, vals.size - 1, points).round().astype(int))
            vals, probs = vals[keep], probs[keep]
        xy = [f"{sx(float(vals[0])):.1f},{sy(0):.1f}"]
        prev = 0.0
        for v, p in zip(vals, probs, strict=True):
            xy.append(f"{sx(float(v)):.1f},{sy(prev):.1f} {sx(float(v)):.1f},{sy(float(p)):.1f}")
            prev = float(p)
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(xy)}"/>')
    out += _legend(list(clean), bottom=True)
    if not clean:
        out.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" fill="#888">no samples</text>')
    out.append("</svg>")
    return "".join(out)


def percentile_bars_svg(values: Mapping[str, Mapping[str, float]], title: str, x_label: str = "ms",
                        limit: float | None = None) -> str:
    """Grouped horizontal bars: ``{series: {"p50": ms, "p90": ms, …}}``; an optional dashed ``limit`` line
    (the gate's threshold) shows at a glance which percentile crosses it."""
    names = list(values)
    labels = list(dict.fromkeys(k for v in values.values() for k in v))
    finite = [float(x) for v in values.values() for x in v.values() if x is not None and np.isfinite(x)]
    vmax = _nice_max(max([*finite, limit or 0.0], default=1.0))
    pw, ph = _W - _L - _R, _H - _T - _B
    group_h = ph / max(1, len(labels))
    bar_h = max(2.0, (group_h - 6) / max(1, len(names)))
    out = _frame(title, x_label, [(_T + group_h * (i + 0.5), lab) for i, lab in enumerate(labels)],
                 [(_L + pw * t / vmax, _fmt(t)) for t in _ticks(vmax)])
    for gi, lab in enumerate(labels):
        for si, name in enumerate(names):
            v = values[name].get(lab)
            if v is None or not np.isfinite(v):
                continue
            y = _T + group_h * gi + 3 + bar_h * si
            w = pw * float(v) / vmax
            out.append(f'<rect x="{_L}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 1:.1f}" '
                       f'fill="{PALETTE[si % len(PALETTE)]}"><title>{text_html(f"{name} {lab} {v:,.0f} ms")}'
                       "</title></rect>")
    if limit is not None and np.isfinite(limit):
        x = _L + pw * float(limit) / vmax
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_T}" y2="{_H - _B}" stroke="#c00" stroke-dasharray="4 3"/>'
                   f'<text x="{x - 3:.1f}" y="{_T + 11}" text-anchor="end" font-size="11" fill="#c00">'
                   f"limit {_fmt(float(limit))}</text>")
    out += _legend(names, bottom=False)
    out.append("</svg>")
    return "".join(out)
