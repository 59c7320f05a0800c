"""The HTTP service, started for real with uvicorn on a loopback port (see conftest.service)."""

import json
import signal
import socket
import threading
import time

import httpx
import pytest

from conftest import KEYS

pytest.importorskip("fastapi")


def auth(name="read"):
    return {"Authorization": f"Bearer {KEYS[name]}"}


def post(service, path, body, key="read", **kwargs):
    return httpx.post(service.url + path, json=body, headers=auth(key), timeout=60, **kwargs)


def test_health_is_open_and_everything_else_needs_a_key(service):
    assert httpx.get(service.url + "/v1/health").json() == {"status": "ok"}
    missing = httpx.post(service.url + "/v1/triage", json={"text": "hi"})
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert "Bearer" in missing.headers["www-authenticate"]
    wrong = httpx.post(service.url + "/v1/triage", json={"text": "hi"}, headers={"X-API-Key": "not-a-key-at-all-123"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "unknown API key"
    ok = httpx.post(service.url + "/v1/triage", json={"text": "hi"}, headers={"X-API-Key": KEYS["read"]})
    assert ok.status_code == 200


def test_triage_zh_and_en(service):
    zh = post(service, "/v1/triage", {"text": "我的快递三天了还没到，订单号 2024112312345"}).json()
    assert zh["language"] == "zh-Hans" and zh["intent"]["category"] == "shipping"
    assert zh["entities"][0]["type"] == "order_number" and zh["urgency"]["due"]
    en = post(service, "/v1/triage", {"text": "I was charged twice for the same order, I want my money back now!",
                                      "received_at": "2026-11-24T09:00:00+08:00", "explain": True}).json()
    assert en["language"] == "en" and en["sentiment"]["score"] < 0
    assert en["urgency"]["due"].startswith("2026-11-2") and en["intent"]["explanation"]


def test_batch_reports_bad_messages_and_scores_the_rest(service):
    body = {"messages": [{"id": "a", "text": "退款什么时候到账"}, {"id": "b", "text": "   "},
                         {"id": "c", "text": "Can I change the delivery address?"}]}
    out = post(service, "/v1/triage:batch", body).json()
    assert out["failed"] == 1
    a, b, c = out["results"]
    assert a["id"] == "a" and a["result"]["intent"]["label"] == "refund" and a["error"] is None
    assert b["result"] is None and "whitespace" in b["error"]
    assert c["result"]["language"] == "en"
    too_many = post(service, "/v1/triage:batch", {"messages": [{"text": "hi"}] * 17})
    assert too_many.status_code == 422 and too_many.json()["details"][0]["field"] == "body.messages"


def test_batch_message_whose_text_is_not_a_string_fails_alone(service):
    wrong = [None, 42, True, ["hi"], {"text": "hi"}]
    body = {"messages": [{"id": str(i), "text": t} for i, t in enumerate(wrong)] + [{"id": "ok", "text": "我要退货"}]}
    out = post(service, "/v1/triage:batch", body)
    assert out.status_code == 200 and out.json()["failed"] == 5
    *failed, ok = out.json()["results"]
    assert [r["error"].split(";")[0] for r in failed] == [
        "text must be a string, got null", "text must be a string, got a number (42)",
        "text must be a string, got a boolean (true)", "text must be a string, got an array",
        "text must be a string, got an object"]
    assert all(r["result"] is None for r in failed) and [r["index"] for r in failed] == [0, 1, 2, 3, 4]
    assert ok["id"] == "ok" and ok["error"] is None and ok["result"]["intent"]["label"] == "return_exchange"
    # the batch's own shape is still checked for the whole request
    for shape in ({"messages": "hi"}, {"messages": [{"id": "no-text"}]}, {"messages": [{"text": "hi", "lang": "en"}]}):
        refused = post(service, "/v1/triage:batch", shape)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", shape
    assert post(service, "/v1/triage", {"text": None}).status_code == 422  # one message: nothing to fail alone


def test_assist_gives_answers_and_bilingual_drafts(service):
    out = post(service, "/v1/assist", {"text": "退款显示成功了，但是银行卡里一直没看到钱", "customer_name": "林女士"}).json()
    assert out["answers"] and out["answers"][0]["entry"]["intent"] == "refund"
    draft = out["draft"]
    assert draft["primary_language"] == "zh-Hans" and "林女士" in draft["zh"] and draft["en"]
    assert draft["kb_ids"] == [out["answers"][0]["id"]]
    filtered = post(service, "/v1/assist", {"text": "how long does shipping take", "filters": {"category": "shipping"},
                                            "draft": False}).json()
    assert filtered["draft"] is None and all(h["entry"]["category"] == "shipping" for h in filtered["answers"])
    bad = post(service, "/v1/assist", {"text": "x", "filters": {"colour": "red"}})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"].startswith("body.filters")


def test_kb_search(service):
    out = post(service, "/v1/kb/search", {"query": "how long does a refund take to reach my card", "k": 3}).json()
    assert len(out["hits"]) == 3 and out["hits"][0]["entry"]["category"] == "after_sales"
    assert 0 <= out["confidence"] <= 1


def test_kb_writes_need_the_scope_are_saved_and_searchable(service):
    entry = {"id": "gift-wrap-service", "intent": "product_inquiry",
             "question_zh": ["可以帮忙包装成礼物吗", "有没有礼品包装"], "answer_zh": "可以的，下单时勾选“礼品包装”，免费提供包装盒和贺卡。",
             "question_en": ["Can you gift wrap my order?"],
             "answer_en": "Sure, tick 'Gift wrapping' at checkout; the box and card are free."}
    denied = post(service, "/v1/kb/entries", {"entries": [entry]})
    assert denied.status_code == 403 and "kb:write" in denied.json()["message"]
    before = httpx.get(service.url + "/v1/info", headers=auth()).json()["knowledge_base"]
    added = post(service, "/v1/kb/entries", {"entries": [entry]}, key="admin").json()
    assert added["added"] == ["gift-wrap-service"] and added["entries"] == before["entries"] + 1
    assert added["version"] != before["version"] and (service.kb_dir / added["version"]).is_dir()
    hit = post(service, "/v1/kb/search", {"query": "能不能包装成礼物送人", "k": 1}).json()["hits"][0]
    assert hit["id"] == "gift-wrap-service"
    changed = post(service, "/v1/kb/entries", {"entries": [{**entry, "answer_en": "Yes, gift wrapping is free."}]},
                   key="admin").json()
    assert changed["updated"] == ["gift-wrap-service"] and changed["added"] == []
    invalid = post(service, "/v1/kb/entries", {"entries": [{"id": "x", "intent": "no_such_intent",
                                                             "question_en": ["q"], "answer_en": "a"}]}, key="admin")
    assert invalid.status_code == 422 and "no_such_intent" in invalid.json()["message"]
    removed = httpx.delete(service.url + "/v1/kb/entries/gift-wrap-service", headers=auth("admin")).json()
    assert removed["removed"] == ["gift-wrap-service"] and removed["entries"] == before["entries"]
    gone = httpx.delete(service.url + "/v1/kb/entries/gift-wrap-service", headers=auth("admin"))
    assert gone.status_code == 404


def test_kb_entry_ids_with_slashes_can_be_deleted(service):
    ids = ["faq/slash-1", "faq/slash-2", "faq/../slash-3", "faq//slash-4/"]
    entries = [{"id": i, "intent": "product_inquiry", "question_en": [f"Question {i}?"], "answer_en": "An answer."}
               for i in ids]
    assert post(service, "/v1/kb/entries", {"entries": entries}, key="admin").json()["added"] == ids
    # as is, and percent-encoded (needed where a client would rewrite `..` or `//`)
    for path in ("faq/slash-1", "faq%2Fslash-2", "faq%2F..%2Fslash-3", "faq%2F%2Fslash-4%2F"):
        removed = httpx.delete(f"{service.url}/v1/kb/entries/{path}", headers=auth("admin"))
        assert removed.status_code == 200 and removed.json()["removed"] == [ids.pop(0)], removed.text
    gone = httpx.delete(service.url + "/v1/kb/entries/faq/slash-1", headers=auth("admin"))
    assert gone.status_code == 404 and "faq/slash-1" in gone.json()["message"]


def test_feedback_round_trip(service):
    draft = post(service, "/v1/assist", {"text": "Where is my parcel? Tracking hasn't moved for 4 days"}).json()["draft"]
    ok = post(service, "/v1/feedback", {"draft_id": draft["id"], "action": "edited", "final_text": "Checking now.",
                                        "corrected_intent": "delivery_problem", "agent_id": "amy"})
    assert ok.status_code == 200 and ok.json() == {"status": "recorded", "draft_id": draft["id"]}
    unknown = post(service, "/v1/feedback", {"draft_id": "0" * 32, "action": "accepted"})
    assert unknown.status_code == 404
    no_text = post(service, "/v1/feedback", {"draft_id": draft["id"], "action": "edited"})
    assert no_text.status_code == 422 and "final_text" in no_text.json()["message"]
    bad_label = post(service, "/v1/feedback", {"draft_id": draft["id"], "action": "accepted",
                                               "corrected_intent": "teleport"})
    assert bad_label.status_code == 422 and bad_label.json()["details"][0]["field"] == "body.corrected_intent"


def test_info_reports_model_and_knowledge_base_versions(service):
    info = httpx.get(service.url + "/v1/info", headers=auth()).json()
    assert info["model_version"].startswith("default-") and "refund" in info["model"]["labels"]["intent"]
    assert info["model"]["training_data"]["sha256"]
    assert info["knowledge_base"]["version"].startswith("v-") and info["knowledge_base"]["entries"] >= 199
    assert info["adapters"] == ["chatwoot", "freshdesk", "generic", "zammad", "zendesk"]


def test_rate_limit_per_key(service):
    codes = [post(service, "/v1/triage", {"text": "hello"}, key="limited").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    limited = post(service, "/v1/triage", {"text": "hello"}, key="limited")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "rate_limited"
    assert post(service, "/v1/triage", {"text": "hello"}).status_code == 200  # other keys are unaffected


def test_oversized_bodies_get_413(service):
    big = post(service, "/v1/triage", {"text": "退款" * 150_000})
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'{"text": "'
        for _ in range(300):
            yield b"a" * 1000
        yield b'"}'

    streamed = httpx.post(service.url + "/v1/triage", content=chunks(), timeout=60,
                          headers={**auth(), "Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_malformed_requests_say_what_is_wrong(service):
    broken = httpx.post(service.url + "/v1/triage", content=b'{"text": "unterminated', timeout=10,
                        headers={**auth(), "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"] == "bad_body"
    assert broken.json()["message"] == ("the request body is not valid JSON: Unterminated string starting at: "
                                        "line 1 column 10 (character 9)")
    typed = post(service, "/v1/assist", {"text": "hi", "k": 500})
    assert typed.status_code == 422 and typed.json()["details"][0]["field"] == "body.k"
    extra = post(service, "/v1/triage", {"text": "hi", "lang": "en"})
    assert extra.status_code == 422 and extra.json()["details"][0]["field"] == "body.lang"
    binary = httpx.post(service.url + "/v1/triage", content=b"\xff\xfe\x00garbage", timeout=10,
                        headers={**auth(), "Content-Type": "application/json"})
    assert binary.status_code == 400 and binary.json()["error"] == "bad_body"
    assert binary.json()["message"].startswith("the request body is not UTF-8 text: byte 0xff at offset 0")
    missing = httpx.get(service.url + "/v1/nothing-here", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    for response in (broken, typed, binary, missing):
        assert "Traceback" not in response.text and response.headers["x-request-id"]


def test_every_json_endpoint_refuses_a_body_that_is_not_utf8_json_with_400(service):
    bodies = {b'{"text": "hi"': "not valid JSON: Expecting ',' delimiter: line 1 column 14 (character 13)",
              b'{"text": "caf\xe9"}': "not UTF-8 text: byte 0xe9 at offset 13",
              '{"text": "hi"}'.encode("utf-16"): "not UTF-8 text: byte 0xff at offset 0"}  # JSON, but UTF-16
    for path in ("/v1/triage", "/v1/triage:batch", "/v1/assist", "/v1/kb/search", "/v1/kb/entries", "/v1/feedback"):
        for body, reason in bodies.items():
            response = httpx.post(service.url + path, content=body, timeout=10,
                                  headers={**auth("admin"), "Content-Type": "application/json"})
            assert response.status_code == 400, (path, body, response.text)
            assert response.json()["error"] == "bad_body" and reason in response.json()["message"], response.text


def test_received_at_is_bounded_and_a_bad_one_fails_its_batch_message_alone(service):
    for path in ("/v1/triage", "/v1/assist"):
        for when, year in (("9999-12-31T23:59:59+00:00", 9999), ("1969-12-31T23:59:59+00:00", 1969)):
            refused = post(service, path, {"text": "hi", "received_at": when})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"] == "invalid_request"
            assert refused.json()["details"] == [{"field": "body.received_at", "message": (
                f"Value error, the year {year} is out of range: give a time in the years 1970 to 2200, "
                "such as 2026-11-24T09:30:00+08:00")}]
    edge = post(service, "/v1/triage", {"text": "hi", "received_at": "2200-12-31T23:59:59-14:00"})
    assert edge.status_code == 200 and edge.json()["urgency"]["due"].startswith("2201-01-")
    body = {"messages": [
        {"id": "ok-1", "text": "where is my parcel, order 123456789", "received_at": "2026-11-24T09:30:00+08:00"},
        {"id": "far", "text": "hi", "received_at": "9999-12-31T23:59:59+00:00"},
        {"id": "unix", "text": "hi", "received_at": 1732400000},
        {"id": "no-offset", "text": "hi", "received_at": "2026-11-24T09:30:00"},
        {"id": "ok-2", "text": "我要退货"}]}
    out = post(service, "/v1/triage:batch", body)
    assert out.status_code == 200, out.text
    results = out.json()["results"]
    assert out.json()["failed"] == 3 and [r["index"] for r in results] == [0, 1, 2, 3, 4]
    hint = "expected an RFC 3339 date-time with its UTC offset, such as 2026-11-24T09:30:00+08:00"
    assert [(r["id"], r["error"]) for r in results] == [
        ("ok-1", None),
        ("far", "received_at: the year 9999 is out of range: give a time in the years 1970 to 2200, "
                "such as 2026-11-24T09:30:00+08:00"),
        ("unix", f"received_at: {hint}"), ("no-offset", f"received_at: {hint}"), ("ok-2", None)]
    assert all(r["result"] is None for r in results[1:4])
    alone = post(service, "/v1/triage", {"text": body["messages"][0]["text"],
                                         "received_at": "2026-11-24T09:30:00+08:00"})
    assert results[0]["result"]["urgency"]["due"] == alone.json()["urgency"]["due"]
    assert results[0]["result"]["intent"] == alone.json()["intent"]
    assert results[4]["result"]["intent"]["label"] == "return_exchange"


def test_a_json_body_needs_a_json_content_type(service):
    raw = json.dumps({"text": "where is my parcel"}).encode()
    for content_type, got in ((None, "it is missing"), ("application/x-www-form-urlencoded",
                                                         "got 'application/x-www-form-urlencoded'"),
                              ("text/plain", "got 'text/plain'")):
        headers = {**auth(), **({"Content-Type": content_type} if content_type else {})}
        refused = httpx.post(service.url + "/v1/triage", content=raw, headers=headers, timeout=10)
        assert refused.status_code == 415, refused.text
        assert refused.json() == {
            "error": "unsupported_media_type", "details": [], "request_id": refused.headers["x-request-id"],
            "message": f"send the body as JSON with 'Content-Type: application/json' ({got}); with curl add "
                       "-H 'Content-Type: application/json'"}
    for content_type in ("application/json; charset=utf-8", "application/vnd.kefu+json"):
        ok = httpx.post(service.url + "/v1/triage", content=raw, timeout=10,
                        headers={**auth(), "Content-Type": content_type})
        assert ok.status_code == 200, (content_type, ok.text)
    # GET endpoints take no body and need no content type
    assert httpx.get(service.url + "/v1/info", headers=auth()).status_code == 200


def _gift(entry_id, **change):
    return {"id": entry_id, "intent": "product_inquiry", "question_en": [f"Can I get {entry_id}?"],
            "answer_en": "Yes, at checkout.", **change}


def test_kb_entries_are_validated_as_a_whole_and_named_by_their_index_in_the_request(service):
    def entries(*items):
        return post(service, "/v1/kb/entries", {"entries": list(items)}, key="admin")

    def version():
        return httpx.get(service.url + "/v1/info", headers=auth()).json()["knowledge_base"]

    base = entries(_gift("wrap-a"))
    assert base.status_code == 200 and base.json()["added"] == ["wrap-a"]
    before = version()
    id_rule = "is not a valid id: use 1-128 letters, digits and _ . : / - starting with a letter or digit"
    for bad, shown in ((["x"], "['x']"), ({"a": 1}, "{'a': 1}"), (7, "7")):
        refused = entries(_gift("wrap-new"), {**_gift("x"), "id": bad})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "invalid_entry"
        assert refused.json()["details"] == [{"field": "body.entries.1.id", "message": f"{shown} {id_rule}"}]
    # the second entry is named by its own index, whether the first is new or replaces one
    for first in (_gift("wrap-a"), _gift("wrap-new")):
        refused = entries(first, _gift("new-bad", answer_en=3))
        assert refused.status_code == 422
        assert refused.json()["message"] == ("invalid knowledge-base entry: body.entries.1.answer_en (id 'new-bad'): "
                                             "expected text, got int")
        assert refused.json()["details"] == [{"field": "body.entries.1.answer_en", "message": "expected text, got int"}]
    twice = entries(_gift("wrap-a"), _gift(" wrap-a "))
    assert twice.status_code == 422 and twice.json()["details"] == [
        {"field": "body.entries.1.id", "message": "id 'wrap-a' is also the id of body.entries.0"}]
    assert version() == before  # nothing of a refused request was written, not even its good entries
    top = post(service, "/v1/kb/search", {"query": "Can I get wrap-new?", "k": 1}).json()["hits"][0]
    assert top["id"] != "wrap-new"
    # an existing id with surrounding spaces is that entry: replaced, as the docs say
    replaced = entries(_gift("  wrap-a ", answer_en="Replaced."), _gift("wrap-b"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["updated"] == ["wrap-a"] and replaced.json()["added"] == ["wrap-b"]
    assert replaced.json()["entries"] == before["entries"] + 1
    hit = post(service, "/v1/kb/search", {"query": "Can I get wrap-a?", "k": 1}).json()["hits"][0]
    assert hit["id"] == "wrap-a" and hit["entry"]["answer"] == "Replaced."
    for entry_id in ("wrap-a", "wrap-b"):
        assert httpx.delete(f"{service.url}/v1/kb/entries/{entry_id}", headers=auth("admin")).status_code == 200


def test_cors_is_off_unless_configured(service):
    preflight = httpx.options(service.url + "/v1/triage", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_metrics_count_requests_and_batches(service):
    post(service, "/v1/triage", {"text": "发票怎么开"})
    text = httpx.get(service.url + "/metrics").text
    assert 'kefu_http_requests_total{method="POST",route="/v1/triage",status="200"}' in text
    assert "kefu_model_batch_size_count" in text and "kefu_messages_triaged_total" in text


def test_concurrent_requests_are_batched_and_match_single_calls(service):
    texts = ["我要退货", "Where is my order?", "优惠券用不了", "cant remember my login password", "发票抬头写错了",
             "The blender arrived broken", "能开增值税专票吗", "cancel my order please"] * 3
    single = {t: post(service, "/v1/triage", {"text": t}).json()["intent"]["label"] for t in set(texts)}
    results = {}

    def worker(i, text):
        results[i] = post(service, "/v1/triage", {"text": text}).json()["intent"]["label"]

    threads = [threading.Thread(target=worker, args=(i, t)) for i, t in enumerate(texts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(texts))] == [single[t] for t in texts]
    metrics = httpx.get(service.url + "/metrics").text
    batched = [line for line in metrics.splitlines() if line.startswith('kefu_model_batch_size_bucket{kind="triage",le="1.0"}')]
    count = [line for line in metrics.splitlines() if line.startswith('kefu_model_batch_size_count{kind="triage"}')]
    assert float(batched[0].split()[-1]) < float(count[0].split()[-1])  # some batches held more than one request


def _accepted(server_port: int, client_port: int) -> bool:
    """Whether the server process has accept()ed our connection: in /proc/net/tcp a connection
    still waiting in the listen queue has inode 0."""
    wanted = (f"{server_port:04X}", f"{client_port:04X}")
    with open("/proc/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1].split(":")[1], fields[2].split(":")[1]) == wanted:
                return fields[9] != "0"
    return False


def test_graceful_shutdown_finishes_requests_in_flight(tmp_path):
    from service_support import ServiceProcess

    server = ServiceProcess({"allow_anonymous": True, "max_batch": 64}, tmp_path).start()
    body = json.dumps({"messages": [{"text": f"第{i}次问了，快递到底什么时候到？订单 2024{i:08d}"} for i in range(64)]},
                      ensure_ascii=False).encode("utf-8")
    head = (f"POST /v1/triage:batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    client = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    client.sendall(head + body[:100])  # the request has started: headers and part of the body
    deadline = time.monotonic() + 60
    while not _accepted(server.port, client.getsockname()[1]):
        assert time.monotonic() < deadline, "the server never accepted the connection"
        time.sleep(0.01)
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    client.sendall(body[100:])
    response = b""
    while chunk := client.recv(65536):
        response += chunk
    client.close()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so a supervisor sees the signal
    assert server.proc.wait(60) in (0, -signal.SIGTERM)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 200"), response[:300]
    assert len(json.loads(rest.split(b"\r\n\r\n", 1)[1])["results"]) == 64
    assert "Application shutdown complete" in server.log.read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    assert "Traceback" not in server.log.read_text()


def test_two_workers_share_the_load_metrics_and_knowledge_base_versions(tmp_path):
    from retrieval.search import KnowledgeBase
    from service_support import ServiceProcess
    from triage import INTENT_CATEGORIES

    faq = tmp_path / "faq.jsonl"
    faq.write_text(json.dumps({"id": "returns-window", "intent": "return_exchange",
                               "question_en": ["How long do I have to return an item?"],
                               "answer_en": "You can return most items within 7 days of delivery."}) + "\n",
                   encoding="utf-8")
    KnowledgeBase.from_file(faq, taxonomy=INTENT_CATEGORIES).save(tmp_path / "kb")
    server = ServiceProcess({"allow_anonymous": True, "knowledge_base": str(tmp_path / "kb")}, tmp_path,
                            workers=2).start()
    try:
        entry = {"id": "night-delivery", "intent": "delivery_options", "question_en": ["Do you deliver at night?"],
                 "answer_en": "Couriers deliver between 9:00 and 21:00."}
        assert httpx.post(server.url + "/v1/kb/entries", json={"entries": [entry]}, timeout=60).status_code == 200
        for _ in range(12):  # a new connection each time, so both workers answer some
            hits = httpx.post(server.url + "/v1/kb/search", json={"query": "can the parcel come at night", "k": 1},
                              timeout=60).json()["hits"]
            assert hits[0]["id"] == "night-delivery"
        for _ in range(20):
            httpx.post(server.url + "/v1/triage", json={"text": "我要退货"}, timeout=60)
        metrics = httpx.get(server.url + "/metrics").text
        line = next(x for x in metrics.splitlines()
                    if x.startswith('kefu_http_requests_total{method="POST",route="/v1/triage",status="200"}'))
        assert float(line.split()[-1]) == 20  # summed over both workers, whichever answered the scrape
    finally:
        status = server.stop()
    assert status == 0 and "exited with" not in server.log.read_text()


# ------------------------------------------------------------------ one bad message never fails others
# In process (TestClient) with the session's pipeline, so a fault can be planted in the model call;
# batch_wait_ms is long enough that requests sent together share one micro-batch.
GOOD = ["我要退货", "Where is my order? It's been 5 days", "优惠券用不了", "cant remember my login password",
        "发票抬头写错了", "The blender arrived broken, so I would like my money back", "能开增值税专票吗", "cancel my order please",
        "你们客服电话多少", "I was charged twice for order 2024112312345"]
WHEN = "2026-11-24T09:30:00+08:00"


@pytest.fixture(scope="module")
def inproc(default_triage):
    from fastapi.testclient import TestClient

    from triage.service import ServiceConfig, create_app

    app = create_app(ServiceConfig(allow_anonymous=True, batch_wait_ms=400, max_batch=64), triage=default_triage)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app.state.service


def _together(calls):
    """Run the callables at the same moment on their own threads; their results in order."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        out[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _planted(monkeypatch, state, method, poisoned):
    """Make `state.<method>` raise for any batch holding a poisoned item; records every call's items."""
    original = getattr(state, method)
    calls = []

    def faulty(first, *args, **kwargs):
        calls.append(list(first))
        if any(poisoned(item) for item in first):
            raise OverflowError("date value out of range")  # what the year-9999 arrival time raised
        return original(first, *args, **kwargs)

    monkeypatch.setattr(state, method, faulty)
    return calls


def test_a_message_that_raises_fails_alone_in_its_micro_batch(inproc, default_triage, monkeypatch):
    from datetime import datetime

    client, state = inproc
    expected = [json.loads(json.dumps(r.to_dict(), ensure_ascii=False)) for r in
                (default_triage.triage_batch([t], received_at=[datetime.fromisoformat(WHEN)])[0] for t in GOOD)]
    calls = _planted(monkeypatch, state, "triage_many", lambda text: text == "POISON")
    texts = GOOD[:5] + ["POISON"] + GOOD[5:]
    responses = _together([lambda t=t: client.post("/v1/triage", json={"text": t, "received_at": WHEN}) for t in texts])
    assert sorted(calls[0]) == sorted(texts)  # all in one micro-batch, which raised ...
    assert sorted(map(tuple, calls[1:])) == sorted((t,) for t in texts)  # ... so each ran alone
    bad = responses.pop(5)
    assert bad.status_code == 500 and bad.json() == {
        "error": "internal_error", "details": [], "request_id": bad.headers["x-request-id"],
        "message": "internal error; the server log has the details under this request id"}
    assert [r.status_code for r in responses] == [200] * len(GOOD)
    assert [r.json() for r in responses] == expected  # one-by-one results, exactly
    # a batch that does not raise takes one call
    calls.clear()
    again = _together([lambda t=t: client.post("/v1/triage", json={"text": t, "received_at": WHEN}) for t in GOOD[:4]])
    assert [r.status_code for r in again] == [200] * 4 and len(calls) == 1 and sorted(calls[0]) == sorted(GOOD[:4])


def test_an_assist_request_that_raises_fails_alone_in_its_micro_batch(inproc, default_triage, monkeypatch):
    client, state = inproc
    expected = [default_triage.assist(t, draft=False) for t in GOOD[:6]]
    calls = _planted(monkeypatch, state, "assist_many", lambda item: item[2] == "poison-name")
    bodies = [{"text": t, "draft": False} for t in GOOD[:6]]
    bodies.insert(3, {"text": "hi", "draft": False, "customer_name": "poison-name"})
    responses = _together([lambda b=b: client.post("/v1/assist", json=b) for b in bodies])
    assert len(calls[0]) == 7 and len(calls) == 8
    bad = responses.pop(3)
    assert bad.status_code == 500 and bad.json()["error"] == "internal_error"
    assert [r.status_code for r in responses] == [200] * 6
    for response, want in zip(responses, expected):
        body = response.json()
        assert body["intent"]["label"] == want.triage.intent.label and body["draft"] is None
        assert [a["id"] for a in body["answers"]] == [h.id for h in want.answers]
        assert body["knowledge_gap"] == want.knowledge_gap


def test_a_batch_message_that_raises_gets_its_own_error(inproc, monkeypatch):
    client, state = inproc
    clean = client.post("/v1/triage:batch", json={"messages": [{"id": str(i), "text": t, "received_at": WHEN}
                                                               for i, t in enumerate(GOOD[:3])]}).json()
    calls = _planted(monkeypatch, state, "triage_many", lambda text: text == "POISON")
    messages = [{"id": "0", "text": GOOD[0], "received_at": WHEN}, {"id": "boom", "text": "POISON"},
                {"id": "1", "text": GOOD[1], "received_at": WHEN},
                {"id": "late", "text": "hi", "received_at": "9999-01-01T00:00:00Z"},
                {"id": "2", "text": GOOD[2], "received_at": WHEN}]
    response = client.post("/v1/triage:batch", json={"messages": messages})
    assert response.status_code == 200 and len(calls) == 1 + len(messages)
    out = response.json()
    assert out["failed"] == 2 and [r["id"] for r in out["results"]] == ["0", "boom", "1", "late", "2"]
    boom, late = out["results"][1], out["results"][3]
    assert boom["result"] is None and boom["error"] == (
        "internal error while triaging this message; the server log has the details under request id "
        + response.headers["x-request-id"])
    assert late["result"] is None and late["error"].startswith("received_at: the year 9999 is out of range")
    good = [r for r in out["results"] if r["id"] in "012"]
    assert [r["error"] for r in good] == [None] * 3
    assert [r["result"] for r in good] == [r["result"] for r in clean["results"]]


def test_a_lone_request_that_raises_gets_500_and_the_service_carries_on(inproc, monkeypatch):
    client, state = inproc
    calls = _planted(monkeypatch, state, "triage_many", lambda text: text == "POISON")
    bad = client.post("/v1/triage", json={"text": "POISON"})
    assert bad.status_code == 500 and bad.json()["error"] == "internal_error"
    assert len(calls) == 1  # a batch of one is not run twice
    monkeypatch.undo()
    assert client.post("/v1/triage", json={"text": GOOD[0]}).json()["intent"]["label"] == "return_exchange"
