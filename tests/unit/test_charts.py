"""The console's SVG charts: bars stay inside the plot, under the "max" label, and every text is escaped."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ratecard.web.charts import TOP, bars

RECT = re.compile(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"')


def test_a_hostile_label_is_text():
    svg = str(bars(["<script>alert(1)</script>", "b"], [[1, 2]], title='"><img src=x>', names=["<b>m</b>"]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert '"><img' not in svg and "&lt;b&gt;m&lt;/b&gt;" in svg


def test_an_empty_chart_says_so():
    assert "nothing in this period" in str(bars([], [], title="t"))
    assert "nothing in this period" in str(bars(["a"], [[0]], title="t"))


def test_the_tallest_bar_reaches_the_plot_top_and_stacks_add_up():
    svg = str(bars(["a", "b"], [[1, 3], [1, 1]], title="t", width=100, height=118))
    rects = [tuple(map(float, match)) for match in RECT.findall(svg)]
    # bucket b: 3 + 1 = 4 is the maximum, so its two parts fill the 100 units of plot height
    b_parts = [r for r in rects if r[0] > 50]
    assert round(sum(r[3] for r in b_parts), 6) == 100
    assert min(r[1] for r in b_parts) == TOP


@given(st.lists(st.lists(st.integers(min_value=0, max_value=10**9), min_size=5, max_size=5), min_size=1, max_size=4))
def test_bars_never_leave_the_plot(series):
    svg = str(bars([str(n) for n in range(5)], series, title="t", width=500, height=200))
    for x, y, width, height in (tuple(map(float, match)) for match in RECT.findall(svg)):
        assert 0 <= x and x + width <= 500 + 1e-6
        assert y >= TOP - 1e-6 and y + height <= 200 + 1e-6
