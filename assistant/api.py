"""One ASGI app: the chat page at `/`, OpenAI-compatible and document APIs under `/v1`, `/healthz`.

Handlers parse, call one Service method in a worker thread, and translate domain errors into
OpenAI-style JSON errors ({"error": {"message", "type", "param", "code"}}); no request error
is a 500 or shows a stack trace. Embedding runs in its own thread pool, so it never queues
behind an answer being generated.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.sse import EventSourceResponse, format_sse_event

from .api_errors import ApiError, BodyLimit, error_response, install_error_handlers
from .api_schemas import (
    CHAT_STREAM,
    ChatRequest,
    EmbeddingRequest,
    FeedbackRequest,
    SearchRequest,
    error_responses,
)
from .answer import Answer, Turn, validate_question
from .errors import AssistantError, public_message
from .service import Service
from .streaming import AnswerStream, Queued, aiterate

log = logging.getLogger(__name__)


async def _in_thread(pool: ThreadPoolExecutor, fn: Callable, *args):
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def _chat_history(service: Service, req: ChatRequest) -> tuple[str, list[Turn]]:
    """The question (last user message) and the earlier user → assistant pairs as Turns."""
    if len(req.messages) > service.settings.api_max_messages:
        raise ApiError(400, f"消息过多：每次请求最多 {service.settings.api_max_messages} 条。",
                       "messages", "too_many_messages")
    talk = [m for m in req.messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user":
        raise ApiError(400, "最后一条消息必须是用户的提问（role 为 user）。", "messages",
                       "last_message_not_user")
    question = validate_question(talk[-1].text(), service.settings.max_question_chars)
    turns, pending = [], None
    for m in talk[:-1]:
        if m.role == "user":
            pending = m.text()
        elif pending is not None and m.text().strip():
            turns.append(service.turn(pending, m.text()))
            pending = None
    return question, turns


def _citations(answer: Answer) -> list[dict]:
    return [c.to_dict() for c in answer.citations]


def _answer_extras(answer: Answer) -> dict:
    """Fields beyond OpenAI's: whether the answer is a refusal, how it was produced, the
    follow-up rewritten as a standalone question."""
    return {"refused": answer.refused, "mode": answer.mode,
            "direct_answer": answer.direct_answer,
            "rewritten_question": answer.rewritten_question,
            "timings_ms": answer.reported_timings()}


def create_app(service: Service, ui: bool = True) -> FastAPI:
    """The FastAPI app; with ui=True the Gradio chat page is mounted at `/`."""
    # Every admitted answer has a thread of its own, so a queued answer waits for the LLM (and
    # can leave the line when its client goes) instead of waiting for a thread; feedback writes
    # never queue behind answers.
    pools = _Pools(ThreadPoolExecutor(max_workers=8, thread_name_prefix="api-embed"),
                   ThreadPoolExecutor(max_workers=service.settings.answer_queue_size,
                                      thread_name_prefix="api-answer"),
                   ThreadPoolExecutor(max_workers=4, thread_name_prefix="api-work"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await _in_thread(pools.work, service.start)  # no-op for parts already loaded
        yield
        service.close()
        for pool in (pools.embed, pools.answer, pools.work):
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="川东北经济区政策问答助手 API", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="OpenAI-compatible embeddings and chat completions over one policy "
                              "document, plus search, the document outline and feedback. The chat "
                              "page is served at `/`.")
    install_error_handlers(app)
    # Not FastAPI(max_body_size=): 0.165 answers a declared oversize body with plain-text 413.
    app.add_middleware(BodyLimit, max_bytes=service.settings.api_max_body_bytes)
    if service.settings.api_cors_origins:  # off by default: browsers on other sites get no access
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(service.settings.api_cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization",
                                                                          "Content-Type"])
    _offline_docs(app)
    _document_routes(app, service, pools)
    _openai_routes(app, service, pools)
    _fallback_route(app)
    if ui:
        import gradio as gr

        from .ui import CSS, build_app

        app = gr.mount_gradio_app(app, build_app(service), path="/", ssr_mode=False, css=CSS,
                                  footer_links=[])
    return app


@dataclass
class _Pools:
    """Embedding and search never queue behind generation: they have their own threads."""

    embed: ThreadPoolExecutor
    answer: ThreadPoolExecutor  # one thread per answer slot (Settings.answer_queue_size)
    work: ThreadPoolExecutor  # feedback writes, start-up


def _document_routes(app: FastAPI, service: Service, pools: _Pools) -> None:
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict:
        """Index document sha256, embedder id, LLM backend id and whether answering is ready."""
        return service.status()

    @app.post("/v1/search", tags=["document"], responses=error_responses(400, 413, 422, 503))
    async def search(req: SearchRequest) -> dict:
        """Top-k clauses, the same JSON as `assistant search --json`."""
        query = validate_question(req.query, service.settings.max_question_chars)
        result = await _in_thread(pools.embed, service.search, query, req.k)
        return result.to_dict()

    @app.get("/v1/clauses", tags=["document"], responses=error_responses(503))
    async def clauses() -> dict:
        """The document outline: title, source, date, chapters with their clauses."""
        return service.outline().to_dict()

    @app.get("/v1/clauses/{clause_id}", tags=["document"], responses=error_responses(404, 503))
    async def clause(clause_id: str) -> dict:
        """One clause: label, chapter, title, text and its offsets in the source text."""
        try:
            c = service.clause(clause_id)
        except KeyError:
            raise ApiError(404, f"没有编号为 {clause_id[:40]!r} 的条款；可用编号见 GET /v1/clauses。",
                           "clause_id", "clause_not_found") from None
        return c.to_dict()

    @app.post("/v1/feedback", tags=["feedback"], status_code=201,
              responses=error_responses(400, 413, 422, 500, 503))
    async def feedback(req: FeedbackRequest) -> dict:
        """Store a 👍/👎 rating of an answer (SQLite under the data directory)."""
        cites = [c.model_dump(include={"clause_id", "sentence_id", "label", "quote", "verified"})
                 for c in req.citations]
        fid = await _in_thread(pools.work, service.add_feedback, req.question, req.answer, cites,
                               req.rating, req.reason)
        return {"id": fid, "object": "feedback"}


def _openai_routes(app: FastAPI, service: Service, pools: _Pools) -> None:
    @app.get("/v1/models", tags=["openai"])
    async def models() -> dict:
        names = service.chat_models() + service.embedding_models()
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0,
                                            "owned_by": "local"} for n in names]}

    @app.post("/v1/embeddings", tags=["openai"],
              responses=error_responses(400, 404, 413, 422, 503))
    async def embeddings(req: EmbeddingRequest) -> dict:
        """OpenAI-compatible embeddings; `input_type` (query | passage) selects the e5 mode."""
        texts = [req.input] if isinstance(req.input, str) else req.input
        _check_embedding_request(service, req, texts)
        with service.embedding_slot():  # shed load (503) rather than queue behind a flood
            vectors, tokens = await _in_thread(pools.embed, _embed_with_usage, service, texts,
                                               req.input_type)
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                 if req.encoding_format == "base64" else v.tolist()} for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": service.embedder.id,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @app.post("/v1/chat/completions", tags=["openai"], responses={
        200: {"content": CHAT_STREAM,
              "description": "A chat.completion, or with `stream: true` its chunks as SSE."},
        **error_responses(400, 404, 413, 422, 500, 503)})
    async def chat(req: ChatRequest, request: Request):
        """OpenAI-compatible chat: answers the last user message from the policy document.

        Verified citations come as `citations` on the message (or on the final chunk's delta
        when streaming): `[{clause_id, label, quote, verified}]`.
        """
        if req.model not in service.chat_models():
            raise ApiError(404, f"模型 {req.model!r} 不存在；可用：{', '.join(service.chat_models())}",
                           "model", "model_not_found")
        question, history = _chat_history(service, req)
        # Admission happens here, so "loading" and "queue full" are 503s before streaming starts.
        answer_stream = service.stream(question, history, req.style)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": service.llm_id}
        events = aiterate(answer_stream, pools.answer)
        if req.stream:
            return EventSourceResponse(_sse(events, meta, request, answer_stream),
                                       headers={"Cache-Control": "no-cache"})
        answer = [event async for event in events if isinstance(event, Answer)][-1]
        message = {"role": "assistant", "content": answer.text, "citations": _citations(answer)}
        return {**meta, "object": "chat.completion", **_answer_extras(answer),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


class _NoSuchRoute:
    """Unknown /v1 paths get an OpenAI-style 404, and a known path with a method it does not
    take a 405 with an Allow header, instead of the chat page's plain 404.

    An ASGI class rather than a function, so that Starlette routes every method to it (even
    TRACE or QUERY); a function endpoint would only get GET.
    """

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path, method = scope["path"], scope["method"]
        allowed = sorted({m for r in self.app.routes if isinstance(r, APIRoute)
                          and r.path_regex.match(path) for m in r.methods})
        if allowed:
            response = error_response(405, f"{path[:200]} 不支持 {method} 请求。",
                                      code="method_not_allowed",
                                      headers={"Allow": ", ".join(allowed)})
        else:
            response = error_response(404, f"没有这个接口：{path[:200]}", code="not_found")
        await response(scope, receive, send)


def _fallback_route(app: FastAPI) -> None:
    for route in ("/healthz", "/v1", "/v1/{path:path}"):
        app.router.add_route(route, _NoSuchRoute(app), include_in_schema=False)


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle wheel: FastAPI's default needs a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} — 接口文档",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png")


def _check_embedding_request(service: Service, req: EmbeddingRequest, texts: list[str]) -> None:
    s = service.settings
    if req.model not in service.embedding_models():
        raise ApiError(404, f"向量模型 {req.model!r} 不存在；可用：{', '.join(service.embedding_models())}",
                       "model", "model_not_found")
    if not texts:
        raise ApiError(400, "input 不能为空列表。", "input", "empty_input")
    if len(texts) > s.api_max_batch:
        raise ApiError(413, f"一次最多嵌入 {s.api_max_batch} 条文本，收到 {len(texts)} 条。",
                       "input", "too_many_inputs")
    for i, t in enumerate(texts):
        if not t.strip():
            raise ApiError(400, f"第 {i} 条输入为空。", "input", "empty_input")
        if len(t) > s.api_max_input_chars:
            raise ApiError(413, f"第 {i} 条输入过长（{len(t)} 字符，上限 {s.api_max_input_chars}）。",
                           "input", "input_too_long")
    dim = service.embedder.dim
    if req.dimensions is not None and req.dimensions != dim:
        raise ApiError(400, f"该模型的向量维度固定为 {dim}，不支持 dimensions={req.dimensions}。",
                       "dimensions", "dimensions_not_supported")


def _embed_with_usage(service: Service, texts: list[str], kind: str):
    vectors = service.embed(texts, kind)
    count = getattr(service.embedder, "token_count", None)
    tokens = sum(count(t) for t in texts) if count else sum(len(t) for t in texts)
    return vectors, tokens


async def _watch_disconnect(request: Request, answer: AnswerStream) -> None:
    """Cancel the answer when the client goes away (the request body has been read already)."""
    while not answer.cancel_event.is_set():
        if (await request.receive())["type"] == "http.disconnect":
            answer.cancel()


async def _sse(events: AsyncIterator, meta: dict, request: Request,
               answer: AnswerStream) -> AsyncIterator[bytes]:
    """OpenAI chat.completion.chunk events; the last chunk carries the verified citations."""
    watcher = asyncio.create_task(_watch_disconnect(request, answer))
    try:
        async for piece in _sse_chunks(events, meta):
            yield piece
    finally:
        answer.cancel()
        watcher.cancel()


async def _sse_chunks(events: AsyncIterator, meta: dict) -> AsyncIterator[bytes]:

    def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
        body = {**meta, "object": "chat.completion.chunk", **extra,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return format_sse_event(data_str=json.dumps(body, ensure_ascii=False))

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if isinstance(event, Queued):  # an SSE comment: clients show it or skip it
                yield format_sse_event(comment=event.text)
            elif isinstance(event, Answer):
                yield chunk({"citations": _citations(event)}, "stop", **_answer_extras(event))
            else:
                yield chunk({"content": event})
    except AssistantError as exc:  # a failure mid-answer: report it in-band, then end the stream
        log.error("generation failed: %s", exc)
        error = {"message": public_message(exc), "type": "server_error", "param": None,
                 "code": None}
        yield format_sse_event(data_str=json.dumps({"error": error}, ensure_ascii=False))
    yield format_sse_event(data_str="[DONE]")
