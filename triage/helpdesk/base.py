"""What every helpdesk adapter does, and the registry that picks one by name.

An adapter turns a helpdesk's webhook into an :class:`InboundTicket`, and a triage result into
the REST calls that write tags, priority, an intent field and an internal note back
(:class:`OutboundCall`). It never sends anything itself: calls go through the persistent
:class:`~triage.helpdesk.outbox.Outbox`, so a helpdesk that is down delays them, never loses them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from retrieval.text import TextInputError

from ..batch import ticket_text
from ..results import AssistResult

_ADAPTERS: dict[str, type[HelpdeskAdapter]] = {}


class WebhookAuthError(Exception):
    """The webhook's signature or token is missing, stale or wrong."""


class WebhookPayloadError(ValueError):
    """The webhook body is not what this helpdesk sends; the message names the missing field."""


class AdapterConfigError(ValueError):
    """An adapter setting is missing or malformed."""


@dataclass(frozen=True)
class InboundTicket:
    """A new customer message from a helpdesk.

    `event_id` identifies the delivery (a helpdesk that retries a webhook sends the same one),
    so a repeated webhook is recognised and not written back twice.
    """

    ticket_id: str
    text: str
    event_id: str
    customer_name: str | None = None
    received_at: datetime | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundCall:
    """One REST call to the helpdesk. `path` is relative to the adapter's `base_url` (or an
    absolute URL); `body` is sent as JSON."""

    method: str
    path: str
    body: dict[str, Any]

    def to_dict(self) -> dict:
        return {"method": self.method, "path": self.path, "body": self.body}


def register_adapter(name: str) -> Callable[[type], type]:
    """Class decorator: make an adapter available to the service config under `name`."""
    def decorator(cls: type) -> type:
        cls.name = name
        _ADAPTERS[name] = cls
        return cls
    return decorator


def available_adapters() -> list[str]:
    return sorted(_ADAPTERS)


def make_adapter(name: str, settings: Mapping[str, Any]) -> HelpdeskAdapter:
    """An adapter by registered name, configured with `settings` (see each adapter's docstring)."""
    if name not in _ADAPTERS:
        raise AdapterConfigError(f"unknown helpdesk adapter {name!r}; registered: {available_adapters()}")
    return _ADAPTERS[name](settings)


class HelpdeskAdapter:
    """Base class. Settings every adapter takes:

    base_url
        The helpdesk's address, e.g. ``https://acme.zendesk.com``.
    webhook_secret / webhook_secret_env
        The secret that signs (or, where the helpdesk cannot sign, accompanies) its webhooks.
        Without one the adapter refuses to start unless ``allow_unsigned: true``.
    signature_tolerance
        Seconds a signed timestamp may be old (default 300), against replays.
    """

    name: ClassVar[str] = ""
    #: Settings this adapter requires besides base_url.
    required: ClassVar[tuple[str, ...]] = ()
    #: Settings it accepts besides the common ones.
    optional: ClassVar[tuple[str, ...]] = ()
    _common = ("base_url", "webhook_secret", "webhook_secret_env", "allow_unsigned", "signature_tolerance",
               "timeout")

    def __init__(self, settings: Mapping[str, Any]) -> None:
        settings = dict(settings)
        known = set(self._common) | set(self.required) | set(self.optional)
        for key in list(settings):
            if key.endswith("_env") and key[:-4] in known:
                variable = str(settings.pop(key))
                value = os.environ.get(variable)
                if value is None:
                    raise AdapterConfigError(f"adapter {self.name!r}: environment variable {variable!r} "
                                             f"(for {key[:-4]!r}) is not set")
                settings.setdefault(key[:-4], value)
        unknown = set(settings) - known
        if unknown:
            raise AdapterConfigError(f"adapter {self.name!r}: unknown settings {sorted(unknown)}; "
                                     f"known: {sorted(known)}")
        missing = [k for k in ("base_url", *self.required) if not settings.get(k)]
        if missing:
            raise AdapterConfigError(f"adapter {self.name!r}: missing settings {missing}")
        self.settings = settings
        self.base_url = str(settings["base_url"]).rstrip("/")
        self.secret: str | None = settings.get("webhook_secret") or None
        if self.secret is None and not settings.get("allow_unsigned"):
            raise AdapterConfigError(f"adapter {self.name!r}: set webhook_secret (or webhook_secret_env) so "
                                     "webhooks can be verified, or allow_unsigned: true to accept anyone's")
        self.tolerance = float(settings.get("signature_tolerance", 300))
        self.timeout = float(settings.get("timeout", 10))

    # -- to implement ---------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise WebhookAuthError unless the request really comes from the helpdesk."""
        raise NotImplementedError

    def parse(self, payload: dict) -> InboundTicket | None:
        """The new customer message, or None for an event to ignore (an agent's reply, a note)."""
        raise NotImplementedError

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _check_timestamp(self, timestamp: str | None) -> None:
        try:
            age = time.time() - float(timestamp or "")
        except ValueError:
            raise WebhookAuthError("the webhook timestamp header is missing or not a number") from None
        if abs(age) > self.tolerance:
            raise WebhookAuthError(f"the webhook timestamp is {age:.0f} s off (tolerance {self.tolerance:.0f} s); "
                                   "a replay, or the clocks disagree")

    def _unsigned_ok(self) -> bool:
        return self.secret is None  # allow_unsigned was set, or __init__ would have refused


def hmac_hex(secret: str, message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode("utf-8"), message, algorithm).hexdigest()


def hmac_base64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def require_equal(expected: str, presented: str | None, what: str) -> None:
    if not presented:
        raise WebhookAuthError(f"the {what} header is missing")
    if not hmac.compare_digest(expected.encode(), presented.strip().encode()):
        raise WebhookAuthError(f"the {what} does not match (wrong secret, or the body was changed)")


def dig(payload: Any, path: str, *, required: bool = True) -> Any:
    """``dig(p, "ticket.requester.name")``; WebhookPayloadError naming the path when missing.

    JSON ``null`` counts as missing. A step into something that is not an object (or a list, for a
    numeric step) is refused whether or not the field is required: ``{"ticket": "x"}`` is not a
    ticket without an id but a payload of the wrong shape.
    """
    value = payload
    walked: list[str] = []
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            raise WebhookPayloadError(f"{'.'.join(walked)!r} must be an object (to read {path!r}), "
                                      f"got {kind(value)}")
        walked.append(part)
        if value is None:
            if required:
                raise WebhookPayloadError(f"the webhook payload has no {path!r}")
            return None
    return value


# ------------------------------------------------------------------ field types
# Every value an adapter reads from a webhook goes through one of these, so a payload of the wrong
# shape is a 422 naming the field (``'ticket.requester.name' must be a string, got a number``),
# never a 500 from deep inside triage, and never a ``str()`` of a dict written into a note or a URL.

def kind(value: Any) -> str:
    """How a JSON value is called in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_object(value: Any, path: str, *, required: bool = False) -> dict:
    """An object (``{}`` when absent or null and not required)."""
    if value is None:
        if required:
            raise WebhookPayloadError(f"the webhook payload has no {path!r}")
        return {}
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{path!r} must be an object, got {kind(value)}")
    return value


def as_text(value: Any, path: str, *, required: bool = False) -> str | None:
    """A string (None when absent or null and not required); a number, list or object is refused."""
    if value is None:
        if required:
            raise WebhookPayloadError(f"the webhook payload has no {path!r}")
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{path!r} must be a string, got {kind(value)}")
    return value


def as_name(value: Any, path: str) -> str | None:
    """A customer's name: a string, blank meaning none. Anything else (a number, an object) is
    refused with the field named rather than dropped, so a webhook template that puts the wrong
    placeholder there is noticed on its first delivery instead of silently losing every name."""
    name = as_text(value, path)
    if name is None:
        return None
    return name.strip() or None


def as_flag(value: Any, path: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise WebhookPayloadError(f"{path!r} must be true or false, got {kind(value)}")
    return value


#: What a ticket, conversation or account id may be: it becomes a segment of a write-back URL.
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def as_id(value: Any, path: str) -> str:
    """A required id that goes into write-back URLs: a string or an integer of letters, digits and
    ``_ . : -`` (at most 128), not starting with a dot and without ``..``, so an id such as
    ``../../admin`` cannot point a write-back at another endpoint of the helpdesk."""
    if value is None:
        raise WebhookPayloadError(f"the webhook payload has no {path!r}")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        got = f"the number {value!r}" if isinstance(value, float) else kind(value)
        raise WebhookPayloadError(f"{path!r} must be a string or an integer id, got {got}")
    text = str(value)
    if not ID_RE.fullmatch(text) or text.startswith(".") or ".." in text:
        raise WebhookPayloadError(f"{path!r} must be an id of letters, digits and _ . : - (at most 128, no '..'), "
                                  f"got {text[:60]!r}")
    return text


def as_event_id(value: Any, path: str) -> str | None:
    """A delivery id (only stored, never in a URL): a non-empty string or an integer, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WebhookPayloadError(f"{path!r} must be a string or an integer, got {kind(value)}")
    text = str(value)
    if len(text) > 256:
        raise WebhookPayloadError(f"{path!r} is longer than 256 characters")
    return text


def url_id(value: str, what: str = "ticket id") -> str:
    """An id as a write-back URL path segment: checked as :func:`as_id` does, then percent-encoded.
    Every adapter builds its paths with this, so an :class:`InboundTicket` made by other code
    cannot smuggle ``/`` or ``..`` into a URL either."""
    return urllib.parse.quote(as_id(value, what), safe="")


_TAG_RE = re.compile(r"<br\s*/?>|</p>|</div>", re.I)
_ANY_TAG_RE = re.compile(r"<[^>]+>")


def html_to_text(value: str) -> str:
    """Helpdesks send message bodies as HTML; triage wants the words."""
    text = _ANY_TAG_RE.sub("", _TAG_RE.sub("\n", value))
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def text_to_html(value: str) -> str:
    return "<br>".join(html.escape(line) for line in value.split("\n"))


def join_subject(subject: Any, body: Any) -> str:
    """A ticket's message by the rule batch scoring and the demo use (:func:`triage.batch.ticket_text`:
    reply prefixes dropped, a subject alone counts, a body that starts with the subject not repeated)."""
    try:
        text = ticket_text(subject, body)
    except TextInputError as exc:
        raise WebhookPayloadError(f"the webhook payload's {exc}; send the subject and body as strings") from None
    if not text:
        raise WebhookPayloadError("the webhook payload has no message text (subject and body are empty)")
    return text


def event_key(*parts: Any) -> str:
    """A stable id for a delivery that carries none of its own."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:32]


# ------------------------------------------------------------------ what gets written back
def triage_tags(result: AssistResult, prefix: str = "kefu") -> list[str]:
    """Tags agents filter by: intent, urgency, and flags that need a person's eye."""
    t = result.triage
    tags = [prefix, f"{prefix}_{t.intent.label}", f"{prefix}_urgency_{t.urgency.level}"]
    if t.sentiment.label == "negative":
        tags.append(f"{prefix}_negative")
    if t.intent.abstained or (result.draft is not None and result.draft.needs_human):
        tags.append(f"{prefix}_needs_review")
    if result.knowledge_gap:
        tags.append(f"{prefix}_kb_gap")
    return tags


def internal_note(result: AssistResult) -> str:
    """The internal note: the triage verdict in one glance, then the drafts to accept or edit."""
    t = result.triage
    lines = [
        f"[Kefu triage] intent: {t.intent.label} ({t.intent.category}, {t.intent.confidence:.0%}"
        f"{', needs review' if t.intent.abstained else ''})",
        f"urgency: {t.urgency.level}, first reply due {t.urgency.due:%Y-%m-%d %H:%M %Z}",
        f"sentiment: {t.sentiment.label} ({t.sentiment.score:+.2f})",
    ]
    signals = [f"{r.signal} ({r.evidence})" for r in t.urgency.reasons if r.signal != "model"]
    if signals:
        lines.append("urgent because: " + "; ".join(signals))
    if result.knowledge_gap:
        lines.append("knowledge base: no good answer (knowledge gap)")
    elif result.answers.hits:
        lines.append("knowledge base: " + ", ".join(h.id for h in result.answers.hits[:3]))
    draft = result.draft
    if draft is not None:
        if draft.needs_human:
            lines.append("needs a person: " + "; ".join(draft.reasons))
        if draft.missing_slots:
            lines.append("fill in before sending: " + ", ".join(draft.missing_slots))
        other = "en" if draft.primary_language != "en" else "zh"
        lines += ["", f"--- draft ({draft.primary_language}) ---", draft.primary,
                  "", f"--- draft ({other}) ---", getattr(draft, other)]
        lines += ["", f"draft id: {draft.id}"]
    return "\n".join(lines)
