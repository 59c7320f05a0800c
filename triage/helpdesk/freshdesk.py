"""Freshdesk: an automation-rule webhook in, a ticket update and a private note out."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, WebhookPayloadError, as_id, as_name, as_object,
                   as_text, event_key, html_to_text, internal_note, join_subject, kind, register_adapter,
                   require_equal, text_to_html, triage_tags, url_id)

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
        data, prefix = payload, ""
        if "freshdesk_webhook" in payload:
            data = as_object(payload["freshdesk_webhook"], "freshdesk_webhook", required=True)
            prefix = "freshdesk_webhook."
        ticket_id = as_id(data.get("ticket_id"), prefix + "ticket_id")
        description = as_text(data.get("ticket_description"), prefix + "ticket_description") or ""
        text = join_subject(as_text(data.get("ticket_subject"), prefix + "ticket_subject"), html_to_text(description))
        return InboundTicket(ticket_id, text, event_key("freshdesk", ticket_id, text),
                             customer_name=as_name(data.get("ticket_contact_name"), prefix + "ticket_contact_name"),
                             context={"tags": _tags(data.get("ticket_tags"), prefix + "ticket_tags")})

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        path = f"/api/v2/tickets/{url_id(ticket.ticket_id)}"  # checked before anything is built
        existing = list(ticket.context.get("tags", []))
        update: dict = {"tags": existing + [t for t in triage_tags(result) if t not in existing],
                        "priority": PRIORITY[result.triage.urgency.level]}
        if self.settings.get("intent_field"):
            update["custom_fields"] = {self.settings["intent_field"]: result.triage.intent.label}
        return [
            OutboundCall("PUT", path, update),
            OutboundCall("POST", f"{path}/notes",
                         {"body": text_to_html(internal_note(result)), "private": True}),
        ]

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{self.settings['api_key']}:X".encode()).decode()}


def _tags(value, path: str) -> list[str]:
    """The ticket's tags, kept in the write-back (Freshdesk replaces the list): the placeholder
    renders them comma-separated; a list of strings is taken as it is."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = value
    else:
        got = "a list with a non-string item" if isinstance(value, list) else kind(value)
        raise WebhookPayloadError(f"{path!r} must be a comma-separated string or a list of strings, got {got}")
    tags: list[str] = []
    for tag in (t.strip() for t in items):
        if tag and tag not in tags:
            tags.append(tag)
    return tags
