"""Each helpdesk adapter end to end: a signed webhook into the real service, the write-back
received by a fake helpdesk HTTP server on loopback, and the helpdesk being down."""

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import httpx
import pytest

from conftest import SECRETS

pytest.importorskip("fastapi")


def send(service, adapter, payload, headers=None):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return httpx.post(f"{service.url}/v1/webhooks/{adapter}", content=body, timeout=60,
                      headers={"Content-Type": "application/json", **(headers or {})}), body


def zendesk_headers(body: bytes, secret=SECRETS["zendesk"], when=None):
    stamp = (when or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {"X-Zendesk-Webhook-Signature": sig, "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def signed_send(service, adapter, payload, sign):
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return httpx.post(f"{service.url}/v1/webhooks/{adapter}", content=body, timeout=60,
                      headers={"Content-Type": "application/json", **sign(body)})


def chatwoot_sign(body, secret=SECRETS["chatwoot"]):
    ts = str(int(time.time()))
    return {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Signature":
            "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()}


def zammad_sign(body, secret=SECRETS["zammad"]):
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def generic_sign(body, secret=SECRETS["generic"]):
    return {"X-Kefu-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def freshdesk_sign(body, secret=SECRETS["freshdesk"]):
    return {"X-Kefu-Token": secret}


def test_zendesk_trigger_webhook_updates_the_ticket(service, helpdesk):
    payload = {"ticket": {"id": "90211", "subject": "Refund still not received",
                          "description": "<p>I returned the headphones two weeks ago and the refund of $59.99 "
                                         "still hasn't shown up on my card.</p>",
                          "requester": {"name": "Dana Whitfield"}}}
    response = signed_send(service, "zendesk", payload, zendesk_headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued" and response.json()["intent"] == "refund"
    call = helpdesk.wait_for(1, path_prefix="/api/v2/tickets/90211")[0]
    assert call["method"] == "PUT" and call["path"] == "/api/v2/tickets/90211.json"
    ticket = call["json"]["ticket"]
    assert "kefu_refund" in ticket["additional_tags"] and ticket["priority"] in ("normal", "high", "urgent")
    assert ticket["custom_fields"] == [{"id": 360001, "value": "refund"}]
    assert ticket["comment"]["public"] is False and "Dana" in ticket["comment"]["body"]
    assert "$59.99" in ticket["comment"]["body"]  # the amount slot was filled from the message
    expected_auth = base64.b64encode(b"bot@acme.example/token:zd-token").decode()
    assert call["headers"]["authorization"] == f"Basic {expected_auth}" and call["headers"]["idempotency-key"]


def test_zendesk_signatures_are_checked(service):
    payload = {"ticket": {"id": "1", "subject": "hi", "description": "where is my order"}}
    wrong = signed_send(service, "zendesk", payload, lambda b: zendesk_headers(b, secret="guess"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "bad_signature"
    stale = signed_send(service, "zendesk", payload,
                        lambda b: zendesk_headers(b, when=datetime(2020, 1, 1, tzinfo=timezone.utc)))
    assert stale.status_code == 401 and "replay" in stale.json()["message"]
    unsigned, _ = send(service, "zendesk", payload)
    assert unsigned.status_code == 401


def test_freshdesk_updates_ticket_and_adds_private_note(service, helpdesk):
    payload = {"freshdesk_webhook": {"ticket_id": 5521, "ticket_subject": "订单一直显示待发货",
                                     "ticket_description": "<div>我11号下的单，到现在还是待发货，能不能催一下？</div>",
                                     "ticket_contact_name": "陈先生", "ticket_tags": "vip,app"}}
    response = signed_send(service, "freshdesk", payload, freshdesk_sign)
    assert response.status_code == 202 and response.json()["writes"] == 2
    calls = helpdesk.wait_for(2, path_prefix="/fd/api/v2/tickets/5521")
    update = next(c for c in calls if c["method"] == "PUT")["json"]
    note = next(c for c in calls if c["path"].endswith("/notes"))["json"]
    assert update["tags"][:2] == ["vip", "app"] and "kefu" in update["tags"]
    assert update["priority"] in (1, 2, 3, 4) and update["custom_fields"]["cf_intent"] == response.json()["intent"]
    assert note["private"] is True and "陈先生" in note["body"] and "<br>" in note["body"]
    assert calls[0]["headers"]["authorization"] == "Basic " + base64.b64encode(b"fd-key:X").decode()
    bad = signed_send(service, "freshdesk", payload, lambda b: {"X-Kefu-Token": "nope"})
    assert bad.status_code == 401


def test_zammad_note_priority_and_tags(service, helpdesk):
    payload = {"ticket": {"id": 311, "number": "31001", "title": "Kaputt angekommen / arrived broken",
                          "customer": {"firstname": "Priya", "lastname": "Nair"}},
               "article": {"id": 9001, "sender": "Customer", "internal": False, "content_type": "text/plain",
                           "body": "The glass kettle arrived with a cracked lid. This is the second time! "
                                   "If it isn't sorted I'll file a chargeback."}}
    response = signed_send(service, "zammad", payload, zammad_sign)
    assert response.status_code == 202, response.text
    assert response.json()["urgency"] in ("high", "critical")
    update = helpdesk.wait_for(1, path_prefix="/zm/api/v1/tickets/311")[0]
    assert update["json"]["priority_id"] == 3 and update["json"]["article"]["internal"] is True
    assert update["json"]["kefu_intent"] == response.json()["intent"]
    assert update["headers"]["authorization"] == "Token token=zm-token"
    tags = helpdesk.wait_for(response.json()["writes"] - 1, path_prefix="/zm/api/v1/tags/add")
    assert {"object": "Ticket", "o_id": 311, "item": "kefu"} in [t["json"] for t in tags]
    agent_reply = {**payload, "article": {**payload["article"], "id": 9002, "sender": "Agent"}}
    ignored = signed_send(service, "zammad", agent_reply, zammad_sign)
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    tampered = httpx.post(f"{service.url}/v1/webhooks/zammad", content=b'{"ticket": {"id": 1}}', timeout=30,
                          headers={"Content-Type": "application/json", **zammad_sign(b'{"ticket": {"id": 2}}')})
    assert tampered.status_code == 401


def test_chatwoot_labels_priority_attribute_and_private_note(service, helpdesk):
    payload = {"event": "message_created", "id": 77001, "message_type": "incoming", "private": False,
               "content": "請問可以開公司抬頭的發票嗎？統編 12345678", "account": {"id": 3},
               "conversation": {"id": 120, "labels": ["tw"]}, "sender": {"name": "林小姐"}}
    response = signed_send(service, "chatwoot", payload, chatwoot_sign)
    assert response.status_code == 202 and response.json()["intent"] == "invoice"
    calls = helpdesk.wait_for(4, path_prefix="/cw/api/v1/accounts/3/conversations/120")
    by_path = {c["path"].rsplit("/", 1)[-1]: c for c in calls}
    assert by_path["labels"]["json"]["labels"][:2] == ["tw", "kefu"]
    assert by_path["toggle_priority"]["json"]["priority"] in ("urgent", "high", "medium", "low")
    assert by_path["custom_attributes"]["json"] == {"custom_attributes": {"kefu_intent": "invoice"}}
    note = by_path["messages"]["json"]
    assert note["private"] is True and "發票" in note["content"]  # the customer's script: traditional
    assert by_path["messages"]["headers"]["api_access_token"] == "cw-token"
    ours = {**payload, "id": 77002, "message_type": "outgoing", "private": True}
    assert signed_send(service, "chatwoot", ours, chatwoot_sign).json()["status"] == "ignored"


def test_generic_adapter_posts_the_result_to_your_backend(service, helpdesk):
    payload = {"delivery": "evt-42", "data": {"ticket": "T-1009", "subject": "Change address",
                                              "body": "Can I still change the shipping address on order 88213?",
                                              "customer": "Sam"}}
    response = signed_send(service, "generic", payload, generic_sign)
    assert response.status_code == 202
    call = helpdesk.wait_for(1, path_prefix="/own/tickets/T-1009/triage")[0]
    body = call["json"]
    assert call["method"] == "POST" and call["headers"]["authorization"] == "Bearer own"
    assert body["ticket_id"] == "T-1009" and body["intent"] == body["triage"]["intent"]["label"]
    assert body["draft"]["en"] and "Sam" in body["draft"]["en"] and "kefu" in body["tags"]
    missing = signed_send(service, "generic", {"delivery": "evt-43", "data": {"subject": "x"}}, generic_sign)
    assert missing.status_code == 422 and "data.ticket" in missing.json()["message"]


def test_a_repeated_webhook_is_written_back_once(service, helpdesk):
    payload = {"delivery": "evt-dup-1", "data": {"ticket": "T-2001", "body": "Do you ship to Macau?"}}
    first = signed_send(service, "generic", payload, generic_sign)
    again = signed_send(service, "generic", payload, generic_sign)
    assert first.status_code == 202 and again.status_code == 200 and again.json()["status"] == "duplicate"
    helpdesk.wait_for(1, path_prefix="/own/tickets/T-2001/")
    time.sleep(0.5)
    assert len(helpdesk.calls(path_prefix="/own/tickets/T-2001/")) == 1


def test_unknown_adapter_and_malformed_payloads(service):
    assert httpx.post(f"{service.url}/v1/webhooks/jira", json={}).status_code == 404
    body = b"not json at all"
    garbage = httpx.post(f"{service.url}/v1/webhooks/zammad", content=body, timeout=30,
                         headers={"Content-Type": "application/json", **zammad_sign(body)})
    assert garbage.status_code == 400 and garbage.json()["error"] == "bad_body"  # as on every JSON endpoint
    assert "not valid JSON" in garbage.json()["message"]
    body = b'["a list"]'
    not_an_object = httpx.post(f"{service.url}/v1/webhooks/zammad", content=body, timeout=30,
                               headers={"Content-Type": "application/json", **zammad_sign(body)})
    assert not_an_object.status_code == 422 and not_an_object.json()["error"] == "invalid_payload"


def test_helpdesk_down_delays_the_write_back_and_does_not_lose_it(service, helpdesk):
    helpdesk.status = 503
    try:
        payload = {"delivery": "evt-down-1", "data": {"ticket": "T-3001", "body": "我的优惠券为什么用不了"}}
        assert signed_send(service, "generic", payload, generic_sign).status_code == 202
        failed = helpdesk.wait_for(2, path_prefix="/own/tickets/T-3001/", ok_only=False)
        assert all(c["status"] == 503 for c in failed)
    finally:
        helpdesk.status = 200
    delivered = helpdesk.wait_for(1, path_prefix="/own/tickets/T-3001/", ok_only=True)
    attempts = helpdesk.calls(path_prefix="/own/tickets/T-3001/")
    assert len(delivered) == 1 and len({c["headers"]["idempotency-key"] for c in attempts}) == 1
    metrics = httpx.get(service.url + "/metrics").text
    assert 'kefu_outbox_deliveries_total{adapter="generic",outcome="retry"}' in metrics


def test_helpdesk_offline_then_back_on_the_same_port(service, helpdesk):
    helpdesk.stop()  # connection refused
    try:
        payload = {"delivery": "evt-off-1", "data": {"ticket": "T-4001", "body": "locked out after resetting my password twice, help"}}
        assert signed_send(service, "generic", payload, generic_sign).status_code == 202
        time.sleep(1.0)
    finally:
        helpdesk.start()
    assert len(helpdesk.wait_for(1, path_prefix="/own/tickets/T-4001/")) == 1


def test_the_queue_survives_a_restart(tmp_path, helpdesk):
    """Calls queued while the helpdesk was unreachable are delivered by the next process."""
    from triage.helpdesk import Deliverer, OutboundCall, Outbox, make_adapter

    adapter = make_adapter("generic", {"base_url": "http://127.0.0.1:9", "allow_unsigned": True,
                                       "fields": {"ticket_id": "id", "text": "text"}, "writeback_path": "/t/{ticket_id}"})
    outbox = Outbox(tmp_path / "outbox.db", base_delay=0.05, max_delay=0.1)
    assert outbox.enqueue("generic", "evt-restart", "T-5", [OutboundCall("POST", "/t/T-5", {"x": 1})])
    assert not outbox.enqueue("generic", "evt-restart", "T-5", [OutboundCall("POST", "/t/T-5", {"x": 1})])
    Deliverer(outbox, {"generic": adapter}).deliver_due()  # port 9: refused
    assert outbox.counts()["pending"] == 1 and "ConnectError" in outbox.calls()[0].last_error
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", base_delay=0.05, max_delay=0.1)
    adapter = make_adapter("generic", {"base_url": helpdesk.url + "/restart", "allow_unsigned": True,
                                       "fields": {"ticket_id": "id", "text": "text"}, "writeback_path": "/t/{ticket_id}"})
    deliverer = Deliverer(reopened, {"generic": adapter}).start()
    try:
        assert helpdesk.wait_for(1, path_prefix="/restart/t/T-5")[0]["json"] == {"x": 1}
    finally:
        deliverer.stop()
    assert reopened.counts() == {"pending": 0, "done": 1, "failed": 0}


def test_a_client_error_from_the_helpdesk_is_not_retried(tmp_path, helpdesk):
    from triage.helpdesk import Deliverer, OutboundCall, Outbox, make_adapter

    adapter = make_adapter("generic", {"base_url": helpdesk.url + "/reject", "allow_unsigned": True,
                                       "fields": {"ticket_id": "id", "text": "text"}, "writeback_path": "/t"})
    outbox = Outbox(tmp_path / "o.db", base_delay=0.01)
    outbox.enqueue("generic", "e1", "1", [OutboundCall("POST", "/t", {})])
    helpdesk.status = 422
    try:
        Deliverer(outbox, {"generic": adapter}).deliver_due()
    finally:
        helpdesk.status = 200
    assert outbox.counts()["failed"] == 1 and "HTTP 422" in outbox.calls("failed")[0].last_error
    outbox.close()

    from conftest import run_cli
    listed = run_cli("outbox", "list", "--db", str(tmp_path / "o.db"))
    assert listed.returncode == 0 and "failed 1" in listed.stdout and "HTTP 422" in listed.stdout
    assert "queued 1 failed call(s) again" in run_cli("outbox", "retry", "--db", str(tmp_path / "o.db")).stdout
    reopened = Outbox(tmp_path / "o.db")
    Deliverer(reopened, {"generic": adapter}).deliver_due()
    assert reopened.counts() == {"pending": 0, "done": 1, "failed": 0}
    missing = run_cli("outbox", "list", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "no write-back queue" in missing.stderr


def test_adapter_settings_are_validated():
    from triage.helpdesk import AdapterConfigError, make_adapter

    with pytest.raises(AdapterConfigError, match="webhook_secret"):
        make_adapter("zendesk", {"base_url": "https://x.zendesk.com", "email": "a@b.c", "api_token": "t"})
    with pytest.raises(AdapterConfigError, match="missing settings.*api_token"):
        make_adapter("zammad", {"base_url": "https://z", "webhook_secret": "s"})
    with pytest.raises(AdapterConfigError, match="unknown helpdesk adapter 'jira'"):
        make_adapter("jira", {})
    with pytest.raises(AdapterConfigError, match="KEFU_NOT_SET_ANYWHERE"):
        make_adapter("chatwoot", {"base_url": "https://c", "webhook_secret": "s",
                                  "api_access_token_env": "KEFU_NOT_SET_ANYWHERE"})


SIGNERS = {"zendesk": zendesk_headers, "freshdesk": freshdesk_sign, "zammad": zammad_sign,
           "chatwoot": chatwoot_sign, "generic": generic_sign}
CHATWOOT_MESSAGE = {"event": "message_created", "message_type": "incoming", "content": "where is my order",
                    "account": {"id": 3}, "conversation": {"id": 120}}


@pytest.mark.parametrize("adapter, payload, field, expected", [
    ("zendesk", {"type": "zen:event-type:ticket.created", "detail": "notadict"}, "'detail'", "an object"),
    ("zendesk", {"type": "zen:event-type:ticket.comment_added", "detail": {"id": 1, "subject": "hi"},
                 "event": {"comment": "str"}}, "'event.comment'", "an object"),
    ("zendesk", {"type": "zen:event-type:ticket.created", "detail": {"id": {"n": 1}, "subject": "hi"}},
     "'detail.id'", "an integer id"),
    ("zendesk", {"type": "zen:event-type:ticket.created", "detail": {"id": 1, "subject": "hi", "description": 7}},
     "'detail.description'", "a string"),
    ("zendesk", {"ticket": {"id": 1, "subject": "hi", "requester": {"name": {"first": "Dana"}}}},
     "'ticket.requester.name'", "a string, got an object"),
    ("zendesk", {"ticket": {"id": 1, "subject": "hi", "requester": {"name": 12345}}},
     "'ticket.requester.name'", "a string, got a number"),
    ("zendesk", {"ticket": {"id": 1, "subject": "hi", "requester": "Dana"}}, "'ticket.requester'", "an object"),
    ("zendesk", {"ticket": {"id": 1.5, "subject": "hi"}}, "'ticket.id'", "an integer id"),
    ("freshdesk", {"freshdesk_webhook": "x"}, "'freshdesk_webhook'", "an object"),
    ("freshdesk", {"freshdesk_webhook": {"ticket_id": 5, "ticket_subject": ["a"]}},
     "'freshdesk_webhook.ticket_subject'", "a string"),
    ("freshdesk", {"freshdesk_webhook": {"ticket_id": 5, "ticket_subject": "hi", "ticket_contact_name": 9}},
     "'freshdesk_webhook.ticket_contact_name'", "a string"),
    ("freshdesk", {"freshdesk_webhook": {"ticket_id": 5, "ticket_subject": "hi", "ticket_tags": {"vip": 1}}},
     "'freshdesk_webhook.ticket_tags'", "list of strings"),
    ("zammad", {"ticket": {"id": 1, "title": "x"}, "article": "text"}, "'article'", "an object"),
    ("zammad", {"ticket": {"id": 1, "title": "x", "customer": {"firstname": 5}}},
     "'ticket.customer.firstname'", "a string"),
    ("zammad", {"ticket": {"id": 1, "title": "x", "customer": "Priya"}}, "'ticket.customer'", "an object"),
    ("zammad", {"ticket": {"id": 1}, "article": {"body": {"html": "x"}, "sender": "Customer"}},
     "'article.body'", "a string"),
    ("zammad", {"ticket": {"id": 1, "title": "x"}, "article": {"internal": "no", "body": "x"}},
     "'article.internal'", "true or false"),
    ("zammad", {"ticket": "311"}, "'ticket'", "an object"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "conversation": [120]}, "'conversation'", "an object"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "content": {"text": "hi"}}, "'content'", "a string"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "sender": {"name": 42}}, "'sender.name'", "a string"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "account": 3}, "'account'", "an object"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "conversation": {"id": 120, "labels": "vip"}},
     "'conversation.labels'", "a list of strings, got a string"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "conversation": {"id": 120, "labels": ["vip", 7]}},
     "'conversation.labels.1'", "a string"),
    ("generic", {"delivery": "evt-t1", "data": {"ticket": "T-1", "body": "hi", "customer": 42}},
     "'data.customer'", "a string, got a number"),
    ("generic", {"delivery": "evt-t2", "data": {"ticket": "T-1", "body": ["hi"]}}, "'data.body'", "a string"),
    ("generic", {"delivery": "evt-t3", "data": {"ticket": {"id": 1}, "body": "hi"}}, "'data.ticket'", "id"),
    ("generic", {"delivery": {"n": 1}, "data": {"ticket": "T-1", "body": "hi"}}, "'delivery'", "a string"),
    ("generic", {"delivery": "evt-t4", "data": "T-1"}, "'data'", "an object"),
])
def test_a_signed_payload_with_a_wrong_type_is_422_naming_the_field(service, adapter, payload, field, expected):
    response = signed_send(service, adapter, payload, SIGNERS[adapter])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_payload"
    assert field in body["message"] and expected in body["message"], body["message"]


@pytest.mark.parametrize("adapter, payload, field", [
    ("zendesk", {"ticket": {"id": "../../admin", "subject": "hi", "description": "where is my order"}}, "'ticket.id'"),
    ("zendesk", {"type": "zen:event-type:ticket.created", "detail": {"id": "1/../../users", "subject": "hi"}},
     "'detail.id'"),
    ("freshdesk", {"freshdesk_webhook": {"ticket_id": "../../admin", "ticket_subject": "hi"}},
     "'freshdesk_webhook.ticket_id'"),
    ("zammad", {"ticket": {"id": "../users/1", "title": "hi"}}, "'ticket.id'"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "conversation": {"id": "../../../admin"}}, "'conversation.id'"),
    ("chatwoot", {**CHATWOOT_MESSAGE, "account": {"id": "1/../2"}}, "'account.id'"),
    ("generic", {"delivery": "evt-trav", "data": {"ticket": "../../admin", "body": "hi"}}, "'data.ticket'"),
    ("generic", {"delivery": "evt-slash", "data": {"ticket": "T-1/delete", "body": "hi"}}, "'data.ticket'"),
    ("generic", {"delivery": "evt-query", "data": {"ticket": "T-1?x=1", "body": "hi"}}, "'data.ticket'"),
])
def test_a_ticket_id_that_would_change_the_write_back_url_is_refused(service, helpdesk, adapter, payload, field):
    response = signed_send(service, adapter, payload, SIGNERS[adapter])
    assert response.status_code == 422 and response.json()["error"] == "invalid_payload", response.text
    assert field in response.json()["message"] and "id" in response.json()["message"]
    assert not [c for c in helpdesk.calls() if "admin" in c["path"] or "users" in c["path"]
                or "delete" in c["path"]]


def test_write_back_paths_are_built_from_checked_escaped_ids():
    """An InboundTicket made by other code goes through the same check when its URL is built."""
    from triage.helpdesk import InboundTicket, WebhookPayloadError, make_adapter
    from triage.helpdesk.base import url_id

    assert url_id("T-1009") == "T-1009" and url_id("org:7") == "org%3A7"
    for bad in ("../../admin", "a/b", "..", ".hidden", "a b", "", "x" * 129, "a..b"):
        with pytest.raises(WebhookPayloadError):
            url_id(bad)
    settings = {"zendesk": {"email": "e", "api_token": "t"}, "freshdesk": {"api_key": "k"},
                "zammad": {"api_token": "t"}, "chatwoot": {"api_access_token": "t"},
                "generic": {"fields": {"ticket_id": "id", "text": "text"}, "writeback_path": "/t/{ticket_id}"}}
    for name, extra in settings.items():
        adapter = make_adapter(name, {"base_url": "https://x", "allow_unsigned": True, **extra})
        with pytest.raises(WebhookPayloadError, match="ticket id"):
            adapter.writeback(InboundTicket("../../admin", "hi", "e", context={"account_id": "1"}), None)
    chatwoot = make_adapter("chatwoot", {"base_url": "https://x", "allow_unsigned": True, **settings["chatwoot"]})
    with pytest.raises(WebhookPayloadError, match="account id"):
        chatwoot.writeback(InboundTicket("5", "hi", "e", context={"account_id": "1/../2"}), None)


def test_generic_writeback_path_placeholders_are_checked_at_start():
    from triage.helpdesk import AdapterConfigError, make_adapter

    base = {"base_url": "https://x", "allow_unsigned": True, "fields": {"ticket_id": "id", "text": "text"}}
    for path in ("/t/{id}", "/t/{ticket_id.real}", "/t/{", 5):
        with pytest.raises(AdapterConfigError, match="writeback_path"):
            make_adapter("generic", {**base, "writeback_path": path})
    with pytest.raises(AdapterConfigError, match="dotted paths"):
        make_adapter("generic", {**base, "fields": {"ticket_id": 3, "text": "text"}, "writeback_path": "/t"})


def test_chatwoot_keeps_the_conversation_labels_as_a_list(service, helpdesk):
    payload = {**CHATWOOT_MESSAGE, "id": 77101, "content": "my parcel has not arrived yet",
               "conversation": {"id": 121, "labels": ["vip", " app ", "vip"]}}
    response = signed_send(service, "chatwoot", payload, chatwoot_sign)
    assert response.status_code == 202, response.text
    labels = next(c for c in helpdesk.wait_for(4, path_prefix="/cw/api/v1/accounts/3/conversations/121")
                  if c["path"].endswith("/labels"))["json"]["labels"]
    assert labels[:3] == ["vip", "app", "kefu"] and all(len(label) > 1 for label in labels)
    as_string = {**payload, "id": 77102, "conversation": {"id": 121, "labels": "vip"}}
    refused = signed_send(service, "chatwoot", as_string, chatwoot_sign)
    assert refused.status_code == 422 and "'conversation.labels'" in refused.json()["message"]


def test_a_customer_name_of_blank_or_null_is_no_name_and_missing_optional_objects_are_fine():
    from triage.helpdesk import make_adapter

    zammad = make_adapter("zammad", {"base_url": "https://z", "api_token": "t", "allow_unsigned": True})
    ticket = zammad.parse({"ticket": {"id": 3, "title": "refund?", "customer": {"firstname": " ", "lastname": None}},
                           "article": None})
    assert ticket.ticket_id == "3" and ticket.customer_name is None
    zendesk = make_adapter("zendesk", {"base_url": "https://z", "email": "e", "api_token": "t", "allow_unsigned": True})
    ticket = zendesk.parse({"ticket": {"id": 9, "subject": "hi", "description": None, "requester": None}})
    assert ticket.customer_name is None and ticket.text == "hi"
    freshdesk = make_adapter("freshdesk", {"base_url": "https://f", "api_key": "k", "allow_unsigned": True})
    ticket = freshdesk.parse({"freshdesk_webhook": {"ticket_id": 5, "ticket_subject": "x", "ticket_tags": ["a", "b"]}})
    assert ticket.context["tags"] == ["a", "b"]


def test_a_failed_enqueue_rolls_back_and_the_queue_keeps_working(tmp_path):
    """The reviewer's repro: a body that is not JSON used to leave the transaction open, so the next
    enqueue failed and a call marked done was pending again after a restart (sent twice)."""
    from triage.helpdesk import OutboundCall, Outbox

    path = tmp_path / "ob.db"
    outbox = Outbox(path)
    assert outbox.enqueue("x", "e1", "t1", [OutboundCall("PUT", "/a", {"n": 1})])
    with pytest.raises(TypeError, match="not JSON serializable"):
        outbox.enqueue("x", "e2", "t2", [OutboundCall("PUT", "/b", {"when": datetime.now()})])
    with pytest.raises(ValueError):  # NaN: httpx could never send it, so it must not be queued
        outbox.enqueue("x", "e2", "t2", [OutboundCall("PUT", "/b", {"score": float("nan")})])
    assert not outbox._db.in_transaction
    assert outbox.enqueue("x", "e3", "t3", [OutboundCall("PUT", "/c", {"n": 3})])
    outbox.mark_done(outbox.calls()[0].key)
    assert not outbox._db.in_transaction
    outbox.close()

    reopened = Outbox(path)
    assert [(c.call.path, c.status) for c in reopened.calls()] == [("/a", "done"), ("/c", "pending")]
    assert reopened._db.execute("SELECT event_id FROM events ORDER BY event_id").fetchall() == [("e1",), ("e3",)]
    assert reopened.enqueue("x", "e2", "t2", [OutboundCall("PUT", "/b", {"n": 2})])  # e2 was never recorded
    reopened.close()


def test_an_error_inside_the_enqueue_transaction_rolls_it_back(tmp_path, monkeypatch):
    import sqlite3

    from triage.helpdesk import OutboundCall, Outbox

    outbox = Outbox(tmp_path / "ob.db")

    class FailingConnection:
        def __init__(self, db):
            self.db = db

        def __getattr__(self, name):
            return getattr(self.db, name)

        def executemany(self, *args):
            raise sqlite3.OperationalError("disk I/O error")

    real = outbox._db
    outbox._db = FailingConnection(real)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        outbox.enqueue("x", "e1", "t1", [OutboundCall("PUT", "/a", {})])
    outbox._db = real
    assert not real.in_transaction and outbox.calls() == []
    assert outbox.enqueue("x", "e1", "t1", [OutboundCall("PUT", "/a", {})])  # the event was rolled back too
    outbox.close()


def test_a_call_that_cannot_be_sent_does_not_hold_up_the_queue(tmp_path, helpdesk):
    from triage.helpdesk import Deliverer, OutboundCall, Outbox, make_adapter

    adapter = make_adapter("generic", {"base_url": helpdesk.url + "/hol", "allow_unsigned": True,
                                       "fields": {"ticket_id": "id", "text": "text"}, "writeback_path": "/t"})
    outbox = Outbox(tmp_path / "o.db")
    outbox.enqueue("generic", "e1", "1", [OutboundCall("POST", "/t/bad\x00", {})])
    outbox.enqueue("generic", "e2", "2", [OutboundCall("POST", "/t/good", {"ok": True})])
    assert Deliverer(outbox, {"generic": adapter}).deliver_due() == 1
    assert outbox.counts() == {"pending": 0, "done": 1, "failed": 1}
    assert "InvalidURL" in outbox.calls("failed")[0].last_error
    outbox.close()
