"""The feedback store: durable settings, validation, concurrent writers, reopening."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from assistant.errors import FeedbackError
from assistant.feedback import FeedbackStore, make_item


def test_store_is_wal_with_full_sync_and_survives_reopen(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.add(make_item("问题", "回答", [{"clause_id": "3", "quote": "水利"}], "down", "不全"))
    store.close()
    with sqlite3.connect(tmp_path / "fb.sqlite3") as db:  # another connection sees it
        assert db.execute("SELECT rating, reason FROM feedback").fetchall() == [("down", "不全")]
    again = FeedbackStore(tmp_path / "fb.sqlite3").items()
    assert again[0].citations[0].clause_id == "3" and again[0].citations[0].quote == "水利"


def test_concurrent_writers_lose_nothing(tmp_path):
    store = FeedbackStore(tmp_path / "fb.sqlite3")

    def write(n):
        for i in range(20):
            store.add(make_item(f"问题{n}-{i}", "回答", [], "up"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.items()) == 80 and len({i.id for i in store.items()}) == 80


@pytest.mark.parametrize("args", [
    ("", "回答", [], "up"),
    (None, "回答", [], "up"),
    ("问题", 3, [], "up"),
    ("问题", "回答", [], "meh"),
    ("问题", "回答", "3", "up"),
    ("问题", "回答", [{"label": "无编号"}], "up"),
    ("问题", "回答", [], "up", 5),
    ("问" * 20_001, "回答", [], "up"),
])
def test_bad_items_are_refused_with_a_message(args):
    with pytest.raises(FeedbackError):
        make_item(*args)


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = FeedbackStore(blocker / "sub" / "fb.sqlite3")  # opening is retried on each write
    with pytest.raises(FeedbackError, match="ASSISTANT_DATA_DIR"):
        store.add(make_item("问题", "回答", [], "up"))
