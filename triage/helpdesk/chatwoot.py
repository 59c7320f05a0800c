"""Chatwoot: a ``message_created`` webhook in; labels, priority, an intent attribute and a
private note on the conversation out."""

from __future__ import annotations

from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, dig, event_key, hmac_hex, internal_note,
                   register_adapter, require_equal, triage_tags)

PRIORITY = {"critical": "urgent", "high": "high", "normal": "medium", "low": "low"}


@register_adapter("chatwoot")
class ChatwootAdapter(HelpdeskAdapter):
    """Settings: ``base_url``, ``api_access_token`` (or ``api_access_token_env``, an agent or bot
    token), ``webhook_secret`` (the webhook's secret), optional ``intent_attribute`` (a
    conversation custom attribute key, default ``kefu_intent``).

    Signature: ``X-Chatwoot-Signature: sha256=<HMAC-SHA256 of "<X-Chatwoot-Timestamp>.<body>">``.
    Only incoming, public messages are triaged (agents' replies and notes are ignored, so the
    note we write does not trigger us again).
    """

    required = ("api_access_token",)
    optional = ("intent_attribute",)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if self._unsigned_ok():
            return
        timestamp = headers.get("x-chatwoot-timestamp")
        self._check_timestamp(timestamp)
        expected = "sha256=" + hmac_hex(self.secret, f"{timestamp}.".encode("utf-8") + body)
        require_equal(expected, headers.get("x-chatwoot-signature"), "X-Chatwoot-Signature")

    def parse(self, payload: dict) -> InboundTicket | None:
        if payload.get("event") != "message_created":
            return None
        if payload.get("message_type") not in ("incoming", 0) or payload.get("private"):
            return None
        conversation = dig(payload, "conversation")
        text = str(payload.get("content") or "").strip()
        if not text:
            return None  # an attachment-only message: nothing to triage
        conversation_id = str(dig(conversation, "id"))
        return InboundTicket(
            conversation_id, text, str(payload.get("id") or event_key("chatwoot", conversation_id, text)),
            customer_name=dig(payload, "sender.name", required=False),
            context={"account_id": str(dig(payload, "account.id")), "labels": list(conversation.get("labels") or [])},
        )

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        base = f"/api/v1/accounts/{ticket.context['account_id']}/conversations/{ticket.ticket_id}"
        labels = list(ticket.context.get("labels", []))
        labels += [t for t in triage_tags(result) if t not in labels]
        attribute = self.settings.get("intent_attribute") or "kefu_intent"
        return [
            OutboundCall("POST", f"{base}/labels", {"labels": labels}),
            OutboundCall("POST", f"{base}/toggle_priority", {"priority": PRIORITY[result.triage.urgency.level]}),
            OutboundCall("POST", f"{base}/custom_attributes",
                         {"custom_attributes": {attribute: result.triage.intent.label}}),
            OutboundCall("POST", f"{base}/messages",
                         {"content": internal_note(result), "message_type": "outgoing", "private": True}),
        ]

    def auth_headers(self) -> dict[str, str]:
        return {"api_access_token": str(self.settings["api_access_token"])}
