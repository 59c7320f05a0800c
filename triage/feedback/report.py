"""What agents do with drafts: acceptance, edit distance, by intent and language, the entries they
rewrite most, and suggested knowledge-base updates. A terminal table and one self-contained
HTML page with inline SVG charts (no scripts, opens offline)."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from ..charts import CHART_CSS, bar_chart
from .store import FeedbackRow


@dataclass(frozen=True)
class GroupStats:
    name: str
    drafts: int
    accepted: int
    edited: int
    rejected: int

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafts if self.drafts else 0.0


@dataclass(frozen=True)
class Suggestion:
    """A knowledge-base change agents' edits point to."""

    kind: str            # "update" (an entry agents keep rewriting) or "new" (no entry fitted)
    kb_id: str | None
    times: int
    example_message: str
    agent_reply: str


@dataclass(frozen=True)
class FeedbackReport:
    total: int
    accepted: int
    edited: int
    rejected: int
    mean_edit_distance: float           # characters, over edited drafts
    mean_edit_ratio: float              # edit distance / draft length, over edited drafts
    by_intent: list[GroupStats] = field(default_factory=list)
    by_language: list[GroupStats] = field(default_factory=list)
    most_rewritten: list[GroupStats] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["acceptance_rate"] = self.acceptance_rate
        return out


def _groups(rows: list[FeedbackRow], key) -> list[GroupStats]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        for name in key(row):
            counts[name][row.action] += 1
    stats = [GroupStats(name, sum(c.values()), c["accepted"], c["edited"], c["rejected"]) for name, c in counts.items()]
    return sorted(stats, key=lambda g: (-g.drafts, g.name))


def build_report(rows: list[FeedbackRow], *, top: int = 10) -> FeedbackReport:
    """Summarise feedback rows (latest action per draft counts)."""
    latest = {row.draft_id: row for row in rows}
    rows = list(latest.values())
    actions = Counter(row.action for row in rows)
    edited = [row for row in rows if row.action == "edited" and row.edit_distance is not None]
    rewritten = [g for g in _groups([r for r in rows if r.kb_ids], lambda r: r.kb_ids) if g.edited + g.rejected]
    rewritten.sort(key=lambda g: (-(g.edited + g.rejected), g.name))
    suggestions: list[Suggestion] = []
    by_entry: dict[str | None, list[FeedbackRow]] = defaultdict(list)
    for row in edited:
        by_entry[row.kb_ids[0] if row.kb_ids else None].append(row)
    for kb_id, group in by_entry.items():
        if kb_id is None:
            suggestions += [Suggestion("new", None, 1, r.message, r.final_text or "") for r in group]
        else:
            suggestions.append(Suggestion("update", kb_id, len(group), group[-1].message, group[-1].final_text or ""))
    suggestions.sort(key=lambda s: (-s.times, s.kind, s.kb_id or ""))
    return FeedbackReport(
        total=len(rows), accepted=actions["accepted"], edited=actions["edited"], rejected=actions["rejected"],
        mean_edit_distance=sum(r.edit_distance for r in edited) / len(edited) if edited else 0.0,
        mean_edit_ratio=sum(r.edit_distance / max(r.draft_length, 1) for r in edited) / len(edited) if edited else 0.0,
        by_intent=_groups(rows, lambda r: [r.intent]),
        by_language=_groups(rows, lambda r: [r.language]),
        most_rewritten=rewritten[:top],
        suggestions=suggestions[:top],
    )


def render_html(report: FeedbackReport) -> str:
    """One self-contained HTML page with the report's charts and tables."""
    esc = html.escape
    actions = [("accepted", report.accepted), ("edited", report.edited), ("rejected", report.rejected)]
    charts = [
        bar_chart("Agent actions", [(a, n, str(n)) for a, n in actions]),
        bar_chart("Acceptance by intent", [(g.name, g.acceptance, f"{g.acceptance:.0%} of {g.drafts}")
                                            for g in report.by_intent], max_value=1.0),
        bar_chart("Acceptance by language", [(g.name, g.acceptance, f"{g.acceptance:.0%} of {g.drafts}")
                                              for g in report.by_language], max_value=1.0),
        bar_chart("Knowledge-base entries agents rewrite most",
                   [(g.name, g.edited + g.rejected, f"{g.edited} edited, {g.rejected} rejected")
                    for g in report.most_rewritten]),
    ]
    suggestions = "".join(
        f"<tr><td>{esc(s.kind)}</td><td>{esc(s.kb_id or '(new entry)')}</td><td>{s.times}</td>"
        f"<td>{esc(s.example_message)}</td><td>{esc(s.agent_reply)}</td></tr>" for s in report.suggestions)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Draft feedback report</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #1f2933; }}
.kpis {{ display: flex; gap: 1.5rem; }} .kpi {{ background: #f0f4f8; padding: 1rem 1.5rem; border-radius: 8px; }}
.kpi b {{ display: block; font-size: 1.6rem; }} {CHART_CSS}
table {{ border-collapse: collapse; margin-top: .5rem; }}
td, th {{ border: 1px solid #d9e2ec; padding: .35rem .6rem; vertical-align: top; text-align: left; }}
</style></head><body>
<h1>Draft feedback report</h1>
<div class="kpis">
<div class="kpi"><b>{report.total}</b>drafts with feedback</div>
<div class="kpi"><b>{report.acceptance_rate:.0%}</b>accepted as drafted</div>
<div class="kpi"><b>{report.mean_edit_distance:.0f}</b>characters changed per edit</div>
<div class="kpi"><b>{report.mean_edit_ratio:.0%}</b>of a draft changed per edit</div>
</div>
{''.join(charts)}
<h2>Suggested knowledge-base updates</h2>
<table><tr><th>kind</th><th>entry</th><th>edits</th><th>customer message</th><th>agent's reply</th></tr>
{suggestions or '<tr><td colspan="5">No edited drafts yet.</td></tr>'}</table>
</body></html>
"""
