"""A self-contained HTML comparison report: inline CSS and SVG, no scripts, no external assets.

Charts (each an ``<svg>`` with a stable id, so tests and people can find them):

- ``overlap-matrix`` — providers x providers; the diagonal is each provider's results, the other
  cells the records both returned; darker = more.
- ``coverage-bars`` — per field, one bar per provider: the share of its records carrying the field.
- ``timeline`` — per provider, a bar from start to end with a marker at the first result.

Every value is escaped; the file opens offline in any browser.
"""

from __future__ import annotations

from html import escape

from aggregator.compare import Comparison

__all__ = ["render_html"]

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#111}
h1{font-size:1.4rem;margin:0 0 .2rem} h2{font-size:1.1rem;margin:2rem 0 .5rem} .muted{color:#666}
table{border-collapse:collapse;margin:.5rem 0} th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left} svg{display:block;margin:.5rem 0} .legend span{margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
"""


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _summary_table(comparison: Comparison) -> str:
    head = ("Provider", "Status", "Results", "Unique", "First result (s)", "Total (s)", "Credits", "Error")
    rows = []
    for p in comparison.providers:
        cells = (p.provider, p.status, str(p.results), str(p.unique),
                 f"{p.time_to_first_result_s:.1f}" if p.time_to_first_result_s is not None else "",
                 f"{p.total_s:.1f}" if p.total_s is not None else "", f"{p.credits:g}", p.error or "")
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f'<table id="summary"><tr>{header}</tr>{"".join(rows)}</table>'


def _overlap_svg(comparison: Comparison) -> str:
    names = [p.provider for p in comparison.providers]
    cell, pad, top_pad = 70, 110, 30
    top = max([p.results for p in comparison.providers] + [1])
    parts = [f'<svg id="overlap-matrix" width="{pad + cell * len(names)}" height="{top_pad + cell * len(names)}" '
             f'role="img" aria-label="Overlap matrix">']
    for i, name in enumerate(names):
        parts.append(f'<text x="{pad - 8}" y="{top_pad + cell * i + cell / 2 + 4}" text-anchor="end">'
                     f'{escape(name)}</text>')
        parts.append(f'<text x="{pad + cell * i + cell / 2}" y="{top_pad - 10}" text-anchor="middle">'
                     f'{escape(name)}</text>')
    for i, row in enumerate(comparison.providers):
        for j, other in enumerate(names):
            value = row.results if i == j else row.overlap.get(other, 0)
            shade = 0.12 + 0.78 * value / top
            x, y = pad + cell * j, top_pad + cell * i
            parts.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="#2563eb" fill-opacity="{shade:.2f}" data-value="{value}"/>')
            parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 5}" text-anchor="middle">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _coverage_svg(comparison: Comparison) -> str:
    providers, fields = comparison.providers, comparison.fields
    bar, gap, label_w, width = 14, 10, 110, 420
    height = len(fields) * (len(providers) * bar + gap) + 20
    parts = [f'<svg id="coverage-bars" width="{label_w + width + 60}" height="{height}" role="img" '
             f'aria-label="Field coverage">']
    y = 10
    for field in fields:
        parts.append(f'<text x="0" y="{y + bar * len(providers) / 2 + 4}">{escape(field)}</text>')
        for i, p in enumerate(providers):
            share = p.coverage.get(field, 0.0)
            parts.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{width * share:.1f}" height="{bar - 2}" '
                         f'fill="{_color(i)}" data-provider="{escape(p.provider)}" data-field="{escape(field)}" '
                         f'data-value="{share:.3f}"/>')
            parts.append(f'<text x="{label_w + width * share + 4:.1f}" y="{y + bar - 4}" font-size="11">'
                         f'{share:.0%}</text>')
            y += bar
        y += gap
    parts.append("</svg>")
    return "".join(parts)


def _timeline_svg(comparison: Comparison) -> str:
    providers = comparison.providers
    span = max([(p.started_s or 0) + (p.total_s or 0) for p in providers] + [comparison.elapsed_s, 1e-9])
    label_w, width, row = 110, 600, 30
    parts = [f'<svg id="timeline" width="{label_w + width + 20}" height="{row * len(providers) + 30}" role="img" '
             f'aria-label="Timeline">']
    for i, p in enumerate(providers):
        y = 10 + row * i
        start = (p.started_s or 0) / span * width
        length = max((p.total_s or 0) / span * width, 1)
        parts.append(f'<text x="0" y="{y + 15}">{escape(p.provider)}</text>')
        parts.append(f'<rect class="span" x="{label_w + start:.1f}" y="{y}" width="{length:.1f}" height="20" '
                     f'fill="{_color(i)}" fill-opacity="0.35" data-provider="{escape(p.provider)}"/>')
        if p.time_to_first_result_s is not None:
            mark = label_w + start + p.time_to_first_result_s / span * width
            parts.append(f'<line class="first-result" x1="{mark:.1f}" x2="{mark:.1f}" y1="{y - 2}" y2="{y + 22}" '
                         f'stroke="{_color(i)}" stroke-width="3"/>')
    axis_y = 10 + row * len(providers) + 12
    parts.append(f'<text x="{label_w}" y="{axis_y}" font-size="11">0 s</text>'
                 f'<text x="{label_w + width}" y="{axis_y}" font-size="11" text-anchor="end">{span:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(comparison: Comparison) -> str:
    """The comparison as one HTML document (UTF-8 text)."""
    legend = "".join(f'<span><i class="swatch" style="background:{_color(i)}"></i>{escape(p.provider)}</span>'
                     for i, p in enumerate(comparison.providers))
    where = "sandbox (virtual seconds)" if comparison.sandbox else "live APIs"
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>deepsearch compare: {escape(comparison.query)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(comparison.query)}</h1>"
        f'<p class="muted">{escape(comparison.mode)} mode · {comparison.records} merged records · '
        f"{comparison.elapsed_s:.1f} s · {escape(where)} · run {escape(comparison.run_id)}</p>"
        f"<h2>Summary</h2>{_summary_table(comparison)}"
        f"<h2>Overlap</h2><p class=\"muted\">Records returned by both providers (diagonal: each provider's total)."
        f"</p>{_overlap_svg(comparison)}"
        f'<h2>Field coverage</h2><p class="legend">{legend}</p>{_coverage_svg(comparison)}'
        f'<h2>Timeline</h2><p class="muted">Bar: start to end; mark: first result.</p>{_timeline_svg(comparison)}'
        "</body></html>"
    )
