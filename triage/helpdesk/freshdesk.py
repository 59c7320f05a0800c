"""Freshdesk: an automation-rule webhook in, a ticket update and a private note out."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, WebhookPayloadError, dig, event_key,
                   html_to_text, internal_note, join_subject, register_adapter, require_equal, text_to_html,
                   triage_tags)

PRIORITY = {"critical": 4, "high": 3, "normal": 2, "low": 1}  # urgent, high, medium, low


@register_adapter("freshdesk")
class FreshdeskAdapter(HelpdeskAdapter):
    """Settings: ``base_url`` (``https://<domain>.freshdesk.com``), ``api_key`` (or
    ``api_key_env``), ``webhook_secret``, optional ``intent_field`` (a custom field name such as
    ``cf_intent``).

    Freshdesk does not sign webhooks, so the automation rule adds a custom header
    ``X-Kefu-Token: <webhook_secret>``. Body: ``{"freshdesk_webhook": {"ticket_id":
    "{{ticket.id}}", "ticket_subject": "{{ticket.subject}}", "ticket_description":
    "{{ticket.description}}", "ticket_contact_name": "{{ticket.contact.name}}", "ticket_tags":
    "{{ticket.tags}}"}}``. Tags are written as the ticket's tags plus ours (Freshdesk replaces the list).
    """

    required = ("api_key",)
    optional = ("intent_field",)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if not self._unsigned_ok():
            require_equal(self.secret, headers.get("x-kefu-token"), "X-Kefu-Token")

    def parse(self, payload: dict) -> InboundTicket | None:
        data = payload.get("freshdesk_webhook", payload)
        if not isinstance(data, dict):
            raise WebhookPayloadError("'freshdesk_webhook' must be an object")
        ticket_id = str(dig(data, "ticket_id"))
        text = join_subject(data.get("ticket_subject"), html_to_text(str(data.get("ticket_description") or "")))
        tags = [t.strip() for t in str(data.get("ticket_tags") or "").split(",") if t.strip()]
        return InboundTicket(ticket_id, text, event_key("freshdesk", ticket_id, text),
                             customer_name=data.get("ticket_contact_name") or None, context={"tags": tags})

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        existing = list(ticket.context.get("tags", []))
        update: dict = {"tags": existing + [t for t in triage_tags(result) if t not in existing],
                        "priority": PRIORITY[result.triage.urgency.level]}
        if self.settings.get("intent_field"):
            update["custom_fields"] = {self.settings["intent_field"]: result.triage.intent.label}
        return [
            OutboundCall("PUT", f"/api/v2/tickets/{ticket.ticket_id}", update),
            OutboundCall("POST", f"/api/v2/tickets/{ticket.ticket_id}/notes",
                         {"body": text_to_html(internal_note(result)), "private": True}),
        ]

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{self.settings['api_key']}:X".encode()).decode()}
