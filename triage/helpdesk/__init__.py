"""Helpdesk adapters (Zendesk, Freshdesk, Zammad, Chatwoot, generic), registered by name, and
the persistent write-back queue they share."""

from . import chatwoot, freshdesk, generic, zammad, zendesk  # noqa: F401  (registers the adapters)
from .base import (AdapterConfigError, HelpdeskAdapter, InboundTicket, OutboundCall, WebhookAuthError,
                   WebhookPayloadError, available_adapters, internal_note, make_adapter, register_adapter,
                   triage_tags)
from .outbox import Deliverer, Outbox

__all__ = ["AdapterConfigError", "Deliverer", "HelpdeskAdapter", "InboundTicket", "OutboundCall", "Outbox",
           "WebhookAuthError", "WebhookPayloadError", "available_adapters", "internal_note", "make_adapter",
           "register_adapter", "triage_tags"]
