"""A team's own backend: fields picked from its webhook by dotted paths, the result posted to
one URL."""

from __future__ import annotations

from collections.abc import Mapping

from ..results import AssistResult
from .base import (AdapterConfigError, HelpdeskAdapter, InboundTicket, OutboundCall, as_event_id, as_id, as_name,
                   as_text, dig, event_key, hmac_hex, internal_note, join_subject, register_adapter, require_equal,
                   triage_tags, url_id)


@register_adapter("generic")
class GenericAdapter(HelpdeskAdapter):
    """Settings:

    fields
        Dotted paths into the webhook JSON: ``ticket_id`` and ``text`` (required),
        ``subject``, ``customer_name``, ``event_id`` (optional), e.g.
        ``{"ticket_id": "data.ticket.id", "text": "data.message.body"}``. The id must be a string
        or an integer, the texts and the name strings; any other type is a 422 naming the path.
    writeback_path
        Where the result goes, relative to ``base_url``; ``{ticket_id}`` is filled in
        (percent-encoded; webhook ids other than letters, digits and ``_ . : -`` are refused).
    writeback_method
        ``POST`` (default), ``PUT`` or ``PATCH``.
    headers
        Extra headers for the write-back, e.g. an ``Authorization`` for your backend.

    Signature: ``X-Kefu-Signature: sha256=<HMAC-SHA256 of the body>`` with ``webhook_secret``.
    The write-back body has ``ticket_id``, ``tags``, ``priority`` (the urgency level),
    ``intent``, ``category``, ``needs_review``, ``note``, ``draft`` and the full ``triage`` result.
    """

    required = ("fields", "writeback_path")
    optional = ("writeback_method", "headers")

    def __init__(self, settings: Mapping) -> None:
        super().__init__(settings)
        fields = self.settings["fields"]
        if not isinstance(fields, dict) or not {"ticket_id", "text"} <= set(fields):
            raise AdapterConfigError("adapter 'generic': fields needs at least 'ticket_id' and 'text' paths")
        unknown = set(fields) - {"ticket_id", "text", "subject", "customer_name", "event_id"}
        if unknown:
            raise AdapterConfigError(f"adapter 'generic': unknown fields {sorted(unknown)}")
        bad = sorted(name for name, path in fields.items() if not isinstance(path, str) or not path.strip())
        if bad:
            raise AdapterConfigError(f"adapter 'generic': fields {bad} must be dotted paths (strings)")
        self.method = str(self.settings.get("writeback_method", "POST")).upper()
        if self.method not in ("POST", "PUT", "PATCH"):
            raise AdapterConfigError(f"adapter 'generic': writeback_method must be POST, PUT or PATCH, got {self.method}")
        path = self.settings["writeback_path"]
        try:
            if not isinstance(path, str):
                raise TypeError
            path.format(ticket_id="1")
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            raise AdapterConfigError("adapter 'generic': writeback_path must be a string whose only placeholder is "
                                     f"{{ticket_id}}, got {path!r}") from None

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if not self._unsigned_ok():
            require_equal("sha256=" + hmac_hex(self.secret, body), headers.get("x-kefu-signature"), "X-Kefu-Signature")

    def parse(self, payload: dict) -> InboundTicket | None:
        fields = self.settings["fields"]

        def get(name: str, check, required: bool = False):
            if name not in fields:
                return None
            return check(dig(payload, fields[name], required=required), fields[name])

        ticket_id = get("ticket_id", as_id, True)
        text = join_subject(get("subject", as_text), get("text", as_text, True))
        event_id = get("event_id", as_event_id) or event_key("generic", ticket_id, text)
        return InboundTicket(ticket_id, text, event_id, customer_name=get("customer_name", as_name))

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        path = self.settings["writeback_path"].format(ticket_id=url_id(ticket.ticket_id))
        t = result.triage
        body = {
            "ticket_id": ticket.ticket_id, "tags": triage_tags(result), "priority": t.urgency.level,
            "intent": t.intent.label, "category": t.intent.category,
            "needs_review": t.intent.abstained or bool(result.draft and result.draft.needs_human),
            "note": internal_note(result), "draft": result.draft.to_dict() if result.draft else None,
            "triage": result.to_dict(),
        }
        return [OutboundCall(self.method, path, body)]

    def auth_headers(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.settings.get("headers") or {}).items()}
