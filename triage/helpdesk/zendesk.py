"""Zendesk: a trigger or event webhook in, a ticket update (tags, priority, intent field,
private comment) out."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, as_event_id, as_flag, as_id, as_name, as_object,
                   as_text, event_key, hmac_base64, html_to_text, internal_note, join_subject, register_adapter,
                   require_equal, triage_tags, url_id)

PRIORITY = {"critical": "urgent", "high": "high", "normal": "normal", "low": "low"}


@register_adapter("zendesk")
class ZendeskAdapter(HelpdeskAdapter):
    """Settings: ``base_url`` (``https://<subdomain>.zendesk.com``), ``email`` and ``api_token``
    (or ``api_token_env``) of the agent the updates are made as, ``webhook_secret`` (the webhook's
    signing secret), optional ``intent_field_id`` (a ticket custom field that gets the intent).

    Webhook body: Zendesk's ticket events (``zen:event-type:ticket.created``) or a trigger whose
    JSON body is ``{"ticket": {"id": "{{ticket.id}}", "subject": "{{ticket.title}}",
    "description": "{{ticket.latest_public_comment}}", "requester": {"name": "{{ticket.requester.name}}"}}}``.
    Signature: ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of timestamp + body.
    """

    required = ("email", "api_token")
    optional = ("intent_field_id",)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if self._unsigned_ok():
            return
        timestamp = headers.get("x-zendesk-webhook-signature-timestamp")
        self._check_timestamp(_epoch(timestamp))
        expected = hmac_base64(self.secret, (timestamp or "").encode("utf-8") + body)
        require_equal(expected, headers.get("x-zendesk-webhook-signature"), "X-Zendesk-Webhook-Signature")

    def parse(self, payload: dict) -> InboundTicket | None:
        event_type = payload.get("type")
        if isinstance(event_type, str) and event_type.startswith("zen:event-type:"):
            if event_type not in ("zen:event-type:ticket.created", "zen:event-type:ticket.comment_added"):
                return None
            detail = as_object(payload.get("detail"), "detail", required=True)
            event = as_object(payload.get("event"), "event")
            comment = as_object(event.get("comment"), "event.comment")
            if as_flag(comment.get("is_public"), "event.comment.is_public") is False:
                return None
            body = (as_text(comment.get("body"), "event.comment.body")
                    or as_text(detail.get("description"), "detail.description") or "")
            text = join_subject(as_text(detail.get("subject"), "detail.subject"), html_to_text(body))
            ticket_id = as_id(detail.get("id"), "detail.id")
            event_id = as_event_id(payload.get("id"), "id") or event_key(payload)
            return InboundTicket(ticket_id, text, event_id, customer_name=None)
        ticket = as_object(payload.get("ticket"), "ticket", required=True)
        description = as_text(ticket.get("description"), "ticket.description") or ""
        text = join_subject(as_text(ticket.get("subject"), "ticket.subject"), html_to_text(description))
        ticket_id = as_id(ticket.get("id"), "ticket.id")
        requester = as_object(ticket.get("requester"), "ticket.requester")
        return InboundTicket(ticket_id, text, event_key("zendesk", ticket_id, text),
                             customer_name=as_name(requester.get("name"), "ticket.requester.name"))

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        path = f"/api/v2/tickets/{url_id(ticket.ticket_id)}.json"  # checked before anything is built
        update: dict = {
            "additional_tags": triage_tags(result),
            "priority": PRIORITY[result.triage.urgency.level],
            "comment": {"body": internal_note(result), "public": False},
        }
        if self.settings.get("intent_field_id"):
            update["custom_fields"] = [{"id": int(self.settings["intent_field_id"]),
                                        "value": result.triage.intent.label}]
        return [OutboundCall("PUT", path, {"ticket": update})]

    def auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.settings['email']}/token:{self.settings['api_token']}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def _epoch(timestamp: str | None) -> str | None:
    """Zendesk sends an ISO 8601 timestamp; the freshness check wants epoch seconds."""
    if not timestamp:
        return None
    try:
        return str(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
