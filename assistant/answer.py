"""The answer record every front end shows, the conversation turn, and question validation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .citations import Citation
from .errors import QuestionError
from .safety import clean_question

_SURROGATE_RE = re.compile("[\ud800-\udfff]")

Style = Literal["public", "official"]
# generated: every part has the model's verified line (or a quoted complement); partial: some
# part is not in the document; extractive: every line failed, the evidence is quoted instead.
Mode = Literal["generated", "partial", "extractive", "lookup", "refused"]

@dataclass(frozen=True)
class Answer:
    """What the user gets: text, verified citations, and how it was produced."""

    question: str
    text: str  # everything streamed: direct answer, quoted evidence, notice
    citations: tuple[Citation, ...]  # those of the direct answer, one per evidence sentence
    refused: bool
    retrieved: tuple[str, ...]
    mode: Mode
    style: Style = "public"
    rewritten_question: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    direct_answer: str = ""  # the answer itself, without quoted evidence and notice

    @property
    def cited_ids(self) -> list[str]:
        return list(dict.fromkeys(c.clause_id for c in self.citations))

    def to_dict(self) -> dict:
        """The JSON shape shared by `assistant ask --json`, the HTTP API and the evaluator."""
        return {
            "question": self.question, "answer": self.text, "direct_answer": self.direct_answer,
            "refused": self.refused, "mode": self.mode,
            "rewritten_question": self.rewritten_question,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": list(self.retrieved),
            "timings_ms": self.reported_timings(),
        }

    def reported_timings(self) -> dict[str, float | None]:
        """The timings every front end reports, by the names in TIMINGS."""
        return {k: self.timings_ms.get(k) for k in TIMINGS}


# first_answer_text: the first text of the answer itself (for a generated answer, after the model
# wrote and the verifier passed it); model_first_token: the model's own first token;
# queue_wait: how long the answer waited for its turn on the one LLM.
TIMINGS = ("retrieval", "queue_wait", "first_answer_text", "model_first_token", "total")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation, for follow-up questions."""

    question: str
    answer: Answer


def validate_question(question: object, max_chars: int) -> str:
    """The cleaned question, or a QuestionError with a message for the user."""
    if not isinstance(question, str):
        raise QuestionError("问题必须是文字。")
    q = clean_question(question)
    if not q:
        raise QuestionError("问题不能为空，请输入您想了解的内容。")
    if len(q) > max_chars:
        raise QuestionError(f"问题过长（{len(q)} 字），请精简到 {max_chars} 字以内。")
    if not q.isascii() and _SURROGATE_RE.search(q):  # invalid UTF-8 on a command line, "\ud800" in JSON
        raise QuestionError("问题含有无法识别的字符（不是有效的 UTF-8 文本），请检查输入法或编码后重试。")
    return q


__all__ = ["TIMINGS", "Answer", "Mode", "Style", "Turn", "validate_question"]
