"""Scoring a bundle's head on labeled data: accuracy, macro-F1, per-label scores, confusions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from retrieval.text import PreparedText

from .bundle import Bundle
from .pipeline import AbstainPolicy
from .serving import ServingModel, as_prepared
from .urgency import decide_urgency


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    """Scores of one head on one labeled set.

    With an `unknown_label`, abstentions count as that label; `in_scope_accuracy` is accuracy
    on the examples whose gold label is not the unknown one, and `oos_recall` the share of
    unknown-label examples predicted (or abstained) as unknown.
    """

    head: str
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelScore, ...]
    confused_pairs: tuple[tuple[str, str, int], ...]
    abstained: int
    unknown_label: str | None = None
    in_scope_accuracy: float | None = None
    oos_recall: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["confused_pairs"] = [{"gold": g, "predicted": p, "count": c} for g, p, c in self.confused_pairs]
        return out


def predict_head(
    bundle: Bundle | ServingModel,
    texts: Sequence[str | PreparedText],
    head: str = "intent",
    abstain: AbstainPolicy | None = None,
    *,
    urgency_signals: bool = True,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels, calibrated probabilities and abstention flags of one head of `bundle`, scored
    as :class:`Triage` scores them: urgency levels are raised by the named signals unless
    `urgency_signals` is False (the head alone, as the manifest's ``urgency`` metric).

    Abstention applies to every head here (only the intent head abstains in :class:`Triage`),
    using `abstain` or the bundle's recommended policy; a level raised by a signal never abstains.
    `proba` is the head's own.
    """
    served = bundle if isinstance(bundle, ServingModel) else bundle.serving()
    if head not in served.heads:
        raise ValueError(f"bundle has no {head!r} head; it has {sorted(served.heads)}")
    model = served.heads[head]
    policy = abstain or AbstainPolicy.from_dict(served.manifest.get("abstain"))
    docs = as_prepared(texts)
    proba = model.predict_proba(served.featurizer.featurize(docs))
    order = np.argsort(-proba, axis=1)
    labels = [str(model.classes[k]) for k in order[:, 0]]
    top = proba[np.arange(len(labels)), order[:, 0]]
    second = proba[np.arange(len(labels)), order[:, 1]] if proba.shape[1] > 1 else np.zeros(len(labels))
    abstained = np.array([policy.abstains(lab, t, s) for lab, t, s in zip(labels, top, second)], dtype=bool)
    if head == "urgency" and urgency_signals:
        raised = [decide_urgency(lab, float(t), doc.simplified).level for lab, t, doc in zip(labels, top, docs)]
        abstained &= np.array([a == b for a, b in zip(raised, labels)], dtype=bool)
        labels = raised
    return labels, proba, abstained


def evaluate_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    *,
    head: str = "intent",
    abstained: Sequence[bool] | None = None,
    unknown_label: str | None = None,
    top_confusions: int = 10,
) -> EvaluationReport:
    """Compute the report from gold and predicted labels."""
    gold = [str(g) for g in gold]
    predicted = [str(p) for p in predicted]
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    flags = list(abstained) if abstained is not None else [False] * len(gold)
    if unknown_label is not None:
        predicted = [unknown_label if a else p for p, a in zip(predicted, flags)]
    labels = sorted(set(gold) | set(predicted))
    p, r, f, s = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    per_label = tuple(
        LabelScore(lab, round(float(pp), 4), round(float(rr), 4), round(float(ff), 4), int(ss))
        for lab, pp, rr, ff, ss in zip(labels, p, r, f, s)
    )
    confusions = Counter((g, q) for g, q in zip(gold, predicted) if g != q).most_common(top_confusions)
    in_scope = oos = None
    if unknown_label is not None:
        scoped = [(g, q) for g, q in zip(gold, predicted) if g != unknown_label]
        oos_rows = [q for g, q in zip(gold, predicted) if g == unknown_label]
        in_scope = round(sum(g == q for g, q in scoped) / len(scoped), 4) if scoped else None
        oos = round(sum(q == unknown_label for q in oos_rows) / len(oos_rows), 4) if oos_rows else None
    gold_labels = sorted(set(gold))
    return EvaluationReport(
        head=head,
        n=len(gold),
        accuracy=round(float(accuracy_score(gold, predicted)), 4),
        macro_f1=round(float(f1_score(gold, predicted, labels=gold_labels, average="macro", zero_division=0)), 4),
        per_label=per_label,
        confused_pairs=tuple((g, q, c) for (g, q), c in confusions),
        abstained=int(sum(flags)),
        unknown_label=unknown_label,
        in_scope_accuracy=in_scope,
        oos_recall=oos,
    )


def evaluate_bundle(
    bundle: Bundle | ServingModel,
    texts: Sequence[str | PreparedText],
    gold: Sequence[str],
    *,
    head: str = "intent",
    unknown_label: str | None = None,
    abstain: AbstainPolicy | None = None,
    urgency_signals: bool = True,
) -> EvaluationReport:
    """Predict with one head of `bundle` and score against `gold`.

    Abstentions only change the result when an `unknown_label` is given (then they count as it).
    Gold labels that share nothing with the head's labels, or an `unknown_label` found in neither,
    are refused: they would score 0 without saying why (usually a column meant for another head).
    """
    served = bundle if isinstance(bundle, ServingModel) else bundle.serving()
    if head in served.heads:
        classes = sorted(str(c) for c in served.heads[head].classes)
        gold_labels = sorted({str(g) for g in gold})
        if gold_labels and not set(gold_labels) & (set(classes) | {unknown_label}):
            others = [h for h, m in served.heads.items() if set(gold_labels) & {str(c) for c in m.classes}]
            hint = f"; they look like {others[0]!r} labels (pass head={others[0]!r}, or --head {others[0]})" if others else ""
            raise ValueError(
                f"none of the gold labels {_preview(gold_labels)} is a label of the {head!r} head "
                f"{_preview(classes)}{hint}"
            )
        if unknown_label is not None and unknown_label not in classes and unknown_label not in gold_labels:
            raise ValueError(
                f"unknown label {unknown_label!r} is neither a label of the {head!r} head nor in the gold labels; "
                f"use one of {_preview(sorted(set(classes) | set(gold_labels)))}"
            )
    predicted, _, abstained = predict_head(served, texts, head, abstain, urgency_signals=urgency_signals)
    return evaluate_predictions(gold, predicted, head=head, abstained=abstained, unknown_label=unknown_label)


def _preview(labels: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(labels[:limit])
    return f"[{shown}{', ...' if len(labels) > limit else ''}]"
