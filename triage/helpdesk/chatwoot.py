"""Chatwoot: a ``message_created`` webhook in; labels, priority, an intent attribute and a
private note on the conversation out."""

from __future__ import annotations

from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, WebhookPayloadError, as_event_id, as_flag, as_id,
                   as_name, as_object, as_text, event_key, hmac_hex, internal_note, kind, register_adapter,
                   require_equal, triage_tags, url_id)

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
        if payload.get("message_type") not in ("incoming", 0) or as_flag(payload.get("private"), "private"):
            return None
        conversation = as_object(payload.get("conversation"), "conversation", required=True)
        conversation_id = as_id(conversation.get("id"), "conversation.id")
        account_id = as_id(as_object(payload.get("account"), "account", required=True).get("id"), "account.id")
        labels = _labels(conversation.get("labels"))
        sender = as_object(payload.get("sender"), "sender")
        customer_name = as_name(sender.get("name"), "sender.name")
        text = (as_text(payload.get("content"), "content") or "").strip()
        if not text:
            return None  # an attachment-only message: nothing to triage
        event_id = as_event_id(payload.get("id"), "id") or event_key("chatwoot", conversation_id, text)
        return InboundTicket(conversation_id, text, event_id, customer_name=customer_name,
                             context={"account_id": account_id, "labels": labels})

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        account, conversation = url_id(ticket.context["account_id"], "account id"), url_id(ticket.ticket_id)
        base = f"/api/v1/accounts/{account}/conversations/{conversation}"
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


def _labels(value) -> list[str]:
    """The conversation's labels, which the write-back keeps (Chatwoot replaces the whole list).

    Chatwoot sends a list of strings. Anything else is refused (422) rather than guessed at: a
    string such as ``"vip"`` used to be split into ``v``, ``i``, ``p`` and would have replaced the
    conversation's real labels; guessing whether ``"vip,app"`` is one label or two could do the same.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"'conversation.labels' must be a list of strings, got {kind(value)}")
    labels: list[str] = []
    for i, label in enumerate(value):
        if not isinstance(label, str):
            raise WebhookPayloadError(f"'conversation.labels.{i}' must be a string, got {kind(label)}")
        if label.strip() and label.strip() not in labels:
            labels.append(label.strip())
    return labels
