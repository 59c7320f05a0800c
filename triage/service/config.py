"""Service settings: one YAML file (optional) plus environment variables.

API keys never stay in memory or on disk in plain text: the file holds SHA-256 hashes
(``triage serve --hash-key`` prints one), and keys given in the environment are hashed as
they are read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

#: Scopes a key can hold. ``read`` covers triage, assist and search; ``feedback`` records
#: agents' actions; ``kb:write`` changes the knowledge base.
SCOPES = ("read", "feedback", "kb:write")
DEFAULT_SCOPES = ("read", "feedback")


class ConfigError(ValueError):
    """A service setting is missing or malformed; the message names it and the fix."""


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:<hex>``."""
    if len(key) < 16:
        raise ConfigError("an API key must have at least 16 characters (use `triage serve --new-key`)")
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `per_second` requests on average, bursts of up to `burst`."""

    per_second: float = 50.0
    burst: int = 100

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ConfigError(f"rate limit needs per_second > 0 and burst >= 1, got {self.per_second}/{self.burst}")


@dataclass(frozen=True)
class ApiKey:
    """One client's key (hashed), what it may do and how fast."""

    name: str
    key_hash: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    rate_limit: RateLimit | None = None  # None: the service default

    def __post_init__(self) -> None:
        if not self.key_hash.startswith("sha256:") or len(self.key_hash) != 71:
            raise ConfigError(f"API key {self.name!r}: hash must be 'sha256:<64 hex digits>' "
                              "(print one with `triage serve --hash-key KEY`)")
        unknown = set(self.scopes) - set(SCOPES)
        if unknown:
            raise ConfigError(f"API key {self.name!r}: unknown scopes {sorted(unknown)}; known: {list(SCOPES)}")


@dataclass
class ServiceConfig:
    """Everything ``triage serve`` needs.

    Parameters
    ----------
    api_keys : list of ApiKey
        Who may call the API. With none, every request is refused unless `allow_anonymous`.
    allow_anonymous : bool
        Serve without keys (local development only); anonymous callers get every scope.
    rate_limit : RateLimit
        Per-key default.
    max_body_bytes : int
        Larger request bodies get 413.
    max_batch : int
        Most messages one ``/v1/triage:batch`` request may carry.
    max_chars : int
        Longer messages are truncated (and flagged) like in the library.
    strip_boilerplate : bool
        Triage only the customer's request, like the library (greetings, thanks and quoted email
        history left out).
    cors_origins : list of str
        Origins allowed to call from a browser; empty turns CORS off.
    model, knowledge_base, feedback_db : str, optional
        Bundle directory, knowledge base (a saved directory makes it writable) and feedback
        database (SQLite path or SQLAlchemy URL); None for the shipped defaults / no feedback.
    outbox : str
        SQLite file of the helpdesk write-back queue.
    outbox_retry : dict
        ``base_delay`` and ``max_delay`` (seconds) and ``max_attempts`` of write-back retries.
    adapters : dict
        Helpdesk adapter settings by registered name (see :mod:`triage.helpdesk`).
    batch_wait_ms : float
        How long a model batch stays open for more requests after its first (milliseconds):
        more throughput under load for at most this much extra latency.
    """

    api_keys: list[ApiKey] = field(default_factory=list)
    allow_anonymous: bool = False
    rate_limit: RateLimit = field(default_factory=RateLimit)
    max_body_bytes: int = 1_000_000
    max_batch: int = 64
    max_chars: int = 5000
    strip_boilerplate: bool = True
    cors_origins: list[str] = field(default_factory=list)
    model: str | None = None
    knowledge_base: str | None = None
    feedback_db: str | None = None
    outbox: str = "kefu-outbox.db"
    outbox_retry: dict[str, float] = field(default_factory=dict)
    adapters: dict[str, dict] = field(default_factory=dict)
    batch_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be at least 1, got {self.max_batch}")
        if not isinstance(self.strip_boilerplate, bool):
            raise ConfigError(f"strip_boilerplate must be true or false, got {self.strip_boilerplate!r}")
        unknown = set(self.outbox_retry) - {"base_delay", "max_delay", "max_attempts"}
        if unknown:
            raise ConfigError(f"outbox_retry: unknown settings {sorted(unknown)}; known: base_delay, max_delay, "
                              "max_attempts")
        names = [k.name for k in self.api_keys]
        if len(names) != len(set(names)):
            raise ConfigError(f"API key names must be unique, got {names}")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> "ServiceConfig":
        """Read `path` (YAML) and the environment.

        Environment variables: ``KEFU_API_KEYS`` (``name=key,name2=key2``; plain keys, hashed
        on read, default scopes), ``KEFU_ADMIN_API_KEYS`` (same, with every scope),
        ``KEFU_FEEDBACK_DB``, ``KEFU_KNOWLEDGE_BASE``, ``KEFU_MODEL``.
        """
        env = dict(os.environ if env is None else env)
        data: dict = {}
        if path is not None:
            try:
                data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read service config {path}: {exc}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        keys = [_key_from_dict(item, path) for item in data.pop("api_keys", None) or []]
        keys += _keys_from_env(env.get("KEFU_API_KEYS", ""), DEFAULT_SCOPES)
        keys += _keys_from_env(env.get("KEFU_ADMIN_API_KEYS", ""), SCOPES)
        if "rate_limit" in data:
            data["rate_limit"] = RateLimit(**data["rate_limit"])
        for setting, var in (("feedback_db", "KEFU_FEEDBACK_DB"), ("knowledge_base", "KEFU_KNOWLEDGE_BASE"),
                             ("model", "KEFU_MODEL")):
            if env.get(var):
                data[setting] = env[var]
        try:
            return cls(api_keys=keys, **data)
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _key_from_dict(item: dict, path) -> ApiKey:
    if not isinstance(item, dict) or "name" not in item or "hash" not in item:
        raise ConfigError(f"{path}: each api_keys item needs 'name' and 'hash', got {item!r}")
    limit = RateLimit(**item["rate_limit"]) if item.get("rate_limit") else None
    return ApiKey(str(item["name"]), str(item["hash"]), tuple(item.get("scopes", DEFAULT_SCOPES)), limit)


def _keys_from_env(value: str, scopes: tuple[str, ...]) -> list[ApiKey]:
    keys = []
    for pair in filter(None, (p.strip() for p in value.split(","))):
        name, sep, key = pair.partition("=")
        if not sep or not name or not key:
            raise ConfigError(f"API keys in the environment are 'name=key' pairs separated by commas, got {name!r}...")
        keys.append(ApiKey(name, hash_key(key), scopes))
    return keys
