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


HASH = "sha256:" + "0" * 64


@pytest.mark.parametrize("text, message", [
    ("rate_limit: {per_sec: 5}\n",
     "rate_limit: unknown settings ['per_sec']; known: per_second, burst "
     "(a mapping such as {per_second: 50, burst: 100})"),
    ("rate_limit: 5\n", "rate_limit must be a mapping such as {per_second: 50, burst: 100}, got 5 (a number)"),
    ("rate_limit: {per_second: fast, burst: 2}\n", "rate_limit.per_second must be a number greater than 0, as in "
                                                   "{per_second: 50, burst: 100}, got 'fast' (text)"),
    ("rate_limit: {per_second: 5, burst: 2.5}\n", "rate_limit.burst must be a whole number, at least 1, as in "
                                                  "{per_second: 50, burst: 100}, got 2.5 (a number)"),
    ("max_body_bytes: 1mb\n",
     "max_body_bytes must be a whole number, at least 1024 (such as 1000000), got '1mb' (text)"),
    ("max_batch: true\n", "max_batch must be a whole number, at least 1 (such as 64), got True (a boolean)"),
    ("max_chars: 0\n", "max_chars must be at least 1, got 0"),
    ("allow_anonymous: 'yes'\n", "allow_anonymous must be true or false, got 'yes' (text)"),
    ("strip_boilerplate: 1\n", "strip_boilerplate must be true or false, got 1 (a number)"),
    ("cors_origins: https://desk.example\n", "cors_origins must be a list of origins such as "
                                             "[https://desk.example.com], got 'https://desk.example' (text)"),
    ("batch_wait_ms: -1\n", "batch_wait_ms must be 0 or more, got -1"),
    ("batch_wait_ms: soon\n", "batch_wait_ms must be a number 0 or more (such as 2), got 'soon' (text)"),
    ("model: 3\n", "model must be a path (text) or null, got 3 (a number)"),
    ("outbox: [a]\n", "outbox must be a path (text), got ['a'] (a list)"),
    ("outbox_retry: 3\n", "outbox_retry must be a mapping such as {base_delay: 2, max_delay: 600, max_attempts: 20}, "
                          "got 3 (a number)"),
    ("outbox_retry: {max_attempts: 2.5}\n", "outbox_retry.max_attempts must be a whole number, at least 1 (such as 20), "
                                            "got 2.5 (a number)"),
    ("outbox_retry: {base_delay: 0}\n", "outbox_retry.base_delay must be greater than 0, got 0"),
    ("adapters: [zendesk]\n", "adapters must map adapter names to their settings, such as {zendesk: {base_url: ..., "
                              "...}}, got ['zendesk'] (a list)"),
    ("api_keys: a-key\n", "api_keys must be a list of {name, hash, scopes, rate_limit} mappings, got 'a-key' (text)"),
    (f"api_keys:\n  - {{name: a, hash: '{HASH}', rate_limit: 3}}\n",
     "api_keys[a].rate_limit must be a mapping such as {per_second: 50, burst: 100}, got 3 (a number)"),
    (f"api_keys:\n  - {{name: a, hash: '{HASH}', rate_limit: {{burst: 0}}}}\n",
     "api_keys[a].rate_limit needs per_second > 0 and burst >= 1, got 50.0/0"),
    (f"api_keys:\n  - {{name: a, hash: '{HASH}', scopes: read}}\n",
     "API key 'a': scopes must be a list such as [read, feedback], got 'read' (text)"),
    (f"api_keys:\n  - {{name: a, hash: '{HASH}', scope: [read]}}\n",
     "API key 'a': unknown settings ['scope']; known: name, hash, scopes, rate_limit"),
])
def test_every_setting_is_type_checked_and_named(tmp_path, text, message):
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ServiceConfig.load(path, env={})
    assert str(caught.value) == f"{path}: {message}"


def test_settings_are_checked_when_built_in_code_too():
    with pytest.raises(ConfigError, match="^max_body_bytes must be a whole number"):
        ServiceConfig(max_body_bytes="1mb")
    assert ServiceConfig(allow_anonymous=True, rate_limit={"per_second": 5, "burst": 10}).rate_limit == RateLimit(5, 10)


def test_empty_sections_mean_the_defaults(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("allow_anonymous: true\nadapters:\noutbox_retry:\ncors_origins:\n", encoding="utf-8")
    config = ServiceConfig.load(path, env={})
    assert (config.adapters, config.outbox_retry, config.cors_origins) == ({}, {}, [])


def test_serve_reports_a_bad_setting_in_one_line(tmp_path):
    from tests.conftest import run_cli

    path = tmp_path / "service.yaml"
    path.write_text("allow_anonymous: true\nrate_limit: {per_sec: 5}\n", encoding="utf-8")
    result = run_cli("serve", "--config", str(path), "--port", "1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "rate_limit: unknown settings ['per_sec']" in result.stderr


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
