"""Charts drawn on the server as SVG: no JavaScript, no library, and every label escaped.

`bars` draws one series or several stacked ones over the same buckets (events per minute:
accepted, rejected, unmatched, late; usage per day). Colours come from the stylesheet's legend
order (s0..s3) and are set as SVG attributes, never inline styles (the console's CSP forbids them).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

TOP = 18
COLOURS = ("#2e7d32", "#c62828", "#6a1b9a", "#ef6c00")


def bars(labels: Sequence[str], series: Sequence[Sequence[float | Decimal | int]], *, title: str,
         width: int = 1200, height: int = 180, names: Sequence[str] = ()) -> Markup:
    """Stacked bars, one per label; `series[i][j]` is series i's value in bucket j. Each bar has a
    <title> with its label and values (shown on hover). An empty chart says so."""
    count = len(labels)
    totals = [sum(float(values[j]) for values in series) for j in range(count)]
    top = max(totals, default=0.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 22}" role="img" '
             f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    if count == 0 or top <= 0:
        parts.append(f'<text x="{width // 2}" y="{height // 2}" text-anchor="middle" fill="#5b6470" '
                     f'font-size="13">nothing in this period</text></svg>')
        return Markup("".join(parts))
    plot = height - TOP  # the top strip keeps the "max" label clear of the tallest bar
    slot = width / count
    bar_width = max(slot * 0.8, 0.5)
    for j in range(count):
        x = j * slot + (slot - bar_width) / 2
        base = float(height)
        detail = ", ".join(f"{name}: {_number(values[j])}" for name, values in zip(names or ["value"] * len(series),
                                                                                     series, strict=False))
        parts.append(f"<g><title>{escape(labels[j])}: {escape(detail)}</title>")
        for i, values in enumerate(series):
            size = float(values[j]) / top * plot
            if size <= 0:
                continue
            base -= size
            parts.append(f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar_width:.2f}" height="{size:.2f}" '
                         f'fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append("</g>")
    parts.append(f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#d9dee4"/>')
    for j in sorted({0, count // 2, count - 1}):
        anchor = "start" if j == 0 else "end" if j == count - 1 else "middle"
        x = 0 if j == 0 else width if j == count - 1 else j * slot + slot / 2
        parts.append(f'<text x="{x:.1f}" y="{height + 16}" text-anchor="{anchor}" font-size="11" '
                     f'fill="#5b6470">{escape(labels[j])}</text>')
    parts.append(f'<text x="2" y="11" font-size="11" fill="#5b6470">max {escape(_number(top))}</text></svg>')
    return Markup("".join(parts))


def _number(value: float | Decimal | int) -> str:
    number = float(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.4g}"
