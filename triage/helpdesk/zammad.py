"""Zammad: a trigger webhook in, a ticket update with an internal note, and tags, out."""

from __future__ import annotations

from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, dig, event_key, hmac_hex, html_to_text,
                   internal_note, join_subject, register_adapter, require_equal, triage_tags)

PRIORITY_ID = {"critical": 3, "high": 3, "normal": 2, "low": 1}  # Zammad's 1 low, 2 normal, 3 high


@register_adapter("zammad")
class ZammadAdapter(HelpdeskAdapter):
    """Settings: ``base_url``, ``api_token`` (or ``api_token_env``), ``webhook_secret`` (the
    webhook's HMAC token), optional ``intent_attribute`` (a ticket object attribute for the intent).

    Zammad's trigger webhook posts ``{"ticket": {...}, "article": {...}}`` and signs it with
    ``X-Hub-Signature: sha1=<HMAC-SHA1 of the body>``. Only customer articles that are not
    internal are triaged.
    """

    required = ("api_token",)
    optional = ("intent_attribute",)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if not self._unsigned_ok():
            require_equal("sha1=" + hmac_hex(self.secret, body, "sha1"), headers.get("x-hub-signature"),
                          "X-Hub-Signature")

    def parse(self, payload: dict) -> InboundTicket | None:
        ticket = dig(payload, "ticket")
        article = payload.get("article") or {}
        if article and (article.get("internal") or article.get("sender") not in (None, "Customer")):
            return None
        ticket_id = str(dig(ticket, "id"))
        body = str(article.get("body") or "")
        if article.get("content_type") == "text/html":
            body = html_to_text(body)
        text = join_subject(article.get("subject") or ticket.get("title"), body)
        customer = ticket.get("customer") or {}
        name = " ".join(filter(None, (customer.get("firstname"), customer.get("lastname")))) or None
        return InboundTicket(ticket_id, text, str(article.get("id") or event_key("zammad", ticket_id, text)),
                             customer_name=name)

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        update: dict = {
            "priority_id": PRIORITY_ID[result.triage.urgency.level],
            "article": {"body": internal_note(result), "type": "note", "internal": True,
                        "content_type": "text/plain"},
        }
        if self.settings.get("intent_attribute"):
            update[self.settings["intent_attribute"]] = result.triage.intent.label
        calls = [OutboundCall("PUT", f"/api/v1/tickets/{ticket.ticket_id}", update)]
        calls += [OutboundCall("POST", "/api/v1/tags/add", {"object": "Ticket", "o_id": int(ticket.ticket_id)
                                                            if ticket.ticket_id.isdigit() else ticket.ticket_id,
                                                            "item": tag})
                  for tag in triage_tags(result)]
        return calls

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.settings['api_token']}"}
