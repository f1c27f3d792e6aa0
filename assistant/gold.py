"""Gold Q&A records: the evaluation set format, read strictly (a malformed line names itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import GoldFormatError

TYPES = ("fact", "number", "list", "locate", "multi", "near_miss", "unanswerable", "adversarial")
UNANSWERABLE = ("unanswerable", "adversarial")
FIELDS = ("id", "question", "type", "gold_clauses", "must_include", "answer")


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    type: str
    gold_clauses: tuple[str, ...]
    must_include: tuple[str, ...]
    answer: str

    @property
    def answerable(self) -> bool:
        """Whether the right response is an answer. An adversarial item that wraps a genuine
        question about the text (markup around it, gold clauses given) expects that question
        answered with the wrapping ignored, not a refusal."""
        return self.type not in UNANSWERABLE or bool(self.gold_clauses and self.must_include)


def load_gold(path: Path) -> list[GoldItem]:
    """Parse a gold JSONL file; any malformed line is a GoldFormatError naming the line."""
    items: list[GoldItem] = []
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldFormatError(f"无法读取评测集 {path}：{exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise GoldFormatError(f"{path} 第{n}行不是合法 JSON：{exc}") from exc
        missing = [f for f in FIELDS if f not in obj] if isinstance(obj, dict) else list(FIELDS)
        if missing:
            raise GoldFormatError(f"{path} 第{n}行缺少字段：{', '.join(missing)}")
        if obj["type"] not in TYPES:
            raise GoldFormatError(f"{path} 第{n}行的 type {obj['type']!r} 不在 {TYPES} 中")
        if not isinstance(obj["gold_clauses"], list) or not isinstance(obj["must_include"], list):
            raise GoldFormatError(f"{path} 第{n}行：gold_clauses 与 must_include 必须是列表")
        items.append(GoldItem(str(obj["id"]), str(obj["question"]), obj["type"],
                              tuple(str(c) for c in obj["gold_clauses"]),
                              tuple(str(p) for p in obj["must_include"]), str(obj["answer"])))
    if not items:
        raise GoldFormatError(f"评测集 {path} 为空")
    return items
