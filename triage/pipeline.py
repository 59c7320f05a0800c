"""The Triage component: one message or a batch in, typed results out.

Construction is light (it only records where the model is); :meth:`Triage.warm_up` loads the
bundle and the encoder once, and the first call does it if you have not.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.encoders import get_encoder
from retrieval import store
from retrieval.search import KnowledgeBase, check_k
from retrieval.text import DEFAULT_MAX_CHARS, PreparedText, TextInputError, prepare
from retrieval.text import warm_up as load_text_resources

from .bundle import MANIFEST, Bundle, load_serving
from .drafting import Draft, Drafter, Generator, make_generator
from .entities import extract_entities
from .serving import EMBEDDING_FEATURE, FeatureRows, HeadSet, ServingFeaturizer, ServingHead, ServingModel
from .results import (
    AssistResult,
    Contribution,
    IntentResult,
    SentimentResult,
    TriageFailure,
    TriageResult,
)
from .taxonomy import DEFAULT_RESPONSE_TARGETS, HEADS, INTENT_CATEGORIES, URGENCY_LEVELS
from .urgency import decide_urgency

if TYPE_CHECKING:
    from .feedback import FeedbackStore

_PACKAGE_DIR = Path(__file__).resolve().parent
_BATCH_SLICE = 512  # messages featurised together in triage_batch (bounds its memory)


def shipped_path(installed: str, checkout: str) -> Path | None:
    """A file the project ships: inside the installed wheel (`installed`, relative to the package)
    or in a source checkout (`checkout`, relative to the repository root); None if neither exists."""
    for candidate in (_PACKAGE_DIR / installed, _PACKAGE_DIR.parent / checkout):
        if candidate.exists():
            return candidate
    return None


def require_shipped(installed: str, checkout: str, what: str) -> Path:
    """:func:`shipped_path`, or FileNotFoundError saying where `what` was expected."""
    found = shipped_path(installed, checkout)
    if found is None:
        raise FileNotFoundError(f"{what} is missing (expected {checkout} in a checkout or triage/{installed} in an "
                                "installed package)")
    return found


def default_bundle_path() -> Path:
    """Where the shipped default bundle is: inside the installed package, or ``models/`` in a checkout."""
    return require_shipped(f"_models/default/{MANIFEST}", f"models/default/{MANIFEST}",
                           "the default model bundle (rebuild it with `python scripts/train_default.py`)").parent


def _checked_targets(targets: dict) -> dict[str, timedelta]:
    """First-response targets, refused early with a clear message (not at the first due time)."""
    for level, target in targets.items():
        if level not in URGENCY_LEVELS:
            raise ValueError(f"response_targets has unknown urgency level {level!r}; levels are {URGENCY_LEVELS}")
        if not isinstance(target, timedelta) or target <= timedelta(0):
            raise ValueError(f"response_targets[{level!r}] must be a positive timedelta such as "
                             f"timedelta(hours=2), got {target!r}")
    return dict(targets)


@dataclass
class AbstainPolicy:
    """When the intent head should say "I am not sure" instead of committing.

    Parameters
    ----------
    min_confidence : float
        Abstain when the top calibrated probability is below this.
    min_margin : float
        Abstain when the top probability beats the runner-up by less than this.
    per_label : dict
        Label-specific `min_confidence` overrides, e.g. ``{"complaint": 0.6}``.
    """

    min_confidence: float = 0.4
    min_margin: float = 0.1
    per_label: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        thresholds = {"min_confidence": self.min_confidence, "min_margin": self.min_margin,
                      **{f"per_label[{label!r}]": v for label, v in self.per_label.items()}}
        for name, value in thresholds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"abstain {name} must be a probability between 0 and 1, got {value!r}")

    def abstains(self, label: str, top: float, second: float) -> bool:
        return top < self.per_label.get(label, self.min_confidence) or (top - second) < self.min_margin

    def check_labels(self, labels: Sequence[str]) -> None:
        """Refuse `per_label` thresholds for labels the intent head does not have (a typo would
        otherwise be ignored silently)."""
        unknown = sorted(set(self.per_label) - set(labels))
        if unknown:
            raise ValueError(f"abstain per_label names unknown intent label(s) {unknown}; "
                             f"this model's intents are {sorted(labels)}")

    @classmethod
    def from_dict(cls, data: dict | None) -> "AbstainPolicy":
        data = data or {}
        unknown = sorted(set(data) - {"min_confidence", "min_margin", "per_label"})
        if unknown:
            raise ValueError(f"unknown abstain setting(s) {unknown}; use min_confidence, min_margin, per_label")
        per_label = data.get("per_label") or {}
        if not isinstance(per_label, dict):
            raise ValueError(f"abstain per_label must map intent labels to thresholds, got {per_label!r}")
        return cls(
            min_confidence=data.get("min_confidence", cls.min_confidence),
            min_margin=data.get("min_margin", cls.min_margin),
            per_label={str(k): v for k, v in per_label.items()},
        )

    def to_dict(self) -> dict:
        return {"min_confidence": self.min_confidence, "min_margin": self.min_margin, "per_label": dict(self.per_label)}


@dataclass
class _HeadGroup:
    featurizer: ServingFeaturizer
    head_set: HeadSet


class Triage:
    """Triage messages with a model bundle.

    Parameters
    ----------
    model : str, path, Bundle, ServingModel or None
        A bundle directory, an in-memory :class:`~triage.bundle.Bundle` (say, just trained) or
        :class:`~triage.serving.ServingModel`, or None for the shipped default. Heads the bundle
        lacks (say, a bundle trained only for intent) come from the default bundle.
    max_chars : int
        Longer messages are truncated to this many characters and flagged ``truncated``.
    strip_boilerplate : bool
        Triage only the customer's request: an email's quoted thread, ">" lines, signature and
        "Sent from my iPhone", and greetings and thanks around the request ("Dear Customer
        Service,", "亲，在吗？", "Thanks in advance!") are left out
        (:func:`retrieval.boilerplate.strip_boilerplate`) and counted in ``boilerplate_chars``.
        The result's ``text`` stays the message as received.
    abstain : AbstainPolicy or dict, optional
        Intent abstention thresholds; default: the bundle's recommended policy, if any.
    response_targets : dict, optional
        First-response target per urgency level (``timedelta``), overriding the defaults.
    explain_top_k : int
        How many features an explanation lists per head.
    knowledge_base : KnowledgeBase, path or None
        For :meth:`assist`: a :class:`~retrieval.KnowledgeBase`, a saved knowledge-base directory,
        an FAQ file, or None for the shipped default (built on first use).
    drafter : Drafter, optional
        Composes reply drafts; default: the shipped templates.
    generator : str or Generator, optional
        Polishes drafts (``"transformers:<path>"``, ``"openai:<url>"``); default: templates only.
    feedback_store : FeedbackStore, SQLAlchemy URL or SQLite path, optional
        Where drafts and agents' feedback are stored; without one, :meth:`feedback` is unavailable.
    """

    def __init__(
        self,
        model: str | os.PathLike | Bundle | ServingModel | None = None,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        strip_boilerplate: bool = True,
        abstain: AbstainPolicy | dict | None = None,
        response_targets: dict[str, timedelta] | None = None,
        explain_top_k: int = 5,
        knowledge_base: KnowledgeBase | str | os.PathLike | None = None,
        drafter: Drafter | None = None,
        generator: str | Generator | None = None,
        feedback_store: FeedbackStore | str | os.PathLike | None = None,
    ) -> None:
        for name, value in (("max_chars", max_chars), ("explain_top_k", explain_top_k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.model = model
        self.max_chars = max_chars
        self.strip_boilerplate = bool(strip_boilerplate)
        if abstain is not None and not isinstance(abstain, (AbstainPolicy, dict)):
            raise TypeError(f"abstain must be an AbstainPolicy or a dict of its settings, got {abstain!r}")
        self._abstain = AbstainPolicy.from_dict(abstain) if isinstance(abstain, dict) and abstain else abstain or None
        self.response_targets = {**DEFAULT_RESPONSE_TARGETS, **_checked_targets(response_targets or {})}
        self.explain_top_k = explain_top_k
        self._groups: list[_HeadGroup] | None = None
        self._kb_source = knowledge_base
        self._kb: KnowledgeBase | None = knowledge_base if isinstance(knowledge_base, KnowledgeBase) else None
        self.drafter = drafter or Drafter()
        self.feedback_store: FeedbackStore | None = None
        if feedback_store is not None:
            from .feedback import FeedbackStore  # SQLAlchemy: imported only when feedback is kept

            self.feedback_store = feedback_store if isinstance(feedback_store, FeedbackStore) \
                else FeedbackStore(feedback_store)
        if generator is not None:
            self.drafter.generator = make_generator(generator) if isinstance(generator, str) else generator
        self._lock = threading.Lock()
        self.bundle: ServingModel | None = None

    # ------------------------------------------------------------------ loading
    def warm_up(self) -> "Triage":
        """Load the bundle(s) and the encoder; safe to call more than once."""
        if self._groups is not None:
            return self
        with self._lock:
            if self._groups is None:
                self._groups = self._load_groups()
        return self

    def _load_groups(self) -> list[_HeadGroup]:
        if isinstance(self.model, ServingModel):
            bundle = self.model
        elif isinstance(self.model, Bundle):
            bundle = self.model.serving()
        else:
            bundle = load_serving(self.model if self.model is not None else default_bundle_path())
        self.bundle = bundle
        groups = [_HeadGroup(bundle.featurizer, HeadSet(bundle.heads))]
        missing = [h for h in HEADS if h not in bundle.heads]
        if missing:
            default = load_serving(default_bundle_path())
            groups.append(_HeadGroup(default.featurizer, HeadSet({h: default.heads[h] for h in missing})))
        self.abstain = self._abstain or AbstainPolicy.from_dict(bundle.manifest.get("abstain"))
        self.abstain.check_labels(next(g.head_set.heads["intent"] for g in groups if "intent" in g.head_set.heads)
                                  .classes.tolist())
        self.categories = {**INTENT_CATEGORIES, **bundle.manifest.get("categories", {})}
        # The encoder's weight files are read and inflated outside the GIL, so they load while this
        # thread builds the jieba and OpenCC tables (about 0.3 s less on 2 cores).
        with ThreadPoolExecutor(1) as pool:
            loading = [pool.submit(get_encoder(g.featurizer.encoder).warm_up) for g in groups]
            load_text_resources()
            for future in loading:
                future.result()
        return groups

    @property
    def version(self) -> str:
        self.warm_up()
        assert self.bundle is not None
        return self.bundle.version

    @property
    def manifest(self) -> dict:
        self.warm_up()
        assert self.bundle is not None
        return self.bundle.manifest

    @property
    def knowledge_base(self) -> KnowledgeBase:
        """The knowledge base :meth:`assist` searches; loaded or built on first use."""
        if self._kb is None:
            with self._lock:
                if self._kb is None:
                    self._kb = open_knowledge_base(self._kb_source)
        return self._kb

    def use_knowledge_base(self, kb: KnowledgeBase) -> None:
        """Search `kb` from now on (say, the version an edit just saved); takes effect atomically."""
        if not isinstance(kb, KnowledgeBase):
            raise TypeError(f"expected a KnowledgeBase, got {type(kb).__name__}")
        self._kb = kb

    # ------------------------------------------------------------------ public API
    def triage(
        self, text: str | bytes, *, explain: bool = False, received_at: datetime | None = None
    ) -> TriageResult:
        """Triage one message.

        Raises
        ------
        TextInputError
            For None, empty or whitespace-only text, non-text values and undecodable bytes.
        """
        result = self.triage_batch([text], explain=explain, received_at=received_at, on_error="raise")[0]
        assert isinstance(result, TriageResult)
        return result

    def triage_batch(
        self,
        texts: Sequence[str | bytes | None],
        *,
        explain: bool = False,
        received_at: datetime | Sequence[datetime | None] | None = None,
        on_error: str = "return",
    ) -> list[TriageResult | TriageFailure]:
        """Triage many messages at once (vectorised); results equal one-by-one calls.

        Labels, levels, abstentions, reasons and entities are equal; probabilities agree to float32
        rounding (the encoder's matrix products group a batch's tokens differently from one
        message's, about 1e-7), so a figure rounded to 4 places can differ by 1e-4 in rare rows.

        Parameters
        ----------
        texts : sequence
            Messages as str (or UTF-8 bytes).
        received_at : datetime or sequence, optional
            Arrival time for all messages, or one per message; default now.
        on_error : {"return", "raise"}
            With "return", a bad message becomes a :class:`TriageFailure` at its position and
            the others are triaged; with "raise", the first bad message raises TextInputError.
        """
        if isinstance(texts, (str, bytes)):
            raise TypeError("triage_batch() takes a list of messages; use triage() for one")
        if isinstance(texts, (Mapping, AbstractSet)) or not isinstance(texts, Iterable):
            raise TypeError(f"triage_batch() takes a list of messages, got {type(texts).__name__}")
        if on_error not in ("return", "raise"):
            raise ValueError(f"on_error must be 'return' or 'raise', got {on_error!r}")
        self.warm_up()
        texts = list(texts)
        times = self._arrival_times(received_at, len(texts))
        out: list[TriageResult | TriageFailure | None] = [None] * len(texts)
        docs: list[PreparedText] = []
        positions: list[int] = []
        for i, text in enumerate(texts):
            try:
                docs.append(prepare(text, max_chars=self.max_chars, strip_boilerplate=self.strip_boilerplate))
                positions.append(i)
            except TextInputError as exc:
                if on_error == "raise":
                    raise
                out[i] = TriageFailure(index=i, error=str(exc))
        # In slices, so the feature matrices of a huge batch never sit in memory at once.
        for start in range(0, len(docs), _BATCH_SLICE):
            where = positions[start : start + _BATCH_SLICE]
            for i, result in zip(where, self._triage_docs(docs[start : start + _BATCH_SLICE],
                                                          [times[i] for i in where], explain)):
                out[i] = result
        return out  # type: ignore[return-value]

    def assist(self, text: str | bytes, *, k: int = 3, filters: dict | None = None,
               received_at: datetime | None = None, customer_name: str | None = None,
               draft: bool = True) -> AssistResult:
        """Triage one message, find its knowledge-base answers and draft a reply in both languages.

        The triage intent probabilities boost entries of likely intents; `filters` narrow the
        search (see :meth:`retrieval.KnowledgeBase.search`); `customer_name` (from the helpdesk)
        fills the greeting. Raises TextInputError like :meth:`triage`.
        """
        result = self.assist_batch([text], k=k, filters=filters, received_at=received_at,
                                   customer_names=[customer_name], draft=draft, on_error="raise")[0]
        assert isinstance(result, AssistResult)
        return result

    def assist_batch(self, texts: Sequence[str | bytes | None], *, k: int = 3, filters: dict | None = None,
                     received_at: datetime | Sequence[datetime | None] | None = None,
                     customer_names: Sequence[str | None] | None = None, draft: bool = True,
                     on_error: str = "return") -> list[AssistResult | TriageFailure]:
        """:meth:`assist` for many messages: triage is vectorised, a bad message becomes a
        :class:`TriageFailure` in place (or raises with ``on_error="raise"``)."""
        check_k(k)
        if isinstance(customer_names, (str, bytes)):
            raise TypeError("customer_names takes one name per message (a list), not a single string")
        results = self.triage_batch(texts, received_at=received_at, on_error=on_error)
        names = list(customer_names) if customer_names is not None else [None] * len(results)
        if len(names) != len(results):
            raise ValueError(f"customer_names has {len(names)} entries for {len(results)} messages")
        ok = [r for r in results if isinstance(r, TriageResult)]
        boosts = [{**dict(r.intent.alternatives), r.intent.label: r.intent.confidence} for r in ok]
        depth = max(k, self.drafter.pool) if draft else k
        searched = iter(self.knowledge_base.search_batch([r.normalized for r in ok], depth, filters=filters,
                                                         intent_scores=boosts))
        out: list[AssistResult | TriageFailure] = []
        for result, name in zip(results, names):
            if isinstance(result, TriageFailure):
                out.append(result)
                continue
            answers = next(searched)
            reply = self.drafter.compose(result, answers, customer_name=name) if draft else None
            if reply is not None and self.feedback_store is not None:
                self.feedback_store.record_draft(reply, result)
            out.append(AssistResult(result, replace(answers, hits=answers.hits[:k]), reply))
        return out

    def draft(self, text: str | bytes, **options) -> Draft:
        """Just the reply draft of :meth:`assist` (same options)."""
        draft = self.assist(text, **options).draft
        assert draft is not None
        return draft

    def feedback(self, draft_id: str, action: str, final_text: str | None = None, *,
                 corrected_intent: str | None = None, corrected_urgency: str | None = None,
                 agent_id: str | None = None) -> None:
        """Record what an agent did with a draft: ``"accepted"``, ``"edited"`` (with the text
        actually sent) or ``"rejected"``, optionally correcting the intent or urgency.

        Raises ``FeedbackError`` for an unknown draft id, action or label, and RuntimeError when
        this Triage has no feedback store.
        """
        if self.feedback_store is None:
            raise RuntimeError("no feedback store: create Triage(feedback_store='feedback.db') (or a SQLAlchemy URL)")
        self.warm_up()
        if self.feedback_store.labels is None:
            self.feedback_store.labels = {"intent": list(self.categories)}
        self.feedback_store.record_feedback(draft_id, action, final_text=final_text, corrected_intent=corrected_intent,
                                            corrected_urgency=corrected_urgency, agent_id=agent_id)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _arrival_times(received_at, n: int) -> list[datetime | None]:
        if received_at is None or isinstance(received_at, datetime):
            return [received_at] * n
        try:
            if isinstance(received_at, (str, bytes)):
                raise TypeError
            times = list(received_at)
        except TypeError:
            raise TypeError(f"received_at must be a datetime or a list of them (one per message), got "
                            f"{type(received_at).__name__} {received_at!r}; parse strings with datetime.fromisoformat"
                            ) from None
        if len(times) != n:
            raise ValueError(f"received_at has {len(times)} entries for {n} messages")
        for i, when in enumerate(times):
            if when is not None and not isinstance(when, datetime):
                raise TypeError(f"received_at[{i}] must be a datetime or None, got {type(when).__name__} {when!r}")
        return times

    def _triage_docs(
        self, docs: list[PreparedText], times: list[datetime | None], explain: bool
    ) -> list[TriageResult]:
        assert self._groups is not None
        proba: dict[str, np.ndarray] = {}
        classes: dict[str, np.ndarray] = {}
        explanations: dict[str, list[tuple[Contribution, ...]]] = {}
        entities = [extract_entities(doc.normalized) for doc in docs]
        for group in self._groups:
            rows = group.featurizer.featurize(docs, entities)
            proba.update(group.head_set.predict_proba(rows))
            for name, head in group.head_set.heads.items():
                classes[name] = head.classes
                if explain:
                    explanations[name] = self._explain(group, head, rows, proba[name].argmax(axis=1))
        # Plain Python from here on: per-row numpy indexing costs more than the rest of a result.
        labels = {name: [str(c) for c in cl] for name, cl in classes.items()}
        ranked = {name: np.argsort(-p, axis=1, kind="stable").tolist() for name, p in proba.items()}
        plain = {name: p.tolist() for name, p in proba.items()}
        results = []
        for i, doc in enumerate(docs):
            expl = {name: rows[i] for name, rows in explanations.items()}
            results.append(
                TriageResult(
                    text=doc.original,
                    language=doc.language,
                    intent=self._intent(labels["intent"], plain["intent"][i], ranked["intent"][i], expl.get("intent")),
                    urgency=self._urgency(
                        labels["urgency"], plain["urgency"][i], ranked["urgency"][i][0], doc, times[i],
                        expl.get("urgency"),
                    ),
                    sentiment=self._sentiment(
                        labels["sentiment"], plain["sentiment"][i], ranked["sentiment"][i][0], expl.get("sentiment")
                    ),
                    entities=entities[i],
                    normalized=doc.normalized,
                    truncated=doc.truncated,
                    boilerplate_chars=doc.boilerplate_chars,
                    model_version=self.bundle.version if self.bundle else "",
                )
            )
        return results

    def _intent(self, labels: list[str], p: list[float], order: list[int], explanation) -> IntentResult:
        """`order`: label indices, most probable first."""
        top, second = p[order[0]], (p[order[1]] if len(order) > 1 else 0.0)
        label = labels[order[0]]
        return IntentResult(
            label=label,
            category=self.categories.get(label),
            confidence=top,
            abstained=self.abstain.abstains(label, top, second),
            alternatives=tuple((labels[j], p[j]) for j in order[1:3]),
            explanation=explanation,
        )

    def _urgency(self, labels: list[str], p: list[float], best: int, doc: PreparedText, received_at, explanation):
        result = decide_urgency(
            labels[best],
            p[best],
            doc.simplified,
            received_at=received_at,
            response_targets=self.response_targets,
        )
        return result if explanation is None else replace(result, explanation=explanation)

    @staticmethod
    def _sentiment(labels: list[str], p: list[float], best: int, explanation) -> SentimentResult:
        prob = dict(zip(labels, p))
        score = prob.get("positive", 0.0) - prob.get("negative", 0.0)
        return SentimentResult(label=labels[best], score=score, confidence=p[best], explanation=explanation)

    def _explain(self, group: _HeadGroup, head: ServingHead, features: FeatureRows, winners) -> list:
        """Top features pushing each row towards its predicted label (weight x value)."""
        names = group.featurizer.feature_names()
        weights = head.class_weights()
        rows = []
        for i, k in enumerate(winners):
            contrib: dict[str, float] = {}
            for col, val in zip(*features.row(i)):
                name = names[col]
                key = EMBEDDING_FEATURE if name.startswith("emb:") else name
                contrib[key] = contrib.get(key, 0.0) + float(val * weights[k, col])
            best = sorted(contrib.items(), key=lambda kv: -kv[1])[: self.explain_top_k]
            rows.append(tuple(Contribution(n, w) for n, w in best if w > 0))
        return rows


def default_kb_path() -> Path:
    """The shipped knowledge-base files: inside the installed package, or ``data/kb/`` in a checkout."""
    return require_shipped("_data/kb", "data/kb", "the default knowledge base")


@functools.lru_cache(maxsize=1)
def _default_knowledge_base() -> KnowledgeBase:
    return KnowledgeBase.from_file(default_kb_path(), taxonomy=INTENT_CATEGORIES)


def open_knowledge_base(source: str | os.PathLike | None = None) -> KnowledgeBase:
    """A knowledge base from a saved directory, an FAQ file or directory of FAQ files, or
    (None) the shipped default, which is built once per process and shared."""
    if source is None:
        return _default_knowledge_base()
    path = Path(source)
    if (path / store.CURRENT).is_file():
        return KnowledgeBase.load(path)
    return KnowledgeBase.from_file(path, taxonomy=INTENT_CATEGORIES)


def load(model: str | os.PathLike | None = None, **options) -> Triage:
    """Load a bundle (default: the shipped one) and return a warmed-up :class:`Triage`.

    Keyword options are passed to :class:`Triage` (``max_chars``, ``abstain``,
    ``response_targets``, ``explain_top_k``).
    """
    return Triage(model, **options).warm_up()
