"""Zammad: a trigger webhook in, a ticket update with an internal note, and tags, out."""

from __future__ import annotations

from collections.abc import Mapping

from ..results import AssistResult
from .base import (HelpdeskAdapter, InboundTicket, OutboundCall, as_event_id, as_flag, as_id, as_name, as_object,
                   as_text, event_key, hmac_hex, html_to_text, internal_note, join_subject, register_adapter,
                   require_equal, triage_tags, url_id)

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
        ticket = as_object(payload.get("ticket"), "ticket", required=True)
        article = as_object(payload.get("article"), "article")
        internal = as_flag(article.get("internal"), "article.internal")
        sender = as_text(article.get("sender"), "article.sender")
        if article and (internal or sender not in (None, "Customer")):
            return None
        ticket_id = as_id(ticket.get("id"), "ticket.id")
        body = as_text(article.get("body"), "article.body") or ""
        if as_text(article.get("content_type"), "article.content_type") == "text/html":
            body = html_to_text(body)
        subject = as_text(article.get("subject"), "article.subject") or as_text(ticket.get("title"), "ticket.title")
        text = join_subject(subject, body)
        customer = as_object(ticket.get("customer"), "ticket.customer")
        names = (as_name(customer.get("firstname"), "ticket.customer.firstname"),
                 as_name(customer.get("lastname"), "ticket.customer.lastname"))
        event_id = as_event_id(article.get("id"), "article.id") or event_key("zammad", ticket_id, text)
        return InboundTicket(ticket_id, text, event_id, customer_name=" ".join(filter(None, names)) or None)

    def writeback(self, ticket: InboundTicket, result: AssistResult) -> list[OutboundCall]:
        path = f"/api/v1/tickets/{url_id(ticket.ticket_id)}"  # checked before anything is built
        update: dict = {
            "priority_id": PRIORITY_ID[result.triage.urgency.level],
            "article": {"body": internal_note(result), "type": "note", "internal": True,
                        "content_type": "text/plain"},
        }
        if self.settings.get("intent_attribute"):
            update[self.settings["intent_attribute"]] = result.triage.intent.label
        calls = [OutboundCall("PUT", path, update)]
        calls += [OutboundCall("POST", "/api/v1/tags/add", {"object": "Ticket", "o_id": int(ticket.ticket_id)
                                                            if ticket.ticket_id.isdigit() else ticket.ticket_id,
                                                            "item": tag})
                  for tag in triage_tags(result)]
        return calls

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.settings['api_token']}"}
