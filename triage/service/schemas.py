"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from ..taxonomy import INTENTS, SENTIMENTS, URGENCY_LEVELS

_ZH_EXAMPLE = "我的快递三天了还没到，订单号 2024112312345，麻烦查一下"
_EN_EXAMPLE = "Hi, my order #A1234567 says delivered but I never got it. Can you check?"


#: Arrival times outside these years are refused: deadlines are computed by adding the level's
#: target, which must stay inside Python's datetime range, and earlier or later times are typos.
MIN_YEAR, MAX_YEAR = 1970, 2200
_TIME_HINT = "expected an RFC 3339 date-time with its UTC offset, such as 2026-11-24T09:30:00+08:00"


def parse_time(value: Any) -> datetime:
    """An RFC 3339 date-time with an offset (no Unix numbers, no dates without a time, no times
    without an offset), in the years MIN_YEAR..MAX_YEAR; ValueError saying what is wrong."""
    if isinstance(value, datetime):
        parsed = value
    else:
        if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt":
            raise ValueError(_TIME_HINT)
        try:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
        except ValueError:
            raise ValueError(_TIME_HINT) from None
    if parsed.tzinfo is None:
        raise ValueError(_TIME_HINT)
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"the year {parsed.year} is out of range: give a time in the years {MIN_YEAR} to "
                         f"{MAX_YEAR}, such as 2026-11-24T09:30:00+08:00")
    return parsed


IsoDateTime = Annotated[datetime, BeforeValidator(parse_time)]
FilterKey = Literal["intent", "category", "tags", "lang", "id"]
Filters = dict[FilterKey, str | list[str]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- requests
class TriageRequest(_Strict):
    text: str = Field(min_length=1, description="The customer's message (Chinese, English or mixed); it must "
                      "contain something visible, or the answer is 422.",
                      examples=[_ZH_EXAMPLE, _EN_EXAMPLE])
    received_at: IsoDateTime | None = Field(None, description="Arrival time (RFC 3339 with its offset, years "
                                            f"{MIN_YEAR} to {MAX_YEAR}); default now. Sets `urgency.due`.")
    explain: StrictBool = Field(False, description="List the features behind each label.")


class BatchItem(_Strict):
    id: str | None = Field(None, max_length=200, description="Your id for the message, echoed back.")
    # Any JSON value, so a null or a number fails alone like an empty string; the schema says
    # so rather than promising a string that is not enforced.
    text: Any = Field(description="The message, a string. Any other value (null, a number, ...), an empty string "
                      "or one with nothing visible fails alone (`error` says why); the rest are triaged.",
                      examples=[_EN_EXAMPLE])
    # Any JSON value, like `text`: a bad time fails this message alone.
    received_at: Any = Field(None, description="Arrival time (RFC 3339 with its offset, years "
                             f"{MIN_YEAR} to {MAX_YEAR}); default now. A bad value fails this message alone "
                             "(`error` says why).", examples=["2026-11-24T09:30:00+08:00"])


class BatchRequest(_Strict):
    messages: list[BatchItem] = Field(min_length=1, description="Messages; at most the service's `max_batch`.",
                                      examples=[[{"id": "t-1", "text": _ZH_EXAMPLE}, {"id": "t-2", "text": _EN_EXAMPLE}]])
    explain: StrictBool = False


class AssistRequest(_Strict):
    text: str = Field(min_length=1, examples=[_ZH_EXAMPLE])
    k: StrictInt = Field(3, ge=1, le=20, description="How many knowledge-base answers to return.")
    filters: Filters | None = Field(
        None, description="Narrow the search: intent, category, tags, lang or id (a value or a list).",
        examples=[{"category": "shipping"}])
    customer_name: str | None = Field(None, max_length=200, description="Used in the greeting.")
    draft: StrictBool = Field(True, description="Compose reply drafts (false: triage and answers only).")
    received_at: IsoDateTime | None = None


class SearchRequest(_Strict):
    query: str = Field(min_length=1, examples=["退款多久到账", "how long does a refund take"])
    k: StrictInt = Field(5, ge=1, le=50)
    filters: Filters | None = None


class FeedbackRequest(_Strict):
    draft_id: str = Field(min_length=1, max_length=64, description="`draft.id` from /v1/assist.")
    action: Literal["accepted", "edited", "rejected"]
    final_text: str | None = Field(None, description="The reply actually sent (required for `edited`).")
    corrected_intent: Literal[tuple(INTENTS)] | None = None  # type: ignore[valid-type]
    corrected_urgency: Literal[tuple(URGENCY_LEVELS)] | None = None  # type: ignore[valid-type]
    agent_id: str | None = Field(None, max_length=200)


class KBEntriesRequest(_Strict):
    entries: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000,
        description="Knowledge-base entries (the FAQ schema of docs/knowledge-base.md); an existing id is "
                    "replaced, a new one added. The whole request is validated before anything changes.",
        examples=[[{"id": "gift-wrap", "intent": "product_inquiry", "question_zh": ["可以包装成礼物吗"],
                    "answer_zh": "可以，下单时勾选礼品包装即可，免费。", "question_en": ["Do you offer gift wrapping?"],
                    "answer_en": "Yes, tick gift wrapping at checkout; it's free."}]])


# ---------------------------------------------------------------- responses
class Alternative(BaseModel):
    label: str
    confidence: float


class Contribution(BaseModel):
    feature: str
    weight: float


class Intent(BaseModel):
    label: Literal[tuple(INTENTS)] | str  # type: ignore[valid-type]  # custom bundles may add labels
    category: str | None
    confidence: float = Field(ge=0, le=1)
    abstained: bool = Field(description="True: unsure; `label` is the best guess and needs review.")
    alternatives: list[Alternative]
    explanation: list[Contribution] | None = None


class UrgencyReason(BaseModel):
    signal: str = Field(description="A named signal (e.g. `legal_threat`) or `model`.")
    level: str
    evidence: str


class Urgency(BaseModel):
    level: Literal[tuple(URGENCY_LEVELS)]  # type: ignore[valid-type]
    model_level: str
    confidence: float
    reasons: list[UrgencyReason]
    due: datetime = Field(description="First-response deadline (arrival plus the level's target).")
    explanation: list[Contribution] | None = None


class Sentiment(BaseModel):
    label: Literal[tuple(SENTIMENTS)]  # type: ignore[valid-type]
    score: float = Field(ge=-1, le=1, description="P(positive) - P(negative); below 0 leans negative.")
    confidence: float
    explanation: list[Contribution] | None = None


class Entity(BaseModel):
    type: str
    text: str
    start: int
    end: int
    value: dict[str, Any]


class TriageResponse(BaseModel):
    text: str
    normalized: str = Field(description="What the models read: normalised, capped, greetings, thanks and quoted "
                                        "email history cut. "
                                        "Entity offsets point into it.")
    language: Literal["zh-Hans", "zh-Hant", "en", "mixed", "unknown"]
    intent: Intent
    urgency: Urgency
    sentiment: Sentiment
    entities: list[Entity]
    truncated: bool
    boilerplate_chars: int = Field(description="Characters of greetings, thanks, quoted email history, signature and "
                                                   "mail-app footer left out of triage.")
    model_version: str


class BatchResult(BaseModel):
    id: str | None
    index: int
    result: TriageResponse | None = Field(description="Null when this message failed.")
    error: str | None = Field(description="Why this message failed; null on success.")


class BatchResponse(BaseModel):
    results: list[BatchResult]
    failed: int


class Hit(BaseModel):
    id: str
    score: float
    dense_score: float
    lexical_score: float
    matched_language: str
    matched_text: str
    entry: dict[str, Any]


class SearchResponse(BaseModel):
    query: str
    confidence: float = Field(description="Calibrated probability that the top hit answers the query.")
    knowledge_gap: bool = Field(description="True: no entry answers it well; a person should reply.")
    hits: list[Hit]


class Draft(BaseModel):
    id: str = Field(description="Pass to /v1/feedback.")
    primary_language: str
    primary: str
    zh: str
    en: str
    kb_ids: list[str]
    needs_human: bool
    missing_slots: list[str]
    tone: str
    reasons: list[str]
    generator: str
    generator_notes: list[str]


class AssistResponse(TriageResponse):
    answers: list[Hit]
    answer_confidence: float
    knowledge_gap: bool
    draft: Draft | None


class FeedbackResponse(BaseModel):
    status: Literal["recorded"]
    draft_id: str


class KBChangeResponse(BaseModel):
    added: list[str]
    updated: list[str]
    removed: list[str]
    entries: int = Field(description="Entries in the knowledge base now.")
    version: str | None = Field(description="The saved version directory, when the knowledge base is on disk.")


class Health(BaseModel):
    status: Literal["ok", "starting"]


class Info(BaseModel):
    service_version: str
    model_version: str
    model: dict[str, Any] = Field(description="The bundle manifest: labels, features, training data hash, metrics.")
    knowledge_base: dict[str, Any] = Field(description="Entries, encoder, index and the saved version, if any.")
    adapters: list[str]
    max_batch: int
    max_body_bytes: int


class WebhookResponse(BaseModel):
    status: Literal["queued", "ignored", "duplicate"]
    ticket_id: str | None = None
    intent: str | None = None
    urgency: str | None = None
    writes: int = Field(0, description="Write-back calls queued for the helpdesk.")
    reason: str | None = None


class ErrorDetail(BaseModel):
    field: str | None = Field(description="Where the problem is, e.g. `body.messages.3.text`.")
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable code: unauthorized, forbidden, rate_limited, payload_too_large, "
                                   "invalid_request, not_found, conflict, internal_error, ...")
    message: str
    details: list[ErrorDetail] = []
    request_id: str | None = None
