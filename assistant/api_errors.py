"""OpenAI-style error responses for the HTTP API, and the request-size guard.

Every error is {"error": {"message", "type", "param", "code"}} with a Chinese message that says
what to fix; FastAPI's 422 validation errors, broken JSON (400), unknown routes (404), oversized
bodies (413), a model still loading (503 + Retry-After) and domain errors all take that shape,
and nothing shows a stack trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .errors import (
    AssistantError,
    BusyError,
    FeedbackBusyError,
    FeedbackError,
    FeedbackStorageError,
    QuestionError,
    ServiceNotReadyError,
    public_message,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error response in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type


def error_response(status: int, message: str, type: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _is_type_tag(part: object) -> bool:
    """pydantic puts the union member it tried into `loc` ("str", "list[str]", "TextPart")."""
    return isinstance(part, str) and ("[" in part or part[:1].isupper()
                                      or part in ("str", "int", "float", "bool", "none"))


# pydantic's English messages for the errors a JSON body can have, in Chinese.
_PYDANTIC_ZH = {
    "string_type": "应为字符串", "int_type": "应为整数", "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能有小数", "float_type": "应为数字", "bool_type": "应为 true 或 false",
    "list_type": "应为数组（列表）", "dict_type": "应为 JSON 对象", "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象", "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}", "greater_than": "必须大于 {gt}", "less_than": "必须小于 {lt}",
    "literal_error": "只能是 {expected}", "string_too_long": "过长（最多 {max_length} 字符）",
    "too_long": "过长（最多 {max_length} 项）",
}


def _message_zh(error: dict) -> str:
    """The Chinese reason for one pydantic error; our own validators already speak Chinese."""
    template = _PYDANTIC_ZH.get(error.get("type", ""))
    if template is None:
        return str(error.get("msg", "取值无效"))
    try:
        return template.format(**error.get("ctx", {}))
    except (KeyError, IndexError):
        return template.split("{")[0].strip() or "取值无效"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 in OpenAI's shape; a body that is not JSON at all is a 400."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return error_response(400, f"请求体不是合法的 JSON，请检查引号、括号和逗号（{detail}）。",
                              code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _is_type_tag(p)]
    param = ".".join(loc) or None
    if first.get("type") == "missing":
        if param is None:
            return error_response(422, "缺少请求体：请发送 JSON 对象（Content-Type: application/json）。",
                                  code="missing_body")
        return error_response(422, f"缺少必填字段 {param}。", param=param, code="missing_field")
    where = f"参数 {param} " if param else "请求体"
    return error_response(422, f"{where}无效：{_message_zh(first)}。", param=param,
                          code="invalid_value")


# Errors that mean "try again shortly" (503 + Retry-After), most specific first.
_RETRY_LATER = ((BusyError, "queue_full"), (FeedbackBusyError, "feedback_busy"),
                (ServiceNotReadyError, "model_loading"))


def install_error_handlers(app: FastAPI) -> None:
    """Route every error a request can meet to an OpenAI-shaped JSON response."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _validation_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        messages = {400: "请求体无法解析：请发送 UTF-8 编码的 JSON。", 404: "没有这个接口。",
                    405: "该接口不支持此请求方法。", 413: "请求体过大。"}
        codes = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed",
                 413: "request_too_large"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)),
                              code=codes.get(exc.status_code), headers=exc.headers)

    async def retry_later(request: Request, exc: AssistantError):
        code = next(code for cls, code in _RETRY_LATER if isinstance(exc, cls))
        return error_response(503, str(exc), "service_unavailable", code=code,
                              headers={"Retry-After": str(exc.retry_after)})

    for cls, _ in _RETRY_LATER:
        app.add_exception_handler(cls, retry_later)

    @app.exception_handler(FeedbackStorageError)
    async def feedback_storage(request: Request, exc: FeedbackStorageError):
        log.error("feedback not stored: %s", exc)
        return error_response(500, public_message(exc), "server_error", code="feedback_storage")

    @app.exception_handler(QuestionError)
    @app.exception_handler(FeedbackError)
    async def bad_input(request: Request, exc: AssistantError):
        return error_response(400, str(exc))

    @app.exception_handler(AssistantError)
    async def domain_error(request: Request, exc: AssistantError):
        log.error("request failed: %s", exc)
        return error_response(500, public_message(exc), "server_error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "服务器内部错误，请稍后重试。", "server_error")


class BodyLimit:
    """ASGI middleware: refuse request bodies over max_bytes with 413, declared or streamed.

    Hand-written because FastAPI 0.165's max_body_size answers a declared oversize body with a
    plain-text 413 that no exception handler can shape."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, f"请求体过大（上限 {self.max_bytes} 字节）。",
                                      code="request_too_large")
            return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413)
            return message

        return await self.app(scope, limited_receive, send)
