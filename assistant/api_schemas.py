"""Request bodies of the HTTP API (pydantic, so they double as the OpenAPI documentation).

Unknown fields are accepted and ignored, as OpenAI clients send options this server does not use
(temperature, user, stream_options, ...). Numbers and booleans are strict (`"5"` is not a `k`),
and text must be valid Unicode (a JSON `"\ud800"` escape is refused with 422, not a 500 later).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "invalid_unicode", "文本含有不成对的 UTF-16 代理字符，不是有效的 Unicode 文本") from None
    return text


def _json_number(value: object) -> object:
    if isinstance(value, (str, bool)):  # pydantic's lax mode would read "5" or true as a number
        raise PydanticCustomError("int_type", "应为整数（JSON 数字，不能是字符串或布尔值）")
    return value


Text = Annotated[str, AfterValidator(_encodable)]
# An integer as JSON Schema has it: 5 and 5.0 are, "5" and true are not.
Integer = Annotated[int, BeforeValidator(_json_number)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class EmbeddingRequest(_Body):
    input: Text | list[Text] = Field(
        description="A text, or a list of texts, to embed. Token arrays are not supported.")
    model: Text = Field(description="The embedder id from /healthz or /v1/models, or its short name.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="`float`: lists of numbers; `base64`: little-endian float32 bytes.")
    dimensions: Integer | None = Field(
        None, description="Must equal the model's dimension if given (no truncation is done).")
    input_type: Literal["query", "passage"] = Field(
        "passage",
        description="Extension: e5 models embed questions (`query`) and documents (`passage`) "
                    "differently. Use `query` for search queries and `passage` (default) for "
                    "texts to be searched.")


class SearchRequest(_Body):
    query: Text = Field(description="The question, in Chinese.")
    k: Integer = Field(5, ge=1, le=30, description="How many clauses to return (1-30).")


class TextPart(_Body):
    type: Literal["text"]
    text: Text


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(_Body):
    model: Text = Field(description="The served LLM id (see /v1/models) or `policy-assistant`.",
                        examples=["policy-assistant"])
    messages: list[ChatMessage] = Field(
        description="The last message must come from the user: it is the question. Earlier "
                    "user/assistant pairs are the conversation history (for follow-ups). System "
                    "messages are ignored: the assistant answers only from the policy document.",
        examples=[[{"role": "user", "content": "南充的城市定位是什么？"}]])
    stream: bool = Field(False, strict=True)
    style: Literal["public", "official"] = Field(
        "public", description="Extension: `public` plain language, `official` formal wording.")


class CitationIn(_Body):
    clause_id: Text
    sentence_id: Text | None = None
    label: Text = ""
    quote: Text = ""
    verified: bool = Field(False, strict=True)


class FeedbackRequest(_Body):
    question: Text
    answer: Text
    citations: list[CitationIn] = Field(default_factory=list)
    rating: Literal["up", "down"]
    reason: Text = ""


class ErrorDetail(BaseModel):
    """The body of an error: OpenAI's four fields."""

    message: str = Field(description="What went wrong and how to fix it (Chinese).")
    type: str = Field(description="`invalid_request_error`, `service_unavailable` or `server_error`.")
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(description="A stable machine-readable code, e.g. `model_not_found`.")


class ErrorResponse(BaseModel):
    """Every error response, in OpenAI's shape."""

    error: ErrorDetail


_ERRORS = {
    400: "Invalid request: broken JSON, empty question, unsupported option.",
    404: "Unknown model or clause id.",
    413: "Request body or batch too large.",
    422: "A field is missing or has the wrong type or value.",
    500: "The language model failed.",
    503: "A model is still loading or every answer slot is taken; retry after `Retry-After`.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}}}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` for a route: the error statuses it can return, in OpenAI's shape."""
    return {s: {"model": ErrorResponse, "description": _ERRORS[s],
                **({"headers": _RETRY_AFTER} if s == 503 else {})} for s in statuses}


# With `stream: true` the chat answer is Server-Sent Events; this schema describes one event.
CHAT_STREAM = {"text/event-stream": {"schema": {
    "type": "object", "required": ["data"],
    "properties": {"data": {"type": "string", "description":
                            "A chat.completion.chunk as JSON; the last event is `[DONE]`."}}}}}
