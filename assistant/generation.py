"""LLM backends behind one streaming interface: llama.cpp (bundled GGUF), transformers, OpenAI HTTP."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from . import bundled_model
from .batching import cut_at_stop
from .config import Settings
from .errors import GeneratorError, MissingDependencyError

Role = Literal["system", "user", "assistant"]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")


@runtime_checkable
class Generator(Protocol):
    """Streams an answer to a chat; `id` names backend and model for logs and eval reports."""

    id: str

    def stream(self, messages: list[Message], *, max_tokens: int = 320,
               temperature: float = 0.0, stop: list[str] | None = None,
               grammar: str | None = None) -> Iterator[str]: ...
    # `grammar` (llama.cpp GBNF) constrains the output where the backend can; others ignore it.
    # A backend with `prefills = True` also takes `prefill=`: the reply's start, read with the
    # prompt instead of written (the stream gives only what follows it).


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    if not messages:
        raise ValueError("messages must not be empty")
    return [{"role": m.role, "content": m.content} for m in messages]


# --- Backends ---


class LlamaCppGenerator:
    """A GGUF model run by llama-cpp-python; one lock, so concurrent streams never interleave.

    llama-cpp-python keeps the previous prompt's tokens in its KV cache and re-evaluates only
    what follows the longest common prefix, so a fixed system prompt is processed once.
    """

    # Qwen's chat-template end of turn, should the model print it as text: a property of the
    # model family this backend runs, so the pipeline never names it.
    STOP = ("<|im_end|>",)

    def __init__(self, model_path: Path | None = None, *, cache_dir: Path | None = None,
                 threads: int = 2, context: int = 4096):
        if model_path is None and cache_dir is None:
            raise ValueError("give model_path, or cache_dir to assemble the bundled model in")
        self._model_path = Path(model_path) if model_path is not None else None
        self._cache_dir = cache_dir
        self._threads = threads
        self._context = context
        name = self._model_path.stem if self._model_path else Path(bundled_model.MODEL_FILENAME).stem
        self.id = f"llama-cpp/{name.lower()}"
        self._llama = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Assemble (if needed) and load the model now instead of at the first question."""
        with self._lock:
            self._ensure_loaded()

    def _ensure_loaded(self):
        if self._llama is not None:
            return self._llama
        path = bundled_model.gguf_to_load(self._model_path, self._cache_dir)
        from llama_cpp import Llama

        try:
            self._llama = Llama(model_path=str(path), n_threads=self._threads,
                                n_ctx=self._context, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise bundled_model.load_failed(path, exc) from exc
        return self._llama

    def stream(self, messages: list[Message], *, max_tokens: int = 320,
               temperature: float = 0.0, stop: list[str] | None = None,
               grammar: str | None = None) -> Iterator[str]:
        """Stream the reply; the lock is held until the iterator is exhausted or closed."""
        return self._generate(_as_dicts(messages), max_tokens, temperature,
                              [*(stop or []), *self.STOP], grammar)

    def warm(self, messages: list[Message], state_dir: Path | None = None) -> str:
        """Read these messages into the KV cache, or restore that cache from a state file.

        Reading the whole document costs about a minute on 2 cores; the KV state after it is
        ~110 MB and loads in under a second, so it is saved once per (model, prompt, context).
        Returns "restored", "computed" or "computed+saved".
        """
        payload = _as_dicts(messages)
        with self._lock:
            llama = self._ensure_loaded()
            path = (bundled_model.state_file(state_dir, self.id, self._context, payload)
                    if state_dir else None)
            if path is not None and path.is_file() and bundled_model.restore_state(llama, path):
                # One token through the restored cache pages the mmapped weights in now, not
                # during the first user's question.
                for _ in llama.create_chat_completion(messages=payload, stream=True, max_tokens=1):
                    pass
                return "restored"
            for _ in llama.create_chat_completion(messages=payload, stream=True, max_tokens=1):
                pass
            if path is None:
                return "computed"
            bundled_model.save_state(llama, path)
            return "computed+saved"

    def _generate(self, payload, max_tokens, temperature, stop, grammar) -> Iterator[str]:
        with self._lock:
            llama = self._ensure_loaded()
            try:
                chunks = llama.create_chat_completion(
                    messages=payload, stream=True, max_tokens=max_tokens,
                    temperature=temperature, stop=stop,
                    grammar=_compiled_grammar(grammar) if grammar else None)
                for chunk in chunks:
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        yield text
            except ValueError as exc:  # llama-cpp raises ValueError for a prompt beyond n_ctx
                raise GeneratorError(
                    f"生成失败：{exc}。提示词可能超出上下文长度 {self._context}，"
                    "请减少 ASSISTANT_TOP_K 或调大 ASSISTANT_LLM_CONTEXT。") from exc



@functools.lru_cache(maxsize=64)
def _compiled_grammar(text: str):
    """A parsed GBNF grammar; the same candidate set recurs for the same question."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


class OpenAIGenerator:
    """Any OpenAI-compatible server (llama-server, vLLM, Ollama, ...) over plain httpx SSE."""

    def __init__(self, base_url: str, *, model: str = "", api_key: str = "",
                 timeout: float = 120.0):
        import httpx

        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model or "default"
        self.id = f"openai/{self._model}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def stream(self, messages: list[Message], *, max_tokens: int = 320,
               temperature: float = 0.0, stop: list[str] | None = None,
               grammar: str | None = None) -> Iterator[str]:
        """POST one streaming chat completion and yield each content delta."""
        body = {"model": self._model, "messages": _as_dicts(messages), "stream": True,
                "max_tokens": max_tokens, "temperature": temperature}
        if stop:
            body["stop"] = stop
        if grammar:
            body["grammar"] = grammar  # llama.cpp's server enforces it; others ignore the field
        return self._generate(body)

    def _generate(self, body: dict) -> Iterator[str]:
        import httpx

        try:
            with self._client.stream("POST", self._url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise GeneratorError(
                        f"LLM 服务 {self._url} 返回错误 {response.status_code}："
                        f"{_error_detail(response.text)} —— 请检查 ASSISTANT_LLM_MODEL 与 "
                        "ASSISTANT_LLM_API_KEY，或查看该服务的日志。")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, ": keep-alive" comments, "event:" fields
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    text = self._delta(data)
                    if text:
                        yield text
        except httpx.TransportError as exc:
            raise GeneratorError(
                f"无法连接 LLM 服务 {self._url}：{exc!r}。请确认服务已启动，"
                "并检查 ASSISTANT_LLM_BASE_URL（例如 http://127.0.0.1:8080/v1）。") from exc

    def _delta(self, data: str) -> str:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GeneratorError(f"LLM 服务 {self._url} 发来无法解析的数据：{data[:200]!r}") from exc
        if "error" in event:
            raise GeneratorError(f"LLM 服务 {self._url} 在生成中报错：{_error_detail(data)}")
        choices = event.get("choices") or [{}]
        return (choices[0].get("delta") or {}).get("content") or ""


def _error_detail(text: str) -> str:
    """The server's own error message when it sent OpenAI-style JSON, else the raw body."""
    try:
        error = json.loads(text).get("error")
        return str(error.get("message", error) if isinstance(error, dict) else error)
    except (ValueError, AttributeError):
        return text[:300]


class TransformersGenerator:
    """Any local causal LM (a model directory, or a .gguf file) via transformers, streamed."""

    def __init__(self, model_path: str | Path):
        self._path = Path(model_path)
        self.id = f"transformers/{self._path.name}"
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now instead of at the first question."""
        with self._lock:
            self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                "transformers 后端需要可选依赖 —— 请运行 `pip install -e '.[hf]'`") from exc
        if not self._path.exists():
            raise GeneratorError(
                f"找不到本地模型 {self._path} —— 请把 ASSISTANT_LLM_MODEL 设为模型目录或 .gguf 文件")
        source, extra = self._path, {}
        if self._path.suffix == ".gguf":  # transformers dequantizes GGUF weights (needs `gguf`)
            source, extra = self._path.parent, {"gguf_file": self._path.name}
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **extra)
            model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, **extra)
        except Exception as exc:  # the library raises many types for a bad or partial model
            raise GeneratorError(
                f"无法用 transformers 加载模型 {self._path}：{exc}。"
                "请给出包含 config.json 与权重的本地目录，或 .gguf 文件。") from exc
        self._model, self._tokenizer = model.eval(), tokenizer

    def _encode(self, messages: list[dict[str, str]]):
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(messages, tokenize=False,
                                                   add_generation_prompt=True)
        else:
            prompt = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant:"
        return tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

    def stream(self, messages: list[Message], *, max_tokens: int = 320,
               temperature: float = 0.0, stop: list[str] | None = None,
               grammar: str | None = None) -> Iterator[str]:
        """Run generate() in a worker thread and yield text as its streamer produces it.

        transformers has no GBNF support: `grammar` is ignored and the pipeline's lenient
        parser reads the free text."""
        return self._generate(_as_dicts(messages), max_tokens, temperature, stop or [])

    def _generate(self, messages, max_tokens, temperature, stop) -> Iterator[str]:
        with self._lock:
            self._ensure_loaded()
            from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

            class _Cancelled(StoppingCriteria):
                def __call__(self, input_ids, scores, **kwargs) -> bool:
                    return cancel.is_set()

            tokenizer, cancel, errors = self._tokenizer, threading.Event(), []
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
            sampling = ({"do_sample": True, "temperature": temperature} if temperature > 0
                        else {"do_sample": False})
            pad = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
            kwargs = {**self._encode(messages), **sampling, "streamer": streamer,
                      "max_new_tokens": max_tokens, "pad_token_id": pad,
                      "stopping_criteria": StoppingCriteriaList([_Cancelled()])}

            def run() -> None:
                try:
                    self._model.generate(**kwargs)
                except Exception as exc:  # noqa: BLE001 -- re-raised in the reading thread
                    errors.append(exc)
                    streamer.end()

            worker = threading.Thread(target=run, name="transformers-generate", daemon=True)
            worker.start()
            try:
                yield from cut_at_stop(streamer, stop)
            finally:  # stops generate() at its next token if the reader quit early
                cancel.set()
                worker.join()
            if errors:
                raise GeneratorError(f"transformers 生成失败：{errors[0]}") from errors[0]


def make_generator(settings: Settings) -> Generator:
    """Build the backend settings.llm_backend names; models load lazily, on first use."""
    backend, model = settings.llm_backend, settings.llm_model
    if backend == "llama-cpp":
        if model and not model.endswith(".gguf"):
            raise GeneratorError(
                f"llama-cpp 后端的 ASSISTANT_LLM_MODEL 必须是 .gguf 文件路径，而不是 {model!r}；"
                "留空则使用随包附带的 Qwen2.5-Coder-1.5B。")
        path = Path(model) if model else None
        if settings.llm_parallel > 1:
            from .llama_batched import BatchedLlamaGenerator

            context = settings.llm_context + (settings.llm_parallel - 1) * settings.llm_slot_context
            return BatchedLlamaGenerator(path, cache_dir=settings.cache_dir,
                                         threads=settings.llm_threads, context=context,
                                         slots=settings.llm_parallel)
        return LlamaCppGenerator(path, cache_dir=settings.cache_dir,
                                 threads=settings.llm_threads, context=settings.llm_context)
    if backend == "openai":
        return OpenAIGenerator(settings.llm_base_url, model=model, api_key=settings.llm_api_key,
                               timeout=settings.llm_timeout)
    if backend == "transformers":
        if not model:
            raise GeneratorError(
                "transformers 后端需要 ASSISTANT_LLM_MODEL 指向本地模型目录（或 .gguf 文件）。")
        return TransformersGenerator(model)
    raise GeneratorError(
        f"未知的 LLM 后端 {backend!r}：请把 ASSISTANT_LLM_BACKEND 设为 llama-cpp、transformers 或 openai。")
