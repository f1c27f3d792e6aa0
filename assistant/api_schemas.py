"""Request bodies of the HTTP API (pydantic, so they double as the OpenAPI documentation).

Unknown fields are accepted and ignored, as OpenAI clients send options this server does not use
(temperature, user, stream_options, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class EmbeddingRequest(_Body):
    input: str | list[str] = Field(
        description="A text, or a list of texts, to embed. Token arrays are not supported.")
    model: str = Field(description="The embedder id from /healthz or /v1/models, or its short name.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="`float`: lists of numbers; `base64`: little-endian float32 bytes.")
    dimensions: int | None = Field(
        None, description="Must equal the model's dimension if given (no truncation is done).")
    input_type: Literal["query", "passage"] = Field(
        "passage",
        description="Extension: e5 models embed questions (`query`) and documents (`passage`) "
                    "differently. Use `query` for search queries and `passage` (default) for "
                    "texts to be searched.")


class SearchRequest(_Body):
    query: str = Field(description="The question, in Chinese.")
    k: int = Field(5, ge=1, le=30, description="How many clauses to return (1-30).")


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(_Body):
    model: str = Field(description="The served LLM id (see /v1/models) or `policy-assistant`.")
    messages: list[ChatMessage] = Field(
        description="The last message must come from the user: it is the question. Earlier "
                    "user/assistant pairs are the conversation history (for follow-ups). System "
                    "messages are ignored: the assistant answers only from the policy document.")
    stream: bool = False
    style: Literal["public", "official"] = Field(
        "public", description="Extension: `public` plain language, `official` formal wording.")


class CitationIn(_Body):
    clause_id: str
    label: str = ""
    quote: str = ""
    verified: bool = False


class FeedbackRequest(_Body):
    question: str
    answer: str
    citations: list[CitationIn] = Field(default_factory=list)
    rating: Literal["up", "down"]
    reason: str = ""
