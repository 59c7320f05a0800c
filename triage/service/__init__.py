"""``triage serve``: the HTTP API and helpdesk webhooks (needs the ``serve`` extra)."""

from .app import create_app
from .config import ApiKey, ConfigError, RateLimit, ServiceConfig, hash_key
from .server import serve

__all__ = ["ApiKey", "ConfigError", "RateLimit", "ServiceConfig", "create_app", "hash_key", "serve"]
