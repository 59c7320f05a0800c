"""The HTML report of a scored ticket export: where the load and the anger are, and what the
knowledge base is missing. One self-contained file (inline SVG, no scripts), built while the
output is written so memory stays flat."""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from datetime import datetime, timezone

from .charts import CHART_CSS, bar_chart, line_chart
from .taxonomy import URGENCY_LEVELS

_EXAMPLES_PER_TOPIC = 3


class BatchReport:
    """Aggregates scored rows (:meth:`add`, chunk by chunk) and renders the page (:meth:`render`)."""

    def __init__(self, title: str = "Ticket triage report") -> None:
        self.title = title
        self.total = 0
        self.failed = 0
        self.by_intent: Counter = Counter()
        self.by_category: Counter = Counter()
        self.by_urgency: Counter = Counter()
        self.negative: Counter = Counter()
        self.sentiment_sum: defaultdict = defaultdict(float)
        self.by_day: Counter = Counter()
        self.gaps: Counter = Counter()
        self.gap_examples: defaultdict = defaultdict(list)

    def add(self, frame) -> None:
        for row in frame.to_dict("records"):
            self.total += 1
            if isinstance(row.get("error"), str) and row["error"]:
                self.failed += 1
                continue
            intent = row["intent"]
            self.by_intent[intent] += 1
            self.by_category[row["category"]] += 1
            self.by_urgency[row["urgency"]] += 1
            score = row.get("sentiment_score")
            if score is not None and not (isinstance(score, float) and math.isnan(score)):
                self.sentiment_sum[intent] += float(score)
            self.negative[intent] += row["sentiment"] == "negative"
            when = _day(row.get("_time"))
            if when:
                self.by_day[when] += 1
            if row.get("knowledge_gap") in (True, "True", "true", 1):
                self.gaps[intent] += 1
                if len(self.gap_examples[intent]) < _EXAMPLES_PER_TOPIC and row.get("_text"):
                    self.gap_examples[intent].append(row["_text"])

    def render(self) -> str:
        esc = html.escape
        scored = self.total - self.failed
        negative_share = {i: self.negative[i] / n for i, n in self.by_intent.items() if n}
        charts = [
            bar_chart("Volume by intent", [(i, n, f"{n:,}") for i, n in self.by_intent.most_common()]),
            bar_chart("Volume by category", [(c, n, f"{n:,}") for c, n in self.by_category.most_common()]),
            bar_chart("Urgency mix", [(u, self.by_urgency[u], f"{self.by_urgency[u]:,}") for u in URGENCY_LEVELS]),
            bar_chart("Mean sentiment score by intent (bars run from -1 angry to +1 happy)",
                      [(i, 1 + self.sentiment_sum[i] / n, f"{self.sentiment_sum[i] / n:+.2f}")
                       for i, n in self.by_intent.most_common()], max_value=2.0),
            bar_chart("Most negative intents (share of negative messages)",
                      [(i, s, f"{s:.0%} of {self.by_intent[i]:,}")
                       for i, s in sorted(negative_share.items(), key=lambda kv: -kv[1])[:8]], max_value=1.0),
        ]
        if self.by_day:
            charts.insert(3, line_chart("Volume over time (per day)", sorted(self.by_day.items())))
        gap_rows = "".join(
            f"<tr><td>{esc(topic)}</td><td>{n:,}</td><td><ul>"
            + "".join(f"<li>{esc(text)}</li>" for text in self.gap_examples[topic]) + "</ul></td></tr>"
            for topic, n in self.gaps.most_common())
        critical = self.by_urgency.get("critical", 0)
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(self.title)}</title>
<style>
body {{ font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; margin: 2rem; color: #1f2933; }}
.kpis {{ display: flex; gap: 1.5rem; flex-wrap: wrap; }} .kpi {{ background: #f0f4f8; padding: 1rem 1.5rem; border-radius: 8px; }}
.kpi b {{ display: block; font-size: 1.6rem; }} {CHART_CSS}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #d9e2ec; padding: .35rem .6rem; vertical-align: top; text-align: left; }}
</style></head><body>
<h1>{esc(self.title)}</h1>
<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>
<div class="kpis">
<div class="kpi"><b>{scored:,}</b>tickets scored</div>
<div class="kpi"><b>{self.failed:,}</b>rows refused</div>
<div class="kpi"><b>{critical:,}</b>critical</div>
<div class="kpi"><b>{sum(self.negative.values()) / max(scored, 1):.0%}</b>negative</div>
<div class="kpi"><b>{sum(self.gaps.values()):,}</b>with no good knowledge-base answer</div>
</div>
{''.join(charts)}
<h2>Knowledge gaps: messages with no good answer, by topic</h2>
<table><tr><th>topic (intent)</th><th>messages</th><th>examples</th></tr>
{gap_rows or '<tr><td colspan="3">None: every message found a good answer.</td></tr>'}</table>
</body></html>
"""


def _day(value) -> str | None:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return text[:10] if len(text) >= 10 and text[4] == "-" and text[7] == "-" else None
