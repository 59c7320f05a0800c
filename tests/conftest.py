import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_triage():
    import triage

    return triage.load()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args: str, cwd=None, input: str | None = None):
    """Run the installed `triage` console script in a subprocess."""
    import subprocess

    exe = Path(sys.executable).with_name("triage")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=900
    )


KEYS = {"read": "test-read-key-0123456789", "admin": "test-admin-key-0123456789",
        "limited": "test-limited-key-0123456789", "fuzz": "test-fuzz-key-0123456789"}
SECRETS = {name: f"{name}-webhook-secret" for name in ("zendesk", "freshdesk", "zammad", "chatwoot", "generic")}


@pytest.fixture(scope="session")
def helpdesk():
    from service_support import FakeHelpdesk

    fake = FakeHelpdesk().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory, helpdesk):
    """`triage serve` for real on a loopback port: keys with different scopes and limits, a
    writable knowledge base, a feedback database and every helpdesk adapter pointed at the fake."""
    from retrieval.search import KnowledgeBase
    from service_support import ServiceProcess
    from triage import INTENT_CATEGORIES, default_kb_path
    from triage.service import hash_key

    work = tmp_path_factory.mktemp("service")
    KnowledgeBase.from_file(default_kb_path(), taxonomy=INTENT_CATEGORIES).save(work / "kb")
    base = helpdesk.url
    config = {
        "api_keys": [
            {"name": "reader", "hash": hash_key(KEYS["read"])},
            {"name": "admin", "hash": hash_key(KEYS["admin"]), "scopes": ["read", "feedback", "kb:write"]},
            {"name": "limited", "hash": hash_key(KEYS["limited"]), "rate_limit": {"per_second": 0.2, "burst": 3}},
            {"name": "fuzz", "hash": hash_key(KEYS["fuzz"]), "rate_limit": {"per_second": 10000, "burst": 10000}},
        ],
        "rate_limit": {"per_second": 200, "burst": 400},
        "max_body_bytes": 200_000, "max_batch": 16,
        "knowledge_base": str(work / "kb"), "feedback_db": str(work / "feedback.db"),
        "outbox": str(work / "outbox.db"),
        "outbox_retry": {"base_delay": 0.2, "max_delay": 1.0, "max_attempts": 12},
        "adapters": {
            "zendesk": {"base_url": base, "email": "bot@acme.example", "api_token": "zd-token",
                        "webhook_secret": SECRETS["zendesk"], "intent_field_id": 360001},
            "freshdesk": {"base_url": base + "/fd", "api_key": "fd-key", "webhook_secret": SECRETS["freshdesk"],
                          "intent_field": "cf_intent"},
            "zammad": {"base_url": base + "/zm", "api_token": "zm-token", "webhook_secret": SECRETS["zammad"],
                       "intent_attribute": "kefu_intent"},
            "chatwoot": {"base_url": base + "/cw", "api_access_token": "cw-token",
                         "webhook_secret": SECRETS["chatwoot"]},
            "generic": {"base_url": base + "/own", "webhook_secret": SECRETS["generic"],
                        "fields": {"ticket_id": "data.ticket", "text": "data.body", "subject": "data.subject",
                                   "customer_name": "data.customer", "event_id": "delivery"},
                        "writeback_path": "/tickets/{ticket_id}/triage", "headers": {"Authorization": "Bearer own"}},
        },
    }
    server = ServiceProcess(config, work).start()
    server.keys = KEYS
    server.secrets = SECRETS
    server.kb_dir = work / "kb"
    yield server
    server.stop()
