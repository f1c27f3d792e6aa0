"""The bundled GGUF behind the batch scheduler (assistant/batching.py): llama.cpp through
llama-cpp-python's low-level API, one context with a unified KV cache shared by all sequences.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batching import Request, Scheduler, cut_at_stop
from .errors import GeneratorError


def _as_dicts(messages) -> list[dict[str, str]]:
    """Chat messages (generation.Message) as llama.cpp's chat template takes them."""
    if not messages:
        raise ValueError("messages must not be empty")
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass(frozen=True)
class _Sampler:
    chain: Any  # the llama_sampler chain: [grammar], then greedy or temperature sampling
    grammar: Any  # the chain's grammar sampler, or None
    greedy: bool


class LlamaNative:
    """llama.cpp through llama-cpp-python's low-level API: one unified KV cache for all sequences."""

    def __init__(self, path: Path, *, threads: int, context: int, slots: int, n_batch: int = 512):
        import llama_cpp
        import numpy as np
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        set_verbose(False)  # llama.cpp's own log lines, as Llama(verbose=False) does
        llama_cpp.llama_backend_init()
        C = self._c = llama_cpp
        self._model = _internals.LlamaModel(path_model=str(path),
                                            params=C.llama_model_default_params(), verbose=False)
        params = C.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = context, n_batch, n_batch
        params.n_seq_max = slots + 1  # sequence 0 holds the shared prefix
        params.kv_unified = True  # copies of the prefix share cells instead of duplicating them
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as Llama() runs it
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._mem = C.llama_get_memory(self._ctx.ctx)
        self._vocab = self._model.vocab
        self.n_ctx, self.n_batch = C.llama_n_ctx(self._ctx.ctx), n_batch
        self._batch = C.llama_batch_init(n_batch, 0, 1)
        eos, bos = self._model.token_eos(), self._model.token_bos()
        text = self._model.token_get_text
        self._formatter = Jinja2ChatFormatter(
            template=self._model.metadata()["tokenizer.chat_template"],
            eos_token=text(eos) if eos != -1 else "", bos_token=text(bos) if bos != -1 else "",
            stop_token_ids=[eos])
        self._buf = (ctypes.c_char * 256)()
        self._np = np
        self._n_vocab = C.llama_vocab_n_tokens(self._vocab)
        self._one = (C.llama_token_data * 1)()
        self._one_array = C.llama_token_data_array(self._one, 1, -1, False)

    def tokenize_chat(self, messages: list[dict[str, str]], prefill: str = "") -> list[int]:
        """The prompt tokens exactly as Llama.create_chat_completion builds them, then the
        start of the reply (`prefill`), if any."""
        result = self._formatter(messages=messages)
        return self._model.tokenize((result.prompt + prefill).encode("utf-8"),
                                    add_bos=not result.added_special, special=True)

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        b = self._batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
            b.seq_id[i][0] = seq
        b.n_tokens = len(entries)
        if (rc := self._c.llama_decode(self._ctx.ctx, b)) != 0:
            raise GeneratorError(f"llama_decode 失败（返回 {rc}）：上下文位置不足或输入无效")

    def new_sampler(self, temperature: float, grammar: str | None) -> Any:
        C = self._c
        chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        if grammar:
            g = C.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
            if not g:
                C.llama_sampler_free(chain)
                raise GeneratorError("GBNF 语法无法解析")
            C.llama_sampler_chain_add(chain, g)
        if temperature > 0:  # llama-cpp-python's create_chat_completion defaults
            for s in (C.llama_sampler_init_top_k(40), C.llama_sampler_init_top_p(0.95, 1),
                      C.llama_sampler_init_min_p(0.05, 1), C.llama_sampler_init_temp(temperature),
                      C.llama_sampler_init_dist(C.LLAMA_DEFAULT_SEED)):
                C.llama_sampler_chain_add(chain, s)
        else:
            C.llama_sampler_chain_add(chain, C.llama_sampler_init_greedy())
        return _Sampler(chain, C.llama_sampler_chain_get(chain, 0) if grammar else None,
                        greedy=temperature <= 0)

    def sample(self, sampler: Any, index: int) -> int:
        """The next token. Greedy under a grammar first takes the plain argmax and asks the
        grammar about that one token; only if it is refused does the grammar filter the whole
        vocabulary. The token is the same either way (llama.cpp's common sampler does this);
        the full pass over 151k tokens costs about as much as a decode step."""
        C = self._c
        if sampler.grammar is not None and sampler.greedy:
            logits = self._np.ctypeslib.as_array(C.llama_get_logits_ith(self._ctx.ctx, index),
                                                 shape=(self._n_vocab,))
            token = int(logits.argmax())
            one = self._one
            one[0].id, one[0].logit, one[0].p = token, float(logits[token]), 0.0
            self._one_array.size, self._one_array.selected = 1, -1
            C.llama_sampler_apply(sampler.grammar, ctypes.byref(self._one_array))
            if one[0].logit != float("-inf"):
                C.llama_sampler_accept(sampler.grammar, token)
                return token
        return C.llama_sampler_sample(sampler.chain, self._ctx.ctx, index)

    def free_sampler(self, sampler: Any) -> None:
        self._c.llama_sampler_free(sampler.chain)

    def piece(self, token: int) -> bytes:
        n = self._c.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0, False)
        return bytes(self._buf[:n]) if n > 0 else b""

    def is_eog(self, token: int) -> bool:
        return bool(self._c.llama_vocab_is_eog(self._vocab, token))

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        self._c.llama_memory_seq_cp(self._mem, src, dst, p0, p1)

    def seq_rm(self, seq: int) -> None:
        self._c.llama_memory_seq_rm(self._mem, seq, -1, -1)

    @property
    def ctx(self):
        return self._ctx.ctx


class BatchedLlamaGenerator:
    """The bundled GGUF answering up to `slots` streams at once (see the module docstring).

    Same interface as LlamaCppGenerator; closing a stream, or stopping early, frees its sequence
    at the scheduler's next step.
    """

    def __init__(self, model_path: Path | None = None, *, cache_dir: Path | None = None,
                 threads: int = 2, context: int = 8192, slots: int = 4, chunk: int = 32):
        if model_path is None and cache_dir is None:
            raise ValueError("give model_path, or cache_dir to assemble the bundled model in")
        from . import bundled_model

        self._model_path = Path(model_path) if model_path is not None else None
        self._cache_dir, self._threads, self._context = cache_dir, threads, context
        self.slots, self._chunk = slots, chunk
        name = self._model_path.stem if self._model_path else Path(bundled_model.MODEL_FILENAME).stem
        self.id = f"llama-cpp/{name.lower()}"
        self._native: LlamaNative | None = None
        self._scheduler: Scheduler | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Assemble (if needed) and load the model now instead of at the first question."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> tuple[LlamaNative, Scheduler]:
        with self._lock:
            if self._scheduler is None:
                from . import bundled_model

                path = bundled_model.gguf_to_load(self._model_path, self._cache_dir)
                try:
                    self._native = LlamaNative(path, threads=self._threads,
                                               context=self._context, slots=self.slots)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise bundled_model.load_failed(path, exc) from exc
                self._scheduler = Scheduler(self._native, self.slots, self._chunk)
            return self._native, self._scheduler

    def warm(self, messages, state_dir: Path | None = None) -> str:
        """Read these messages into sequence 0 as the shared prefix, or restore it from a file.

        Returns "restored", "computed" or "computed+saved", as LlamaCppGenerator.warm does.
        """
        from . import bundled_model

        payload = _as_dicts(messages)
        native, scheduler = self._ensure_loaded()
        tokens = native.tokenize_chat(payload)
        path = (bundled_model.state_file(state_dir, self.id, "seq0", payload)
                if state_dir else None)

        def job() -> str:
            if path is not None and path.is_file() and bundled_model.restore_seq_state(
                    native.ctx, 0, tokens, path):
                scheduler.prefix = tokens
                scheduler.touch()
                return "restored"
            scheduler.read_prefix(tokens)
            if path is None:
                return "computed"
            bundled_model.save_seq_state(native.ctx, 0, tokens, path)
            return "computed+saved"

        return scheduler.call(job)

    # The reply can be started in the prompt: `prefill` is read with it (about a quarter of the
    # cost of writing it) and the stream gives only what follows.
    prefills = True

    def stream(self, messages, *, max_tokens: int = 320, temperature: float = 0.0,
               stop: list[str] | None = None, grammar: str | None = None,
               prefill: str = "") -> Iterator[str]:
        """Stream the reply; the request joins the batch at the first next()."""
        # End of turn (<|im_end|>) is an end-of-generation token: the scheduler stops on it.
        return self._generate(_as_dicts(messages), max_tokens, temperature, stop or [], grammar,
                              prefill)

    def _generate(self, payload, max_tokens, temperature, stop, grammar, prefill=""
                  ) -> Iterator[str]:
        native, scheduler = self._ensure_loaded()
        req = Request(native.tokenize_chat(payload, prefill), max_tokens, temperature, grammar)
        scheduler.submit(req)
        try:
            yield from cut_at_stop(req.pieces(), stop)
        finally:
            req.cancelled.set()
            scheduler.wake()

    def close(self) -> None:
        """Stop the scheduler thread (open streams end with an error)."""
        if self._scheduler is not None:
            self._scheduler.close()
