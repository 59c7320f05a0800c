"""Service settings: one YAML file (optional) plus environment variables.

API keys never stay in memory or on disk in plain text: the file holds SHA-256 hashes
(``triage serve --hash-key`` prints one), and keys given in the environment are hashed as
they are read.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Scopes a key can hold. ``read`` covers triage, assist and search; ``feedback`` records
#: agents' actions; ``kb:write`` changes the knowledge base.
SCOPES = ("read", "feedback", "kb:write")
DEFAULT_SCOPES = ("read", "feedback")


class ConfigError(ValueError):
    """A service setting is missing or malformed; the message names it and the fix."""


def _shown(value: Any) -> str:
    """A setting's value as the message shows it: the value and its YAML kind."""
    kind = ("a boolean" if isinstance(value, bool) else "a number" if isinstance(value, (int, float))
            else "text" if isinstance(value, str) else "null" if value is None
            else "a list" if isinstance(value, (list, tuple)) else "a mapping" if isinstance(value, Mapping)
            else f"a {type(value).__name__}")
    text = repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} ({kind})"


def _whole(setting: str, value: Any, minimum: int, example: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{setting} must be a whole number, at least {minimum} (such as {example}), "
                          f"got {_shown(value)}")
    if value < minimum:
        raise ConfigError(f"{setting} must be at least {minimum}, got {value}")


def _number(setting: str, value: Any, example: float, *, positive: bool = False) -> None:
    floor = "greater than 0" if positive else "0 or more"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{setting} must be a number {floor} (such as {example}), got {_shown(value)}")
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{setting} must be {floor}, got {value}")


def _flag(setting: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{setting} must be true or false, got {_shown(value)}")


def _text(setting: str, value: Any, *, optional: bool = False) -> None:
    if not (isinstance(value, str) and value.strip()) and not (optional and value is None):
        raise ConfigError(f"{setting} must be a path (text){' or null' if optional else ''}, got {_shown(value)}")


_RATE_FORM = "a mapping such as {per_second: 50, burst: 100}"


def rate_limit_from(value: Any, setting: str = "rate_limit") -> "RateLimit":
    """A :class:`RateLimit` from its YAML form; ConfigError naming `setting` otherwise."""
    if isinstance(value, RateLimit):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{setting} must be {_RATE_FORM}, got {_shown(value)}")
    unknown = sorted(set(value) - {"per_second", "burst"}, key=str)
    if unknown:
        raise ConfigError(f"{setting}: unknown settings {unknown}; known: per_second, burst ({_RATE_FORM})")
    try:
        return RateLimit(**value)
    except ConfigError as exc:
        message = str(exc)
        message = setting + message[len("rate limit"):] if message.startswith("rate limit") else f"{setting}.{message}"
        raise ConfigError(message) from None


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
        for name, value in (("per_second", self.per_second), ("burst", self.burst)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or (name == "burst" and value != int(value)):
                kind = "a number greater than 0" if name == "per_second" else "a whole number, at least 1"
                raise ConfigError(f"{name} must be {kind}, as in {{per_second: 50, burst: 100}}, got {_shown(value)}")
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
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"API key name must be text, got {_shown(self.name)}")
        if not isinstance(self.key_hash, str) or not self.key_hash.startswith("sha256:") or len(self.key_hash) != 71:
            raise ConfigError(f"API key {self.name!r}: hash must be 'sha256:<64 hex digits>' "
                              "(print one with `triage serve --hash-key KEY`)")
        if isinstance(self.scopes, str) or not all(isinstance(s, str) for s in self.scopes):
            raise ConfigError(f"API key {self.name!r}: scopes must be a list such as [read, feedback], "
                              f"got {_shown(self.scopes)}")
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
        """Every setting's type and range, so a bad one is named here rather than failing later."""
        if not isinstance(self.api_keys, (list, tuple)) or not all(isinstance(k, ApiKey) for k in self.api_keys):
            raise ConfigError(f"api_keys must be a list of ApiKey, got {_shown(self.api_keys)}")
        _flag("allow_anonymous", self.allow_anonymous)
        self.rate_limit = rate_limit_from(self.rate_limit)
        _whole("max_body_bytes", self.max_body_bytes, 1024, 1_000_000)
        _whole("max_batch", self.max_batch, 1, 64)
        _whole("max_chars", self.max_chars, 1, 5000)
        _flag("strip_boilerplate", self.strip_boilerplate)
        if not isinstance(self.cors_origins, (list, tuple)) or not all(isinstance(o, str) for o in self.cors_origins):
            raise ConfigError(f"cors_origins must be a list of origins such as [https://desk.example.com], "
                              f"got {_shown(self.cors_origins)}")
        for name in ("model", "knowledge_base", "feedback_db"):
            _text(name, getattr(self, name), optional=True)
        _text("outbox", self.outbox)
        if not isinstance(self.outbox_retry, Mapping):
            raise ConfigError("outbox_retry must be a mapping such as {base_delay: 2, max_delay: 600, "
                              f"max_attempts: 20}}, got {_shown(self.outbox_retry)}")
        unknown = set(self.outbox_retry) - {"base_delay", "max_delay", "max_attempts"}
        if unknown:
            raise ConfigError(f"outbox_retry: unknown settings {sorted(unknown, key=str)}; known: base_delay, "
                              "max_delay, max_attempts")
        for name, value in self.outbox_retry.items():
            if name == "max_attempts":
                _whole("outbox_retry.max_attempts", value, 1, 20)
            else:
                _number(f"outbox_retry.{name}", value, 2 if name == "base_delay" else 600, positive=True)
        if not isinstance(self.adapters, Mapping) or not all(
                isinstance(v, Mapping) or v is None for v in self.adapters.values()):
            raise ConfigError("adapters must map adapter names to their settings, such as "
                              f"{{zendesk: {{base_url: ..., ...}}}}, got {_shown(self.adapters)}")
        _number("batch_wait_ms", self.batch_wait_ms, 2)
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
            raise ConfigError(f"{path}: unknown settings {sorted(unknown, key=str)}; known: {sorted(known)}")
        items = data.pop("api_keys", None) or []
        if not isinstance(items, list):
            raise ConfigError(f"{path}: api_keys must be a list of {{name, hash, scopes, rate_limit}} mappings, "
                              f"got {_shown(items)}")
        keys = [_key_from_dict(item, path) for item in items]
        keys += _keys_from_env(env.get("KEFU_API_KEYS", ""), DEFAULT_SCOPES)
        keys += _keys_from_env(env.get("KEFU_ADMIN_API_KEYS", ""), SCOPES)
        for setting, var in (("feedback_db", "KEFU_FEEDBACK_DB"), ("knowledge_base", "KEFU_KNOWLEDGE_BASE"),
                             ("model", "KEFU_MODEL")):
            if env.get(var):
                data[setting] = env[var]
        where = f"{path}: " if path is not None else ""
        for name in ("adapters", "outbox_retry", "cors_origins"):
            if name in data and data[name] is None:  # `adapters:` with nothing under it: the default
                del data[name]
        try:
            return cls(api_keys=keys, **data)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{where}{exc}") from None


def _key_from_dict(item: dict, path) -> ApiKey:
    if not isinstance(item, dict) or "name" not in item or "hash" not in item:
        raise ConfigError(f"{path}: each api_keys item needs 'name' and 'hash', got {item!r}")
    where = f"{path}: " if path is not None else ""
    name = item["name"]
    unknown = set(item) - {"name", "hash", "scopes", "rate_limit"}
    if unknown:
        raise ConfigError(f"{where}API key {name!r}: unknown settings {sorted(unknown, key=str)}; known: name, hash, "
                          "scopes, rate_limit")
    try:
        limit = rate_limit_from(item["rate_limit"], f"api_keys[{name}].rate_limit") \
            if item.get("rate_limit") is not None else None
        scopes = item.get("scopes", DEFAULT_SCOPES)
        if not isinstance(scopes, (list, tuple)):
            raise ConfigError(f"API key {name!r}: scopes must be a list such as [read, feedback], got {_shown(scopes)}")
        return ApiKey(str(name), str(item["hash"]), tuple(scopes), limit)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _keys_from_env(value: str, scopes: tuple[str, ...]) -> list[ApiKey]:
    keys = []
    for pair in filter(None, (p.strip() for p in value.split(","))):
        name, sep, key = pair.partition("=")
        if not sep or not name or not key:
            raise ConfigError(f"API keys in the environment are 'name=key' pairs separated by commas, got {name!r}...")
        keys.append(ApiKey(name, hash_key(key), scopes))
    return keys
