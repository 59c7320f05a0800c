"""Service settings, keys and limits: no server needed."""

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from triage.service import ApiKey, ConfigError, RateLimit, ServiceConfig, create_app, hash_key  # noqa: E402
from triage.service.security import KeyRing, RateLimiter  # noqa: E402


def test_keys_from_the_environment_are_hashed_and_scoped(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("api_keys:\n  - {name: ops, hash: '" + hash_key("ops-key-0123456789abc") + "', scopes: [read]}\n"
                    "max_batch: 8\n", encoding="utf-8")
    config = ServiceConfig.load(path, env={"KEFU_API_KEYS": "bridge=bridge-key-0123456789",
                                           "KEFU_ADMIN_API_KEYS": "root=root-key-0123456789abcd",
                                           "KEFU_FEEDBACK_DB": "sqlite:///fb.db"})
    names = {k.name: k for k in config.api_keys}
    assert set(names) == {"ops", "bridge", "root"} and config.max_batch == 8
    assert "bridge-key" not in repr(config) and names["bridge"].key_hash.startswith("sha256:")
    assert "kb:write" in names["root"].scopes and "kb:write" not in names["bridge"].scopes
    assert config.feedback_db == "sqlite:///fb.db"
    ring = KeyRing(config.api_keys)
    assert ring.find("bridge-key-0123456789").name == "bridge" and ring.find("bridge-key-012345678") is None


@pytest.mark.parametrize("text, message", [
    ("max_batchs: 3\n", "unknown settings \\['max_batchs'\\]"),
    ("api_keys:\n  - {name: a, hash: plain}\n", "hash must be 'sha256:"),
    ("api_keys:\n  - {name: a}\n", "needs 'name' and 'hash'"),
    ("max_body_bytes: 10\n", "max_body_bytes must be at least 1024"),
    ("rate_limit: {per_second: 0, burst: 1}\n", "per_second > 0"),
    ("- just\n- a list\n", "expected a mapping"),
    ("outbox_retry: {delay: 1}\n", "outbox_retry: unknown settings"),
])
def test_bad_settings_name_the_problem(tmp_path, text, message):
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.load(path, env={})


def test_short_keys_and_malformed_env_pairs_are_refused():
    with pytest.raises(ConfigError, match="at least 16 characters"):
        hash_key("short")
    with pytest.raises(ConfigError, match="'name=key' pairs"):
        ServiceConfig.load(None, env={"KEFU_API_KEYS": "just-a-key-without-name"})


def test_no_keys_means_no_service_unless_anonymous_is_allowed():
    with pytest.raises(ValueError, match="no API keys configured"):
        create_app(ServiceConfig())


def test_token_bucket_refills_at_the_rate_and_splits_across_workers():
    now = [0.0]
    key = ApiKey("k", hash_key("k-key-0123456789abcdef"), rate_limit=RateLimit(per_second=2, burst=2))
    limiter = RateLimiter(RateLimit(), clock=lambda: now[0])
    assert [limiter.acquire(key) for _ in range(3)][:2] == [0.0, 0.0]
    assert limiter.acquire(key) == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire(key) == 0.0
    half = RateLimiter(RateLimit(), share=0.5, clock=lambda: now[0])
    assert half.acquire(key) == 0.0 and half.acquire(key) == pytest.approx(1.0)


def test_cors_only_for_configured_origins():
    # No lifespan: CORS is answered by middleware before any model is needed.
    client = TestClient(create_app(ServiceConfig(allow_anonymous=True, cors_origins=["https://desk.example"])))
    ok = client.options("/v1/triage", headers={"Origin": "https://desk.example", "Access-Control-Request-Method": "POST"})
    assert ok.headers["access-control-allow-origin"] == "https://desk.example"
    other = client.options("/v1/triage", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers
