"""The shipped default on the project's own held-out split, per head, and critical recall.

    python benchmarks/bench_heldout.py
"""

from collections import Counter

from common import ROOT, print_table

import triage
from triage.data import iter_records
from triage.evaluation import evaluate_predictions

if __name__ == "__main__":
    rows = [r for _, r in iter_records(ROOT / "data" / "eval" / "heldout.jsonl")]
    t = triage.load()
    results = t.triage_batch([r["text"] for r in rows])
    table = []
    for head in ("intent", "urgency", "sentiment"):
        predicted = [getattr(res, head).level if head == "urgency" else getattr(res, head).label for res in results]
        report = evaluate_predictions([r[head] for r in rows], predicted, head=head)
        table.append([head, report.accuracy, report.macro_f1])
    critical = [(r, res) for r, res in zip(rows, results) if r["urgency"] == "critical"]
    missed = [r["text"] for r, res in critical if res.urgency.level != "critical"]
    abstained = [res for res in results if res.intent.abstained]
    covered = [(r, res) for r, res in zip(rows, results) if not res.intent.abstained]
    table.append(["urgency: critical recall", 1 - len(missed) / max(len(critical), 1), f"{len(critical)} critical"])
    table.append(["intent: abstention rate", len(abstained) / len(results), ""])
    table.append(["intent: accuracy when not abstaining",
                  sum(r["intent"] == res.intent.label for r, res in covered) / max(len(covered), 1), ""])
    print_table(f"held-out split ({len(rows)} messages, {dict(Counter(r['lang'] for r in rows))})",
                ["head", "accuracy", "macro-F1"], table)
    for text in missed:
        print("missed critical:", text)
