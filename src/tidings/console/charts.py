"""Charts drawn on the server as SVG (no script, no library, nothing from a CDN): pure
functions from numbers to markup. Colours come from the stylesheet through class names, since
the CSP allows no inline style; the chart carries its own text alternative (role="img", a
<title> and a <desc> listing every value) for screen readers."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

BAR_GAP = 0.25  # of each bar's slot
LABEL_HEIGHT = 18
VALUE_HEIGHT = 16


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above `value` (an axis that reads well)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale  # pragma: no cover - the loop above always answers


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 480,
    height: int = 200,
    css_class: str = "",
) -> Markup:
    """Vertical bars, one per (label, value), each with its value above it. A bar's class is
    `bar bar-<label>` so the stylesheet can colour statuses."""
    plot_height = height - LABEL_HEIGHT - VALUE_HEIGHT
    top = _nice_max(max((v for _, v in bars), default=0.0))
    slot = width / max(1, len(bars))
    bar_width = slot * (1 - BAR_GAP)
    desc = ", ".join(f"{label}: {value:g}" for label, value in bars) or "no data"
    parts = [
        f'<svg class="chart {escape(css_class)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
        f'<line class="axis" x1="0" y1="{VALUE_HEIGHT + plot_height}" x2="{width}" '
        f'y2="{VALUE_HEIGHT + plot_height}"/>',
    ]
    for i, (label, value) in enumerate(bars):
        bar_height = plot_height * (value / top) if value > 0 else 0.0
        x = i * slot + (slot - bar_width) / 2
        y = VALUE_HEIGHT + plot_height - bar_height
        centre = i * slot + slot / 2
        safe = escape(label)
        parts.append(
            f'<rect class="bar bar-{safe}" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
            f'height="{bar_height:.1f}"/>'
        )
        parts.append(
            f'<text class="value" x="{centre:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{value:g}</text>"
        )
        parts.append(
            f'<text class="label" x="{centre:.1f}" y="{height - 4}" text-anchor="middle">'
            f"{safe}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def series_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    label_every: int = 10,
    width: int = 760,
    height: int = 150,
) -> Markup:
    """A time series as thin bars (a minute each, say), labelled every `label_every` points and
    at the last, with the largest value written at the top of the axis. Same text alternative
    as `bar_chart`."""
    plot_height = height - LABEL_HEIGHT - VALUE_HEIGHT
    peak = max((v for _, v in points), default=0.0)
    top = _nice_max(peak)
    slot = width / max(1, len(points))
    bar_width = max(1.0, slot * (1 - BAR_GAP))
    desc = ", ".join(f"{label}: {value:g}" for label, value in points) or "no data"
    base = VALUE_HEIGHT + plot_height
    parts = [
        f'<svg class="chart chart-series" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
        f'<line class="axis" x1="0" y1="{base}" x2="{width}" y2="{base}"/>',
        f'<text class="value" x="2" y="{VALUE_HEIGHT - 4}">{top:g}</text>',
    ]
    last = len(points) - 1
    for i, (label, value) in enumerate(points):
        bar_height = plot_height * (value / top) if value > 0 else 0.0
        x = i * slot + (slot - bar_width) / 2
        parts.append(
            f'<rect class="bar bar-series" x="{x:.1f}" y="{base - bar_height:.1f}" '
            f'width="{bar_width:.1f}" height="{bar_height:.1f}"/>'
        )
        if i == last or (i % label_every == 0 and last - i >= label_every // 2):
            anchor = "end" if i == last else "start"
            x_text = width if i == last else i * slot
            parts.append(
                f'<text class="label" x="{x_text:.1f}" y="{height - 4}" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
