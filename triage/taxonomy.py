"""The default label set: intents with their categories, urgency levels, sentiment labels.

Ids are a public contract (see docs/labels.md); a trained bundle may carry its own labels, and
its manifest records them.
"""

from __future__ import annotations

from datetime import timedelta

INTENT_CATEGORIES: dict[str, str] = {
    "product_inquiry": "product",
    "place_order": "order",
    "order_status": "order",
    "order_change": "order",
    "order_cancel": "order",
    "delivery_options": "shipping",
    "delivery_problem": "shipping",
    "return_exchange": "after_sales",
    "refund": "after_sales",
    "quality_issue": "after_sales",
    "warranty_repair": "after_sales",
    "payment": "payment",
    "invoice": "payment",
    "price_promotion": "payment",
    "account_access": "account",
    "account_settings": "account",
    "complaint": "service",
    "human_agent": "service",
    "feedback": "service",
    "other": "other",
}
INTENTS: tuple[str, ...] = tuple(INTENT_CATEGORIES)

#: Most to least urgent.
URGENCY_LEVELS: tuple[str, ...] = ("critical", "high", "normal", "low")

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

#: Default first-response targets per urgency level.
DEFAULT_RESPONSE_TARGETS: dict[str, timedelta] = {
    "critical": timedelta(hours=1),
    "high": timedelta(hours=4),
    "normal": timedelta(hours=24),
    "low": timedelta(hours=72),
}

HEADS: tuple[str, ...] = ("intent", "urgency", "sentiment")


def urgency_rank(level: str) -> int:
    """0 for critical up to 3 for low; raises for an unknown level."""
    try:
        return URGENCY_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown urgency level {level!r}; expected one of {URGENCY_LEVELS}") from None

