"""Bilingual (Chinese/English) customer-message triage: intent, urgency and sentiment.

>>> import triage
>>> t = triage.load()
>>> r = t.triage("我的快递三天了还没到")
>>> r.intent.label, r.urgency.level, r.sentiment.label
"""

from retrieval.text import TextInputError

from .bundle import Bundle, BundleError, load_bundle, load_serving, save_bundle
from .entities import Entity, extract_entities, mask_pii
from .pipeline import AbstainPolicy, Triage, default_bundle_path, default_kb_path, load, open_knowledge_base
from .results import (
    AssistResult,
    Contribution,
    IntentResult,
    SentimentResult,
    TriageFailure,
    TriageResult,
    UrgencyReason,
    UrgencyResult,
)
from .taxonomy import INTENT_CATEGORIES, INTENTS, SENTIMENTS, URGENCY_LEVELS

__version__ = "0.1.0"

__all__ = [
    "AbstainPolicy", "AssistResult", "default_kb_path", "open_knowledge_base", "Bundle", "BundleError", "Contribution", "Entity", "INTENTS", "INTENT_CATEGORIES",
    "IntentResult", "SENTIMENTS", "SentimentResult", "TextInputError", "Triage", "TriageFailure",
    "TriageResult", "URGENCY_LEVELS", "UrgencyReason", "UrgencyResult", "default_bundle_path",
    "extract_entities", "load", "load_bundle", "load_serving", "mask_pii", "save_bundle", "train_bundle",
]


def __getattr__(name: str):
    # Training needs scikit-learn, which serving never imports: loaded when first asked for.
    if name == "train_bundle":
        from .training import train_bundle

        return train_bundle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
