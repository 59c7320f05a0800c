"""Charts as inline SVG: reports stay one self-contained file that opens offline, with no scripts."""

from __future__ import annotations

import html

CHART_CSS = ".chart text { font-size: 13px; fill: #1f2933; } .bar { fill: #3b82f6; } .line { fill: none; " \
            "stroke: #3b82f6; stroke-width: 2; } .axis { stroke: #9aa5b1; }"


def bar_chart(title: str, items: list[tuple[str, float, str]], *, max_value: float | None = None) -> str:
    """A horizontal SVG bar chart: (label, value, value text) per bar."""
    if not items:
        return f"<h2>{html.escape(title)}</h2><p>No data yet.</p>"
    top = max_value or max(v for _, v, _ in items) or 1.0
    row, left, width = 26, 170, 420
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{left + width + 90}" '
             f'height="{row * len(items) + 10}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, value, text) in enumerate(items):
        y = i * row + 5
        bar = max(width * value / top, 1.0)
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{html.escape(label)}</text>'
                     f'<rect class="bar" x="{left}" y="{y}" width="{bar:.1f}" height="{row - 8}" rx="3"/>'
                     f'<text x="{left + bar + 6:.1f}" y="{y + 16}">{html.escape(text)}</text>')
    parts.append("</svg>")
    return f"<h2>{html.escape(title)}</h2>" + "".join(parts)


def line_chart(title: str, points: list[tuple[str, float]]) -> str:
    """A line chart of (label, value) points in order, with the first and last labels on the axis."""
    if len(points) < 2:
        return bar_chart(title, [(label, value, f"{value:g}") for label, value in points])
    width, height, pad = 640, 220, 40
    top = max(v for _, v in points) or 1.0
    step = (width - 2 * pad) / (len(points) - 1)
    coords = [(pad + i * step, height - pad - (height - 2 * pad) * v / top) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    return (f"<h2>{html.escape(title)}</h2><svg class=\"chart\" role=\"img\" aria-label=\"{html.escape(title)}\" "
            f"width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">"
            f"<line class=\"axis\" x1=\"{pad}\" y1=\"{height - pad}\" x2=\"{width - pad}\" y2=\"{height - pad}\"/>"
            f"<polyline class=\"line\" points=\"{path}\"/>"
            f"<text x=\"{pad}\" y=\"{height - 15}\">{html.escape(points[0][0])}</text>"
            f"<text x=\"{width - pad}\" y=\"{height - 15}\" text-anchor=\"end\">{html.escape(points[-1][0])}</text>"
            f"<text x=\"{pad - 5}\" y=\"{pad}\" text-anchor=\"end\">{top:g}</text></svg>")
