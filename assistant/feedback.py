"""User feedback (👍/👎 on an answer) stored durably in SQLite, and exported as gold-set candidates.

A thumbs-down marks an answer a person should look at; `export_gold` writes those as lines in the
format of eval/gold.jsonl so they can be reviewed and appended to the gold set.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import FeedbackBusyError, FeedbackError, FeedbackStorageError

Rating = Literal["up", "down"]
MAX_TEXT = 20_000
MAX_REASON = 1_000
MAX_CITATIONS = 50
DB_NAME = "feedback.sqlite3"  # under settings.data_dir
# How long a write waits for another connection's lock before giving up with FeedbackBusyError.
BUSY_TIMEOUT_S = 3.0
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,   -- JSON list of {clause_id, label, quote, verified}
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    reason TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class FeedbackCitation:
    """A citation as the user saw it next to the rated answer."""

    clause_id: str
    label: str = ""
    quote: str = ""
    verified: bool = False


@dataclass(frozen=True)
class FeedbackItem:
    """One rating of one answer."""

    question: str
    answer: str
    citations: tuple[FeedbackCitation, ...]
    rating: Rating
    reason: str = ""
    id: int | None = None
    created_at: str = ""

    @property
    def cited_ids(self) -> list[str]:
        return list(dict.fromkeys(c.clause_id for c in self.citations))


def make_item(question: object, answer: object, citations: object, rating: object,
              reason: object = "") -> FeedbackItem:
    """A validated FeedbackItem, or FeedbackError with a message for the user."""
    if not isinstance(question, str) or not question.strip():
        raise FeedbackError("反馈缺少问题内容。")
    if not isinstance(answer, str):
        raise FeedbackError("反馈中的回答必须是文字。")
    if rating not in ("up", "down"):
        raise FeedbackError("评价只能是 up（有帮助）或 down（没帮助）。")
    reason = "" if reason is None else reason
    if not isinstance(reason, str):
        raise FeedbackError("反馈原因必须是文字。")
    if len(question) > MAX_TEXT or len(answer) > MAX_TEXT or len(reason) > MAX_REASON:
        raise FeedbackError(f"反馈内容过长：问题与回答各不超过 {MAX_TEXT} 字，原因不超过 {MAX_REASON} 字。")
    if not isinstance(citations, (list, tuple)) or len(citations) > MAX_CITATIONS:
        raise FeedbackError(f"引用必须是列表，且不超过 {MAX_CITATIONS} 条。")
    cites = []
    for c in citations:
        if isinstance(c, FeedbackCitation):
            cites.append(c)
            continue
        fields = c if isinstance(c, dict) else getattr(c, "__dict__", None)
        if not isinstance(fields, dict) or not isinstance(fields.get("clause_id"), str):
            raise FeedbackError("每条引用都必须含有条款编号 clause_id。")
        cites.append(FeedbackCitation(fields["clause_id"], str(fields.get("label", "")),
                                      str(fields.get("quote", "")), bool(fields.get("verified"))))
    return FeedbackItem(question.strip(), answer, tuple(cites), rating, reason.strip())


class FeedbackStore:
    """An SQLite file in WAL mode with synchronous=FULL: a stored rating survives a power cut.

    A rating is acknowledged only after its transaction committed, so every acknowledged row
    survives the process being killed. The database is opened lazily: when it cannot be opened
    (read-only or missing data dir) the error is logged, the rest of the service keeps working,
    and every later write tries again and fails with a FeedbackStorageError naming the fix.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, shared by the server's threads
        try:
            self._connect()
        except FeedbackError as exc:
            log.error("feedback database not opened (retried on the next write): %s", exc)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL fsyncs every commit (power-cut safe): 2-6 ms per rating here, against 0.05 ms
            # for NORMAL (kill-safe only); eval/bench_feedback_sync.py measures it.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            if _is_busy(exc):
                raise FeedbackBusyError("反馈数据库正被其他程序占用，请稍后重试。") from exc
            raise FeedbackStorageError(
                f"无法打开反馈数据库 {self.path}：{exc}。请检查 ASSISTANT_DATA_DIR 是否存在且可写"
                "（磁盘未满、未以只读方式挂载）。") from exc
        self._conn = conn
        return conn

    def _run(self, what: str, sql: str, args: Sequence[object] = ()) -> tuple[list, int]:
        """Rows and lastrowid of one statement on the shared connection, as FeedbackErrors."""
        if not self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise FeedbackBusyError(f"反馈{what}繁忙，请稍后重试。")
        try:
            cur = self._connect().execute(sql, args)
            return cur.fetchall(), cur.lastrowid
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise FeedbackBusyError(
                    f"反馈数据库正被其他程序占用，{what}未完成，请稍后重试。") from exc
            if self._conn is not None:  # reopened on the next call (the disk may come back)
                self._conn.close()
                self._conn = None
            raise FeedbackStorageError(
                f"反馈{what}失败：{exc}。请检查 ASSISTANT_DATA_DIR（{self.path.parent}）所在磁盘"
                "是否可写、空间是否充足。") from exc
        finally:
            self._lock.release()

    def add(self, item: FeedbackItem) -> int:
        """Store one item and return its row id once the transaction has committed."""
        citations = json.dumps([c.__dict__ for c in item.citations], ensure_ascii=False)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _, row_id = self._run("保存",
                        "INSERT INTO feedback (created_at, question, answer, citations, rating, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (created, item.question, item.answer, citations, item.rating, item.reason))
        return int(row_id)

    def items(self, rating: Rating | None = None) -> list[FeedbackItem]:
        """All stored items (optionally of one rating), oldest first."""
        sql = "SELECT id, created_at, question, answer, citations, rating, reason FROM feedback"
        args: Sequence[str] = ()
        if rating is not None:
            sql, args = sql + " WHERE rating = ?", (rating,)
        rows, _ = self._run("读取", sql + " ORDER BY id", args)
        return [FeedbackItem(q, a, tuple(FeedbackCitation(**c) for c in json.loads(cites)), r, why,
                             id=i, created_at=t) for i, t, q, a, cites, r, why in rows]

    def export_gold(self, out: Path) -> int:
        """Write thumbs-down items as gold-set candidates (eval/gold.jsonl format); returns count.

        Only the gold fields are written, so `assistant eval --gold` reads the file as it is; a
        person must still fill in `must_include` and `answer` (and fix `gold_clauses` when the
        answer cited the wrong clauses) before the items are worth scoring against.
        """
        items = self.items("down")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"id": f"fb{item.id:05d}", "question": item.question, "type": "fact",
                             "gold_clauses": item.cited_ids, "must_include": [], "answer": ""},
                            ensure_ascii=False) + "\n" for item in items]
        out.write_text("".join(lines), encoding="utf-8")
        return len(items)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED (also as extended codes): another connection holds the lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _BUSY_CODES
