"""The on-disk index: FAISS vectors + clause store + BM25, a directory of plain files with a manifest.

Layout of an index directory:
  manifest.json   format, documents (id, sha256, metadata), embedder, dimension, chunker, file hashes
  clauses.jsonl   one Clause per line (ids, labels, offsets, text)
  chunks.jsonl    one Chunk per line, row i matches FAISS vector i
  faiss.index     inner-product index over L2-normalised chunk vectors
  sentences.npy   one L2-normalised vector per evidence sentence, in clause and sentence order
  bm25/           bm25s sparse index over clause tokens
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunking import Chunk, chunk_clauses, chunk_context, chunker_id
from .config import Settings
from .corpus import Chapter, Clause, Document, load_corpus
from .embedding import Embedder
from .errors import IndexCorruptError, IndexMissingError, IndexStaleError, MissingDependencyError
from .lexical import Tokenizer

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: sentences.npy
MANIFEST = "manifest.json"
DATA_FILES = ("clauses.jsonl", "chunks.jsonl", "faiss.index", "sentences.npy")
REBUILD_HINT = "请运行 `assistant index build` 重建索引。"


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependencyError("未安装 faiss-cpu —— 请运行 `pip install -e .`") from exc
    return faiss


def make_faiss_index(vectors: np.ndarray, kind: str = "flat"):
    """Inner-product FAISS index: exact "flat", or approximate "hnsw" / "ivf" for large corpora."""
    faiss = _faiss()
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    elif kind == "ivf":
        nlist = max(1, min(4096, int(np.sqrt(n))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    else:
        raise ValueError(f"unknown index kind {kind!r}: use flat, hnsw or ivf")
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass
class ClauseIndex:
    """Everything retrieval needs, loaded from (or about to be written to) one directory."""

    manifest: dict
    documents: list[Document]
    clauses: list[Clause]
    chunks: list[Chunk]
    vectors_index: object  # faiss.Index
    bm25: object  # bm25s.BM25
    tokenizer: Tokenizer
    sentence_vectors: np.ndarray  # row i: the i-th sentence of all clauses' sentences, in order

    def __post_init__(self) -> None:
        self.by_id = {c.id: c for c in self.clauses}
        self.sentence_rows = {s.id: i for i, s in enumerate(
            s for c in self.clauses for s in c.sentences)}

    def clause(self, clause_id: str) -> Clause:
        """The clause with this id; KeyError if absent."""
        return self.by_id[clause_id]

    def chapters(self) -> list[Chapter]:
        """All chapters of all documents, in order."""
        return [ch for d in self.documents for ch in d.chapters]


# ---------------------------------------------------------------- build


def _bm25_params(settings: Settings) -> dict[str, float]:
    return {"k1": settings.bm25_k1, "b": settings.bm25_b}


def _source_state(source_dir: Path) -> list[dict]:
    """Per-document id + sha256 of what is on disk now (cheap: hashes only, no parsing)."""
    return [
        {"doc_id": p.stem, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(Path(source_dir).rglob("*.txt"))
    ]


def build_index(settings: Settings, embedder: Embedder, progress: bool = False) -> ClauseIndex:
    """Parse every document, chunk, embed, and build the FAISS and BM25 indexes in memory."""
    documents = load_corpus(settings.source_dir)
    clauses = [c for d in documents for c in d.clauses]
    chunks = chunk_clauses(clauses, settings.chunk_chars, settings.chunk_overlap)
    vectors = _embed_texts(embedder, [c.text for c in chunks], settings.embed_batch_size,
                           progress)
    # Each evidence sentence with its clause's heading, as the chunks are: answers choose
    # sentences by meaning too, not only by the words they share with the question.
    sentences = [chunk_context(c) + s.text for c in clauses for s in c.sentences]
    sentence_vectors = _embed_texts(embedder, sentences, settings.embed_batch_size, progress,
                                    desc="嵌入句子")
    tokenizer = Tokenizer.for_documents(settings.bm25_tokenizer, documents)
    bm25 = tokenizer.build_bm25([c.chapter + " " + c.text for c in clauses],
                                settings.bm25_k1, settings.bm25_b)
    manifest = {
        "format_version": FORMAT_VERSION,
        "documents": [
            {"doc_id": d.doc_id, "sha256": d.sha256, "title": d.title, "source": d.source,
             "date": d.date, "n_clauses": len(d.clauses)}
            for d in documents
        ],
        "embedder": embedder.id,
        "embedder_spec": settings.embedder,
        "dimension": int(vectors.shape[1]),
        "chunker": chunker_id(settings.chunk_chars, settings.chunk_overlap),
        "index_kind": settings.index_kind,
        "bm25_tokenizer": tokenizer.id,
        "bm25_params": _bm25_params(settings),
        "n_clauses": len(clauses),
        "n_chunks": len(chunks),
        "n_sentences": len(sentences),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return ClauseIndex(manifest, documents, clauses, chunks,
                       make_faiss_index(vectors, settings.index_kind), bm25, tokenizer,
                       sentence_vectors)


def _embed_texts(embedder: Embedder, texts: list[str], batch: int, progress: bool,
                 desc: str = "嵌入条款") -> np.ndarray:
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(texts), desc=desc, unit="块", disable=not progress) as bar:
        for i in range(0, len(texts), batch):
            part = texts[i:i + batch]
            parts.append(embedder.encode(part, kind="passage"))
            bar.update(len(part))
    return np.concatenate(parts).astype(np.float32)


# ---------------------------------------------------------------- save / load


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_index(index: ClauseIndex, directory: Path) -> None:
    """Write atomically: build in a sibling temp dir, then swap it in with renames."""
    faiss = _faiss()
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        with open(tmp / "clauses.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(dataclasses.asdict(c), ensure_ascii=False) + "\n" for c in index.clauses)
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(dataclasses.asdict(ch), ensure_ascii=False) + "\n" for ch in index.chunks)
        faiss.write_index(index.vectors_index, str(tmp / "faiss.index"))
        np.save(tmp / "sentences.npy", np.ascontiguousarray(index.sentence_vectors, np.float32))
        index.bm25.save(str(tmp / "bm25"))
        files = {name: _sha256_file(tmp / name) for name in DATA_FILES}
        files.update({f"bm25/{p.name}": _sha256_file(p) for p in sorted((tmp / "bm25").iterdir())})
        manifest = dict(index.manifest, files=files)
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        _swap_in(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, directory: Path) -> None:
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(directory: Path) -> dict:
    """The manifest, or IndexMissingError / IndexCorruptError."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise IndexMissingError(f"索引目录 {directory} 中没有索引。{REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (ValueError, OSError) as exc:
        raise IndexCorruptError(f"索引清单 {path} 已损坏（{exc}）。{REBUILD_HINT}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(f"索引清单 {path} 的格式版本不符。{REBUILD_HINT}")
    return manifest


def check_fresh(manifest: dict, settings: Settings) -> None:
    """Raise IndexStaleError if the documents, embedder or chunker differ from the settings."""
    current = _source_state(settings.source_dir)
    built = [{"doc_id": d["doc_id"], "sha256": d["sha256"]} for d in manifest.get("documents", [])]
    reasons = []
    if current != built:
        reasons.append("原文文件已变化")
    if manifest.get("embedder_spec") != settings.embedder:
        reasons.append(f"向量模型不同（索引：{manifest.get('embedder_spec')}，配置：{settings.embedder}）")
    if manifest.get("chunker") != chunker_id(settings.chunk_chars, settings.chunk_overlap):
        reasons.append("切分方式已变化")
    if manifest.get("bm25_tokenizer", "").split(":")[0] != settings.bm25_tokenizer:
        reasons.append("BM25 分词方式已变化")
    if manifest.get("bm25_params") != _bm25_params(settings):
        reasons.append("BM25 参数已变化")
    if manifest.get("index_kind") != settings.index_kind:
        reasons.append("索引类型已变化")
    if reasons:
        raise IndexStaleError(f"索引已过期：{'；'.join(reasons)}。{REBUILD_HINT}")


def load_index(settings: Settings) -> ClauseIndex:
    """Load and verify an index directory; every failure is a clear IndexError subclass."""
    directory = Path(settings.index_dir)
    manifest = read_manifest(directory)
    check_fresh(manifest, settings)
    files = manifest.get("files") or {}
    for name in DATA_FILES:
        if name not in files:
            raise IndexCorruptError(f"索引清单缺少文件 {name} 的记录。{REBUILD_HINT}")
    for name, digest in files.items():
        path = directory / name
        if not path.exists():
            raise IndexCorruptError(f"索引文件 {path} 缺失。{REBUILD_HINT}")
        if _sha256_file(path) != digest:
            raise IndexCorruptError(f"索引文件 {path} 已损坏或被截断（校验和不符）。{REBUILD_HINT}")
    try:
        return _read_files(directory, manifest, settings)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise IndexCorruptError(f"索引目录 {directory} 无法读取（{exc}）。{REBUILD_HINT}") from exc


def _read_files(directory: Path, manifest: dict, settings: Settings) -> ClauseIndex:
    faiss = _faiss()
    with open(directory / "clauses.jsonl", encoding="utf-8") as f:
        clauses = [Clause(**json.loads(line)) for line in f]
    with open(directory / "chunks.jsonl", encoding="utf-8") as f:
        chunks = [Chunk(**json.loads(line)) for line in f]
    vectors_index = faiss.read_index(str(directory / "faiss.index"))
    if vectors_index.ntotal != len(chunks) or vectors_index.d != manifest["dimension"]:
        raise ValueError("faiss.index does not match chunks.jsonl / manifest dimension")
    # Documents are re-parsed from the (hash-checked) source: cheap, and keeps one parser.
    documents = load_corpus(settings.source_dir)
    if [c.id for d in documents for c in d.clauses] != [c.id for c in clauses]:
        raise ValueError("clauses.jsonl does not match the parsed documents")
    tokenizer = Tokenizer.for_documents(settings.bm25_tokenizer, documents)
    if tokenizer.id != manifest.get("bm25_tokenizer"):  # same kind, other terms or stop list
        raise IndexStaleError(f"索引已过期：BM25 分词的词表或停用词已变化。{REBUILD_HINT}")
    bm25 = tokenizer.load_bm25(str(directory / "bm25"))
    index = ClauseIndex(manifest, documents, clauses, chunks, vectors_index, bm25, tokenizer,
                        np.load(directory / "sentences.npy", allow_pickle=False))
    if index.sentence_vectors.shape != (len(index.sentence_rows), manifest["dimension"]):
        raise ValueError("sentences.npy does not match the clauses' sentences / dimension")
    return index


def check_embedder(manifest: dict, embedder: Embedder) -> None:
    """Raise IndexStaleError if the vectors were made by another model than `embedder`.

    The settings' embedder spec can stay the same while the model behind it changes (another
    checkpoint at the same path, another dimension); its vectors would then be meaningless.
    """
    built = (manifest.get("embedder"), manifest.get("dimension"))
    current = (embedder.id, getattr(embedder, "dim", manifest.get("dimension")))
    if built != current:
        raise IndexStaleError(f"索引由另一个向量模型构建（索引：{built[0]}，{built[1]} 维；"
                              f"当前：{current[0]}，{current[1]} 维）。{REBUILD_HINT}")


def open_index(settings: Settings, embedder: Embedder, progress: bool = False) -> ClauseIndex:
    """Load the index; if missing, stale or corrupt, rebuild it (auto_rebuild) or re-raise."""
    try:
        index = load_index(settings)
        check_embedder(index.manifest, embedder)
        return index
    except (IndexMissingError, IndexStaleError, IndexCorruptError) as exc:
        if not settings.auto_rebuild:
            raise
        log.warning("重建索引：%s", exc)
    index = build_index(settings, embedder, progress=progress)
    save_index(index, settings.index_dir)
    return index
