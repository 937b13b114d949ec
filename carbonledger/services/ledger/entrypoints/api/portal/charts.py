"""Inline SVG charts rendered on the server: a bar chart of a trend and a tree map
of child regions. Plain markup, so the pages need no script and no network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
PALETTE = ("#2e7d32", "#388e3c", "#43a047", "#4caf50", "#66bb6a", "#81c784", "#a5d6a7")


@dataclass(frozen=True)
class Bar:
    label: str
    value: int  # milligrams: exact, scaled only for drawing
    shown: str  # the value as displayed (tonnes)
    href: str | None = None


def bar_chart(bars: Sequence[Bar], title: str) -> str:
    """Vertical bars, one per label, with the value in each bar's tooltip."""
    if not bars:
        return f'<p class="empty">{escape(title)}: —</p>'
    top = max(max(b.value for b in bars), 1)
    step = (WIDTH - 40) / len(bars)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 30}" role="img"'
        f' aria-label="{escape(title)}">'
    ]
    for n, b in enumerate(bars):
        h = max(0.0, (HEIGHT - 20) * b.value / top)
        x, y = 30 + n * step, HEIGHT - h
        rect = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}"'
            f' fill="{PALETTE[n % 3]}"><title>{escape(b.label)}: {escape(b.shown)} t</title></rect>'
        )
        parts.append(f'<a href="{escape(b.href)}">{rect}</a>' if b.href else rect)
        parts.append(
            f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT + 16}" text-anchor="middle"'
            f' font-size="11">{escape(b.label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def tree_map(cells: Sequence[Bar], title: str) -> str:
    """Child regions as rectangles sized by their amount (slice and dice: one row of
    columns, each column's width its share), each linking to the region's page."""
    shown = [c for c in cells if c.value > 0]
    if not shown:
        return f'<p class="empty">{escape(title)}: —</p>'
    total = sum(c.value for c in shown)
    parts = [
        f'<svg class="treemap" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}">'
    ]
    x = 0.0
    for n, c in enumerate(sorted(shown, key=lambda c: -c.value)):
        w = WIDTH * c.value / total
        cell = (
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{HEIGHT}" fill="{PALETTE[n % 7]}"'
            f' stroke="#fff"><title>{escape(c.label)}: {escape(c.shown)} t</title></rect>'
        )
        if w > 48:
            at = f'x="{x + 6:.1f}" fill="#fff"'
            cell += (
                f'<text {at} y="20" font-size="13">{escape(c.label)}</text>'
                f'<text {at} y="38" font-size="11">{escape(c.shown)} t</text>'
            )
        parts.append(f'<a href="{escape(c.href)}">{cell}</a>' if c.href else cell)
        x += w
    parts.append("</svg>")
    return "".join(parts)
