"""A self-contained HTML comparison report: inline CSS and SVG, no scripts, no external assets.

Sections, top to bottom (each a ``<section>`` with a stable id, so tests and people can find them):

- header — the query, mode, run id, where it ran and which clock its times are on, a one-line
  summary and key figures (merged records, records found by several providers, credits, credits
  per merged record, duration);
- ``providers`` — table ``summary``: every provider, the ones that ran *and* the ones the run
  skipped, with status, records, unique records, timings, credits per record and per unique record,
  and the reason for a skipped, failed or partial provider;
- ``overlap`` — chart ``overlap-matrix``: providers x providers; the diagonal is each provider's
  records, the other cells the records both returned; darker = more;
- ``coverage`` — chart ``coverage-bars``: per field, one bar per provider, the share of its
  records carrying the field;
- ``timing`` — chart ``timeline``: per provider a bar from start to end, a mark at the first
  result, and a labelled time axis with ticks;
- ``records`` — table ``merged-records``: the merged records, pre-sorted by consensus (then best
  rank), with who found each (and at which rank) and which provider supplied which field.

Every provider-supplied string is escaped (it is untrusted); the file opens offline in any browser
and reads on a phone (viewport meta tag, scaling charts, tables that scroll sideways on their own).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape

from aggregator.compare import ComparedRecord, Comparison, ProviderComparison

__all__ = ["RECORD_ROWS_LIMIT", "render_html"]

RECORD_ROWS_LIMIT = 500  # rows of the merged-records table; the rest are in --out FILE.csv/.json
PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2")
CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1.5rem 1rem 3rem;color:#111827;background:#fff}
h1{font-size:1.5rem;margin:.1rem 0 .3rem;overflow-wrap:anywhere} h2{font-size:1.15rem;margin:2.2rem 0 .4rem}
.eyebrow{text-transform:uppercase;letter-spacing:.06em;font-size:.75rem;color:#6b7280;margin:0}
.muted,.note{color:#6b7280} .note{font-size:.85rem;margin:.3rem 0} .lede{font-size:1.05rem;margin:.6rem 0}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.6rem;margin:1rem 0}
.facts div{border:1px solid #e5e7eb;border-radius:8px;padding:.5rem .7rem}
.facts dt{font-size:.75rem;color:#6b7280} .facts dd{margin:0;font-size:1.25rem;font-weight:600}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4rem 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .6rem;text-align:right;vertical-align:top}
th{background:#f9fafb;font-weight:600} td.text,th.text{text-align:left}
td.reason{min-width:12rem;max-width:26rem;overflow-wrap:anywhere} td.nowrap{white-space:nowrap}
#merged-records td.text{overflow-wrap:anywhere} #merged-records td.detail{min-width:6.5rem}
#merged-records td.name{min-width:11rem}
.badge{display:inline-block;border-radius:999px;padding:0 .5rem;font-size:.8rem;font-weight:600}
.found{background:#dcfce7;color:#166534} .partial{background:#fef3c7;color:#92400e}
.no_result{background:#f1f5f9;color:#475569} .failed{background:#fee2e2;color:#991b1b}
.skipped{background:#e5e7eb;color:#374151}
tr.skipped-row td{color:#6b7280} svg text.muted{fill:#6b7280}
svg{display:block;margin:.5rem 0;height:auto;max-width:100%} svg text{font-size:12px;fill:#111827}
.legend span{margin-right:1rem;white-space:nowrap}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-1px}
.key{display:block;color:#6b7280;font-size:.8rem;overflow-wrap:anywhere}
.prov{margin:0;padding:0;list-style:none;font-size:.8rem;min-width:13rem} .prov .conflict{color:#b45309}
.chip{display:inline-block;white-space:nowrap;margin:0 .3rem .1rem 0}
footer{margin-top:2.5rem;font-size:.8rem;color:#6b7280;border-top:1px solid #e5e7eb;padding-top:.6rem}
@media print{.scroll{overflow:visible} section{break-inside:avoid-page}}
"""


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _num(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _unit(comparison: Comparison) -> str:
    return "virtual s" if comparison.sandbox else "s"


def _clock_note(comparison: Comparison) -> str:
    if comparison.sandbox:
        return ("Times are virtual seconds on the sandbox clock: the emulators run the providers' documented "
                "job durations time-scaled, so they are not the wall-clock time this run took.")
    return "Times are wall-clock seconds measured by this run against the live APIs."


def _swatch(comparison: Comparison, provider: str) -> str:
    names = [p.provider for p in comparison.providers]
    if provider not in names:
        return ""
    return f'<i class="swatch" style="background:{_color(names.index(provider))}"></i>'


# -- header ------------------------------------------------------------------------------------------

def _lede(comparison: Comparison) -> str:
    one, many = ("person", "people") if comparison.mode == "people" else ("company", "companies")
    noun = one if comparison.records == 1 else many
    total = len(comparison.providers) + len(comparison.skipped)
    delivering = [p.provider for p in comparison.providers if p.results]
    several = sum(1 for r in comparison.merged if r.consensus > 1)
    text = (f"{comparison.records} merged {noun} from {len(delivering)} of {total} providers"
            f"{' (' + ', '.join(delivering) + ')' if delivering else ''}; {several} returned by more than one.")
    failed = [f"{p.provider} — {_reason(p)}" for p in comparison.providers if p.status == "failed"]
    if failed:
        text += f" Failed: {'; '.join(failed)}."
    if comparison.skipped:
        text += f" Skipped: {'; '.join(f'{s.provider} — {s.reason}' for s in comparison.skipped)}."
    return f'<p class="lede">{escape(text)}</p>'


def _facts(comparison: Comparison) -> str:
    several = sum(1 for r in comparison.merged if r.consensus > 1)
    answered = sum(1 for p in comparison.providers if p.status in ("found", "partial", "no_result"))
    total = len(comparison.providers) + len(comparison.skipped)
    facts = (("Merged records", str(comparison.records)), ("Found by 2+ providers", str(several)),
             ("Providers answered", f"{answered} of {total}"), ("Credits", f"{comparison.credits:g}"),
             ("Credits per merged record", _num(comparison.credits_per_record, ".2f")),
             (f"Duration ({_unit(comparison)})", f"{comparison.elapsed_s:.1f}"))
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    return f'<dl class="facts">{cells}</dl>'


def _header(comparison: Comparison) -> str:
    where = "sandbox emulators, virtual seconds" if comparison.sandbox else "live APIs, wall-clock seconds"
    started = f" · started {comparison.started_at:%Y-%m-%d %H:%M} UTC" if comparison.started_at else ""
    return (f'<header><p class="eyebrow">deepsearch compare · {escape(comparison.mode)} search</p>'
            f"<h1>{escape(comparison.query)}</h1>"
            f'<p class="muted">run {escape(comparison.run_id)}{started} · {where}</p>'
            f"{_lede(comparison)}{_facts(comparison)}</header>")


# -- providers ---------------------------------------------------------------------------------------

def _reason(p: ProviderComparison) -> str:
    if p.error:
        return f"{p.error_type}: {p.error}" if p.error_type else p.error
    return p.note or ""


def _row(cells: Iterable[tuple[str, str]], css: str = "") -> str:
    """One ``<tr>``; each cell is (class, already-escaped HTML)."""
    tds = "".join(f'<td class="{c}">{h}</td>' if c else f"<td>{h}</td>" for c, h in cells)
    return f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>"


def _summary_table(comparison: Comparison) -> str:
    unit = _unit(comparison)
    head = ("Provider", "Status", "Records", "Unique", f"First result ({unit})", f"Total time ({unit})", "Credits",
            "Credits / record", "Credits / unique record", "Reason / note")
    rows = []
    for p in comparison.providers:
        rows.append(_row([
            ("text nowrap", _swatch(comparison, p.provider) + escape(p.provider)),
            ("text", f'<span class="badge {escape(p.status)}">{escape(p.status)}</span>'),
            ("", str(p.results)), ("", str(p.unique)), ("", _num(p.time_to_first_result_s)),
            ("", _num(p.total_s)), ("", f"{p.credits:g}"), ("", _num(p.credits_per_record, ".2f")),
            ("", _num(p.credits_per_unique, ".2f")), ("text reason", escape(_reason(p)))]))
    for s in comparison.skipped:
        rows.append(_row([("text", escape(s.provider)), ("text", '<span class="badge skipped">skipped</span>'),
                          *[("", "—")] * 7, ("text reason", escape(s.reason))], css="skipped-row"))
    header = "".join(f'<th class="{"text" if h in (head[0], head[1], head[-1]) else ""}">{escape(h)}</th>'
                     for h in head)
    return f'<div class="scroll"><table id="summary"><tr>{header}</tr>{"".join(rows)}</table></div>'


def _providers_section(comparison: Comparison) -> str:
    return ('<section id="providers"><h2>Providers</h2>'
            f"{_summary_table(comparison)}"
            '<p class="note">Records: merged records the provider contributed to. Unique: records no other provider '
            "returned. Credits / unique record: what each record only this provider found cost. "
            f"{escape(_clock_note(comparison))}</p></section>")


# -- charts ------------------------------------------------------------------------------------------

def _svg_open(chart_id: str, width: float, height: float, label: str) -> str:
    """A chart that shrinks with the page down to 80% of its size (text stays legible), then scrolls in its box."""
    return (f'<svg id="{chart_id}" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" style="min-width:{0.8 * width:.0f}px" role="img" aria-label="{escape(label)}">')


def _overlap_svg(comparison: Comparison) -> str:
    names = [p.provider for p in comparison.providers]
    cell, pad, top_pad = 70, 110, 30
    top = max([p.results for p in comparison.providers] + [1])
    parts = [_svg_open("overlap-matrix", pad + cell * len(names), top_pad + cell * len(names), "Overlap matrix")]
    for i, name in enumerate(names):
        parts.append(f'<text x="{pad - 8}" y="{top_pad + cell * i + cell / 2 + 4}" text-anchor="end">'
                     f"{escape(name)}</text>")
        parts.append(f'<text x="{pad + cell * i + cell / 2}" y="{top_pad - 10}" text-anchor="middle">'
                     f"{escape(name)}</text>")
    for i, row in enumerate(comparison.providers):
        for j, other in enumerate(names):
            value = row.results if i == j else row.overlap.get(other, 0)
            shade = 0.12 + 0.78 * value / top
            x, y = pad + cell * j, top_pad + cell * i
            what = f"{row.provider}: {value} records" if i == j else f"{row.provider} and {other}: {value} in common"
            parts.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="#2563eb" fill-opacity="{shade:.2f}" data-value="{value}">'
                         f"<title>{escape(what)}</title></rect>")
            ink = "#fff" if shade > 0.55 else "#111827"
            parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 5}" text-anchor="middle" '
                         f'style="fill:{ink}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _coverage_svg(comparison: Comparison) -> str:
    providers, fields = comparison.providers, comparison.fields
    bar, gap, label_w, width = 14, 10, 110, 420
    height = len(fields) * (len(providers) * bar + gap) + 20
    parts = [_svg_open("coverage-bars", label_w + width + 60, height, "Field coverage")]
    for share in (0.25, 0.5, 0.75, 1.0):
        x = label_w + width * share
        parts.append(f'<line x1="{x:.0f}" x2="{x:.0f}" y1="4" y2="{height - 14}" stroke="#e5e7eb"/>'
                     f'<text x="{x:.0f}" y="{height - 2}" text-anchor="middle" font-size="10">{share:.0%}</text>')
    y = 10
    for field in fields:
        parts.append(f'<text x="0" y="{y + bar * len(providers) / 2 + 4}">{escape(field)}</text>')
        for i, p in enumerate(providers):
            share = p.coverage.get(field, 0.0)
            parts.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{width * share:.1f}" height="{bar - 2}" '
                         f'fill="{_color(i)}" data-provider="{escape(p.provider)}" data-field="{escape(field)}" '
                         f'data-value="{share:.3f}"><title>{escape(p.provider)}: {share:.0%}</title></rect>')
            parts.append(f'<text x="{label_w + width * share + 4:.1f}" y="{y + bar - 4}" font-size="11">'
                         f"{share:.0%}</text>")
            y += bar
        y += gap
    parts.append("</svg>")
    return "".join(parts)


def tick_step(span: float, target: int = 6) -> float:
    """A round step (1, 2, 2.5 or 5 x 10^k) giving about ``target`` ticks over ``span``."""
    raw = max(span, 1e-9) / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)


def _axis(span: float, step: float, left: float, width: float, top: float, bottom: float, unit: str) -> str:
    parts, n = [], 0
    while n * step <= span + step * 1e-6:
        x = left + n * step / span * width
        parts.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom + 5}" stroke="#e5e7eb"/>'
                     f'<text class="tick-label" x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" '
                     f'font-size="11">{n * step:g}</text>')
        n += 1
    parts.append(f'<text x="{left + width / 2:.0f}" y="{bottom + 36}" text-anchor="middle" font-size="11">'
                 f"seconds since the run started ({escape(unit)})</text>")
    return "".join(parts)


def _timeline_row(p: ProviderComparison, i: int, y: float, scale: float, left: float, half: float) -> str:
    start = left + (p.started_s or 0) * scale
    length = max((p.total_s or 0) * scale, 1)
    fill = "#dc2626" if p.status == "failed" else _color(i)
    parts = [f'<text x="0" y="{y + 14}">{escape(p.provider)}</text>',
             f'<rect class="span" x="{start:.1f}" y="{y}" width="{length:.1f}" height="18" fill="{fill}" '
             f'fill-opacity="0.35" data-provider="{escape(p.provider)}"/>']
    at = p.started_s or 0  # labels are positions on the axis, like the bar and the mark
    words = [p.status, f"start {at:.1f}"] + ([f"first result {at + p.time_to_first_result_s:.1f}"]
                                             if p.time_to_first_result_s is not None else [])
    words.append(f"end {at + (p.total_s or 0):.1f}")
    if p.time_to_first_result_s is not None:
        mark = start + p.time_to_first_result_s * scale
        parts.append(f'<line class="first-result" x1="{mark:.1f}" x2="{mark:.1f}" y1="{y - 2}" y2="{y + 20}" '
                     f'stroke="{fill}" stroke-width="3"/>')
    anchor, x = ("end", start + length) if start > half else ("start", start)
    parts.append(f'<text x="{x:.1f}" y="{y + 32}" font-size="11" text-anchor="{anchor}" class="muted">'
                 f"{escape(' · '.join(words))}</text>")
    return "".join(parts)


def _timeline_svg(comparison: Comparison) -> str:
    providers = comparison.providers
    span = max([(p.started_s or 0) + (p.total_s or 0) for p in providers] + [comparison.elapsed_s, 1e-9])
    step = tick_step(span)
    span = math.ceil(span / step - 1e-9) * step
    left, width, row = 110, 600, 44
    bottom = 10 + row * len(providers)
    parts = [_svg_open("timeline", left + width + 30, bottom + 44, "Timeline"),
             _axis(span, step, left, width, 4, bottom, _unit(comparison))]
    parts += [_timeline_row(p, i, 10 + row * i, width / span, left, left + width / 2)
              for i, p in enumerate(providers)]
    parts.append("</svg>")
    return "".join(parts)


def _legend(comparison: Comparison) -> str:
    return '<p class="legend">' + "".join(
        f"<span>{_swatch(comparison, p.provider)}{escape(p.provider)}</span>" for p in comparison.providers) + "</p>"


def _scroll(html: str) -> str:
    return f'<div class="scroll">{html}</div>'


def _charts(comparison: Comparison) -> str:
    return (
        '<section id="overlap"><h2>Overlap</h2><p class="note">Records returned by both providers, after entity '
        f"resolution (diagonal: each provider's records).</p>{_scroll(_overlap_svg(comparison))}</section>"
        '<section id="coverage"><h2>Field coverage</h2><p class="note">Share of each provider\'s records that '
        f"carry the field.</p>{_legend(comparison)}{_scroll(_coverage_svg(comparison))}</section>"
        '<section id="timing"><h2>Timeline</h2><p class="note">Bar: a provider\'s start to its end; thick mark: its '
        "first result; labels are positions on the axis. "
        f"{escape(_clock_note(comparison))}</p>{_scroll(_timeline_svg(comparison))}</section>"
    )


# -- merged records ----------------------------------------------------------------------------------

def _provenance(record: ComparedRecord) -> str:
    """Fields grouped by the providers that supplied them, then the fields other providers disagree on."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for label, providers in record.provenance.items():
        groups.setdefault(providers, []).append(label)
    items = [f"<li><b>{escape(' + '.join(who))}</b>: {escape(', '.join(labels))}</li>"
             for who, labels in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0]))]
    items += [f'<li class="conflict">{escape(label)} differs: {escape(", ".join(who))}</li>'
              for label, who in record.conflicts.items()]
    return f'<ul class="prov">{"".join(items)}</ul>'


def _record_row(comparison: Comparison, n: int, record: ComparedRecord, of: int) -> str:
    found = "".join(f'<span class="chip">{_swatch(comparison, p)}{escape(p)} #{rank}</span>'
                    for p, rank in record.found_by.items())
    name = f'{escape(record.name or "(no name)")}<span class="key">{escape(record.key)}</span>'
    return _row([("", str(n)), ("text name", name), *[("text detail", escape(v)) for v in record.details.values()],
                 ("text", found), ("", f"{record.consensus} of {of}"), ("text", _provenance(record))])


def _records_section(comparison: Comparison) -> str:
    shown = comparison.merged[:RECORD_ROWS_LIMIT]
    columns = list(comparison.merged[0].details) if comparison.merged else []
    head = ["#", "Name", *(c[:1].upper() + c[1:] for c in columns), "Found by (rank)", "Consensus", "Provenance"]
    header = "".join(f'<th class="{"" if h in ("#", "Consensus") else "text"}">{escape(h)}</th>' for h in head)
    of = len(comparison.providers)
    rows = "".join(_record_row(comparison, n, r, of) for n, r in enumerate(shown, start=1))
    more = (f" Showing the first {len(shown)} of {len(comparison.merged)}; write them all with --out FILE.csv."
            if len(shown) < len(comparison.merged) else "")
    return ('<section id="records"><h2>Merged records</h2><p class="note">Sorted by consensus (how many providers '
            "returned the record), then best rank. Provenance: which providers supplied each field's chosen value."
            f"{more}</p>"
            f'<div class="scroll"><table id="merged-records"><tr>{header}</tr>{rows}</table></div></section>')


def render_html(comparison: Comparison) -> str:
    """The comparison as one HTML document (UTF-8 text)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>deepsearch compare: {escape(comparison.query)}</title><style>{CSS}</style></head><body>"
        f"{_header(comparison)}{_providers_section(comparison)}{_charts(comparison)}{_records_section(comparison)}"
        "<footer>deepsearch-aggregator comparison report · self-contained: no scripts, no external assets · "
        f"run {escape(comparison.run_id)}</footer></body></html>"
    )
