"""Chunk clauses for embedding: one chunk per measure, long measures also as sentence windows."""

from __future__ import annotations

from dataclasses import dataclass

from .corpus import Clause

CHUNKER_VERSION = "measure+sentence-windows/1"
SEPARATORS = ["。", "；", "！", "？", "，", ""]


@dataclass(frozen=True)
class Chunk:
    """A piece of one clause as it is embedded; retrieval maps it back to `clause_id`."""

    clause_id: str
    window: int  # 0 = the whole clause; 1.. = sentence windows of a long clause
    text: str  # what the embedder reads: chapter heading + title + clause text or window


def chunk_context(clause: Clause) -> str:
    """Chapter heading, plus the measure's title for numbered measures (windows lose it)."""
    if not clause.is_measure:  # a paragraph's title is just its opening words
        return f"{clause.chapter}："
    return f"{clause.chapter}｜{clause.title}："


def chunk_clauses(clauses: list[Clause], max_chars: int = 240, overlap: int = 60) -> list[Chunk]:
    """Whole-clause chunks for every clause plus overlapping sentence windows for long ones."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS, keep_separator="end", chunk_size=max_chars,
        chunk_overlap=overlap, strip_whitespace=True,
    )
    chunks: list[Chunk] = []
    for c in clauses:
        chunks.append(Chunk(c.id, 0, chunk_context(c) + c.body))
        if len(c.body) > max_chars:
            for i, piece in enumerate(splitter.split_text(c.body), start=1):
                chunks.append(Chunk(c.id, i, chunk_context(c) + piece))
    return chunks


def chunker_id(max_chars: int, overlap: int) -> str:
    """The chunker version with its parameters, recorded in the index manifest."""
    return f"{CHUNKER_VERSION}:{max_chars}:{overlap}"
