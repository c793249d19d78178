"""The overview's deliveries-per-minute chart: SVG drawn on the server, one bar per minute, a
text alternative listing every value, and axis labels spaced so they do not collide."""

from __future__ import annotations

import re

from tidings.console.charts import series_chart


def test_one_bar_per_point_every_value_in_the_text_alternative() -> None:
    points = [(f"00:{m:02d}", float(m % 7)) for m in range(60)]
    svg = str(series_chart(points, title="Deliveries per minute"))
    assert svg.count('<rect class="bar bar-series"') == 60
    assert "<title>Deliveries per minute</title>" in svg
    assert "00:00: 0, 00:01: 1" in svg and "00:59: 3" in svg
    labels = re.findall(r'<text class="label"[^>]*>([^<]+)</text>', svg)
    assert labels == ["00:00", "00:10", "00:20", "00:30", "00:40", "00:50", "00:59"]
    assert 'role="img"' in svg and "style=" not in svg  # the CSP allows no inline style


def test_the_tallest_bar_fills_the_axis_it_names() -> None:
    svg = str(series_chart([("a", 0.0), ("b", 50.0)], title="t"))
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)"/>', svg)]
    assert heights[0] == 0.0 and heights[1] > 0
    assert '<text class="value" x="2"' in svg and ">50</text>" in svg
    empty = str(series_chart([], title="t"))
    assert "no data" in empty
