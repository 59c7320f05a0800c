"""Typed results of triage; ``to_dict()`` gives the JSON form used by the CLI and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from retrieval.search import SearchResult

from .drafting.composer import Draft
from .entities import Entity


def _with_explanation(out: dict, explanation: tuple["Contribution", ...] | None) -> dict:
    # Explanations are opt-in (explain=True); absent means "not asked", not "empty".
    if explanation is not None:
        out["explanation"] = [c.to_dict() for c in explanation]
    return out


@dataclass(frozen=True)
class Contribution:
    """One feature's push towards a label: weight times feature value (linear heads)."""

    feature: str
    weight: float

    def to_dict(self) -> dict:
        return {"feature": self.feature, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class IntentResult:
    """The intent head's decision.

    `abstained` means the model is unsure (low confidence or a small margin over the runner-up):
    `label` is still its best guess, but a person should review it.
    """

    label: str
    category: str | None
    confidence: float
    abstained: bool
    alternatives: tuple[tuple[str, float], ...] = ()
    explanation: tuple[Contribution, ...] | None = None

    def to_dict(self) -> dict:
        out = {
            "label": self.label,
            "category": self.category,
            "confidence": round(self.confidence, 4),
            "abstained": self.abstained,
            "alternatives": [{"label": lab, "confidence": round(p, 4)} for lab, p in self.alternatives],
        }
        return _with_explanation(out, self.explanation)


@dataclass(frozen=True)
class UrgencyReason:
    """Why the urgency is what it is: a named signal with the words that showed it, or the model."""

    signal: str
    level: str
    evidence: str

    def to_dict(self) -> dict:
        return {"signal": self.signal, "level": self.level, "evidence": self.evidence}


@dataclass(frozen=True)
class UrgencyResult:
    """Urgency level, the reasons for it, and the first-response deadline.

    `model_level` is what the classifier said; named signals can only raise it to `level`.
    `due` is `received_at` plus the level's first-response target (timezone-aware).
    """

    level: str
    model_level: str
    confidence: float
    reasons: tuple[UrgencyReason, ...]
    due: datetime
    explanation: tuple[Contribution, ...] | None = None

    def to_dict(self) -> dict:
        out = {
            "level": self.level,
            "model_level": self.model_level,
            "confidence": round(self.confidence, 4),
            "reasons": [r.to_dict() for r in self.reasons],
            "due": self.due.isoformat(),
        }
        return _with_explanation(out, self.explanation)


@dataclass(frozen=True)
class SentimentResult:
    """Sentiment label and a score in [-1, 1] (P(positive) - P(negative); < 0 leans negative)."""

    label: str
    score: float
    confidence: float
    explanation: tuple[Contribution, ...] | None = None

    def to_dict(self) -> dict:
        out = {"label": self.label, "score": round(self.score, 4), "confidence": round(self.confidence, 4)}
        return _with_explanation(out, self.explanation)


@dataclass(frozen=True)
class TriageResult:
    """Everything triage knows about one message.

    `text` is the message as received; `normalized` is what the models read (NFKC, half-width,
    capped at ``max_chars``, greetings, thanks and quoted email history cut), and the entities'
    offsets point into it.
    """

    text: str
    language: str
    intent: IntentResult
    urgency: UrgencyResult
    sentiment: SentimentResult
    entities: tuple[Entity, ...]
    normalized: str = ""
    truncated: bool = False
    boilerplate_chars: int = 0
    model_version: str = ""

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "normalized": self.normalized,
            "language": self.language,
            "intent": self.intent.to_dict(),
            "urgency": self.urgency.to_dict(),
            "sentiment": self.sentiment.to_dict(),
            "entities": [e.to_dict() for e in self.entities],
            "truncated": self.truncated,
            "boilerplate_chars": self.boilerplate_chars,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class TriageFailure:
    """A batch item that could not be triaged; the rest of the batch is unaffected."""

    index: int
    error: str
    reason: str = "invalid_input"

    def to_dict(self) -> dict:
        return {"index": self.index, "error": self.error, "reason": self.reason}


@dataclass(frozen=True)
class AssistResult:
    """Triage, the knowledge-base answers and the reply draft for one message.

    `answers.knowledge_gap` (also :attr:`knowledge_gap`) means no entry is a good enough answer:
    a person should reply, and the gap is worth a new knowledge-base entry.
    """

    triage: TriageResult
    answers: SearchResult
    draft: Draft | None = None

    @property
    def knowledge_gap(self) -> bool:
        return self.answers.knowledge_gap

    def to_dict(self) -> dict:
        return {**self.triage.to_dict(), "answers": self.answers.to_dict()["hits"],
                "answer_confidence": round(self.answers.confidence, 4), "knowledge_gap": self.knowledge_gap,
                "draft": self.draft.to_dict() if self.draft is not None else None}
