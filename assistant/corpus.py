"""Parse a published policy text into citable clauses with exact character offsets.

The structure recognised is the one of Chinese policy documents: chapters headed 一、二、…,
numbered measures (一)（二）… inside them, and plain paragraphs in chapters without measures.
Web-page noise (bylines, share buttons, footers) is dropped, and a second copy of the article
is detected by content, not by position.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from .errors import CorpusFormatError

CN_DIGITS = {"零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_NUM = "零一二三四五六七八九十百"

CHAPTER_RE = re.compile(rf"^(?P<num>[{CN_NUM}]+)、(?P<name>\S.{{0,40}})$")
MEASURE_RE = re.compile(rf"^[(（](?P<num>[{CN_NUM}]+)[)）]")
BULLET_RE = re.compile(r"^[•·●▪◦]\s*")
DATE_RE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
SOURCE_RE = re.compile(r"来源[:：]\s*(\S+)")

# Lines that end the article body on a news page (byline, share widget, site footer).
END_MARKERS = ("责任编辑", "扫一扫", "主办单位", "运行维护单位", "主管单位", "版权所有")
# Short page-chrome lines that carry no policy content.
NOISE_LINES = {
    "微信", "微博", "客户端", "头条号", "手机版", "电脑版", "手机版 电脑版",
    "×", "x", "X", "Baidu", "map", "分享", "打印", "关闭",
}
MIN_PARAGRAPH_CHARS = 20


def cn_to_int(s: str) -> int:
    """Convert a Chinese numeral up to 九百九十九 (一, 十二, 二十八) to an int."""
    if not s or any(c not in CN_NUM for c in s):
        raise ValueError(f"not a Chinese numeral: {s!r}")
    total, current = 0, 0
    for ch in s:
        if ch in CN_DIGITS:
            current = CN_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


def int_to_cn(n: int) -> str:
    """Convert 1..999 to a Chinese numeral as written in clause labels (十二, 二十八)."""
    if not 0 < n < 1000:
        raise ValueError(n)
    digits = "零一二三四五六七八九"
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = ""
    if hundreds:
        out += digits[hundreds] + "百"
        if rest and tens == 0:
            out += "零"
    if tens:
        out += ("" if tens == 1 and not hundreds else digits[tens]) + "十"
    if ones:
        out += digits[ones]
    return out


_CN_AMOUNT_RE = re.compile(r"[一二两三四五六七八九十百千]+(?=[万亿])")


def cn_number_value(run: str) -> int | None:
    """Value of a Chinese numeral with 千/万/亿 (九千 → 9000, 一万二千 → 12000), else None."""
    try:
        total, section, current = 0, 0, 0
        for ch in run:
            if ch in "亿万":
                unit = 100_000_000 if ch == "亿" else 10_000
                total += (section + current) * unit
                section = current = 0
            elif ch == "千":
                section += (current or 1) * 1000
                current = 0
            elif ch in "百十":
                section += (current or 1) * (100 if ch == "百" else 10)
                current = 0
            else:
                current = cn_to_int(ch) if ch != "两" else 2
        return total + section + current
    except ValueError:
        return None


def arabic_numbers(text: str) -> str:
    """Chinese numerals before 万/亿 written in digits (九千亿 → 9000亿), as policy texts write them."""
    return _CN_AMOUNT_RE.sub(lambda m: str(cn_number_value(m.group(0))), text)


def normalize(text: str) -> str:
    """NFKC + collapse whitespace: the form used for comparisons and quote checks."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class Clause:
    """One citable unit: a numbered measure or an unnumbered chapter paragraph."""

    id: str  # "1".."28" for measures, "一-1" for chapter paragraphs
    label: str  # display label: "第（三）条", "一、总体要求 第1段"
    chapter: str  # chapter heading, e.g. "二、推进基础设施互联互通"
    title: str  # the measure's first sentence (without the number)
    text: str  # exactly source[start:end]
    start: int
    end: int
    doc_id: str = ""

    def to_dict(self) -> dict:
        """The JSON shape of GET /v1/clauses/{id}: the clause and its offsets in the source."""
        return {"id": self.id, "label": self.label, "chapter": self.chapter, "title": self.title,
                "text": self.text, "start": self.start, "end": self.end}

    @property
    def chapter_num(self) -> int:
        """The chapter's number (二 → 2)."""
        return cn_to_int(self.chapter.split("、", 1)[0])

    @property
    def is_measure(self) -> bool:
        """True for a numbered measure, False for an unnumbered chapter paragraph."""
        return MEASURE_RE.match(self.text) is not None

    @property
    def body(self) -> str:
        """The clause text without its leading (一) marker."""
        m = MEASURE_RE.match(self.text)
        return self.text[m.end():] if m else self.text

    @cached_property
    def sentences(self) -> tuple[Sentence, ...]:
        """The clause's sentences: the evidence units answers cite ("6.3" = clause 6, sentence 3).
        Split once per clause (every answer ranks them; a library of documents has thousands)."""
        return split_sentences(self)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a clause, with exact offsets into the source (`source[start:end] == text`)."""

    id: str  # "<clause id>.<n>", n from 1
    clause_id: str
    n: int
    text: str
    start: int
    end: int


SENTENCE_RE = re.compile(r"[^。；！？!?;]+[。；！？!?;]?")


def split_sentences(clause: Clause) -> tuple[Sentence, ...]:
    """Cut a clause body at 。；！？ into sentences; the (一) marker belongs to none of them."""
    offset = len(clause.text) - len(clause.body)
    out = []
    for m in SENTENCE_RE.finditer(clause.body):
        raw = m.group(0)
        lead = len(raw) - len(raw.lstrip())
        text = raw.strip()
        if not text:
            continue
        start = clause.start + offset + m.start() + lead
        out.append(Sentence(f"{clause.id}.{len(out) + 1}", clause.id, len(out) + 1, text,
                            start, start + len(text)))
    return tuple(out)


@dataclass(frozen=True)
class Chapter:
    """A chapter heading and the ids of the clauses under it."""

    num: int
    heading: str
    clause_ids: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """A parsed policy document: metadata, chapters and clauses over the raw source text."""

    doc_id: str
    title: str
    source: str
    date: str
    sha256: str
    text: str = field(repr=False)
    chapters: tuple[Chapter, ...] = ()
    clauses: tuple[Clause, ...] = ()

    def clause(self, clause_id: str) -> Clause:
        """The clause with this id (KeyError if absent)."""
        for c in self.clauses:
            if c.id == clause_id:
                return c
        raise KeyError(clause_id)


@dataclass
class _Line:
    start: int  # offset of the stripped content in the source
    end: int
    text: str  # stripped content, bullet removed


def _lines(text: str) -> list[_Line]:
    """Non-empty lines with offsets of their stripped content (bullets removed)."""
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        lead = len(content) - len(content.lstrip())
        body = content.strip()
        m = BULLET_RE.match(body)
        if m:
            lead += m.end()
            body = body[m.end():].strip()
        if body:
            out.append(_Line(pos + lead, pos + lead + len(body), body))
        pos += len(raw)
    return out


def _first_sentence(text: str, limit: int = 40) -> str:
    sentence = re.split(r"[。；！？]", text, maxsplit=1)[0].strip()
    return sentence if len(sentence) <= limit else sentence[:limit] + "…"


def _is_sentence(line: str) -> bool:
    """Body text: long enough or ending like a sentence (page chrome is short and bare)."""
    return len(line) >= MIN_PARAGRAPH_CHARS or line[-1] in "。；！？.!?;"


def _is_noise(line: str) -> bool:
    return line in NOISE_LINES or line.startswith("【") or (len(line) <= 2 and not line.isalnum())


def _metadata(lines: list[_Line]) -> tuple[str, str, str]:
    """Title (first line), publishing source and ISO date from the lines before the body."""
    title = lines[0].text if lines else ""
    source = date = ""
    for ln in lines[:12]:
        if not date and (m := DATE_RE.search(ln.text)):
            date = f"{int(m[1]):04d}-{int(m[2]):02d}-{int(m[3]):02d}"
        if not source and (m := SOURCE_RE.search(ln.text)):
            source = m[1]
    return title, source, date


class _Builder:
    """Accumulates clauses while walking the lines of one article copy."""

    def __init__(self, text: str, doc_id: str):
        self.text, self.doc_id = text, doc_id
        self.clauses: list[Clause] = []
        self.chapters: list[tuple[int, str, list[str]]] = []
        self.seen_bodies: set[str] = set()

    def chapter(self, num: int, heading: str) -> None:
        self.chapters.append((num, heading, []))

    def add(self, cid: str, label: str, line: _Line, title: str) -> None:
        _, heading, ids = self.chapters[-1]
        self.clauses.append(
            Clause(cid, label, heading, title, self.text[line.start:line.end],
                   line.start, line.end, self.doc_id)
        )
        ids.append(cid)

    def extend_last(self, line: _Line) -> None:
        """A continuation paragraph of the previous measure: widen its span."""
        c = self.clauses[-1]
        self.clauses[-1] = Clause(c.id, c.label, c.chapter, c.title,
                                  self.text[c.start:line.end], c.start, line.end, c.doc_id)


def parse_document(text: str, doc_id: str = "doc") -> Document:
    """Parse one policy text into a Document; raise CorpusFormatError if it has no structure."""
    if not text or not text.strip():
        raise CorpusFormatError(f"文档 {doc_id} 为空：没有可解析的内容。")
    lines = _lines(text)
    title, source, date = _metadata(lines)
    b = _Builder(text, doc_id)
    measure_nums: set[int] = set()
    for ln in lines:
        if any(ln.text.startswith(m) for m in END_MARKERS):
            break
        if _is_noise(ln.text):
            continue
        key = normalize(ln.text)
        if (ch := CHAPTER_RE.match(ln.text)) and len(ln.text) <= 40:
            num = cn_to_int(ch["num"])
            if any(n == num for n, _, _ in b.chapters):
                break  # the chapter numbering restarts: a second copy of the article begins
            b.chapter(num, ln.text)
        elif (ms := MEASURE_RE.match(ln.text)) and b.chapters:
            num = cn_to_int(ms["num"])
            if num in measure_nums or key in b.seen_bodies:
                break
            measure_nums.add(num)
            body = ln.text[ms.end():]
            b.add(str(num), f"第（{ms['num']}）条", ln, _first_sentence(body))
        elif b.chapters and _is_sentence(ln.text):
            if key in b.seen_bodies:
                break  # a paragraph we already have: the article is repeated from here
            num, heading, ids = b.chapters[-1]
            if ids and not ids[-1].startswith(heading.split("、")[0] + "-"):
                b.extend_last(ln)
            else:
                n = len(ids) + 1
                cn = heading.split("、", 1)[0]
                b.add(f"{cn}-{n}", f"{heading} 第{n}段", ln, _first_sentence(ln.text))
        else:
            continue
        b.seen_bodies.add(key)
    if not b.chapters or not b.clauses:
        raise CorpusFormatError(
            f"文档 {doc_id} 没有可识别的结构：未找到“一、”式章标题或“（一）”式条款。"
            "请确认文件是按章、条编排的政策原文（UTF-8 编码）。"
        )
    _check_numbering(doc_id, measure_nums)
    chapters = tuple(Chapter(n, h, tuple(ids)) for n, h, ids in b.chapters)
    return Document(
        doc_id=doc_id, title=title, source=source, date=date,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text,
        chapters=chapters, clauses=tuple(b.clauses),
    )


def _check_numbering(doc_id: str, nums: set[int]) -> None:
    """Measures must be numbered 1..n without gaps; a gap means the parse went wrong."""
    if nums and nums != set(range(1, max(nums) + 1)):
        missing = sorted(set(range(1, max(nums) + 1)) - nums)
        raise CorpusFormatError(
            f"文档 {doc_id} 的条款编号不连续，缺少第{'、'.join(int_to_cn(n) for n in missing)}条；"
            "请检查原文是否完整。"
        )


def load_document(path: Path) -> Document:
    """Read a UTF-8 policy text file and parse it; the doc id is the file stem."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusFormatError(f"文件 {Path(path).name} 不是 UTF-8 编码（{exc.reason}），请转换后重试。") from exc
    except OSError as exc:
        raise CorpusFormatError(f"无法读取文件 {path}：{exc.strerror}") from exc
    return parse_document(text, Path(path).stem)


def load_corpus(source_dir: Path) -> list[Document]:
    """Every .txt under source_dir, parsed, sorted by file name."""
    paths = sorted(Path(source_dir).rglob("*.txt"))
    if not paths:
        raise CorpusFormatError(f"目录 {source_dir} 下没有 .txt 政策原文；请把原文放到该目录。")
    documents = [load_document(p) for p in paths]
    return documents if len(documents) == 1 else [_qualify(d) for d in documents]


def _qualify(doc: Document) -> Document:
    """With several documents, clause ids become "<doc_id>:<id>" so they stay unique."""
    def q(cid: str) -> str:
        return f"{doc.doc_id}:{cid}"

    return replace(
        doc,
        clauses=tuple(replace(c, id=q(c.id)) for c in doc.clauses),
        chapters=tuple(replace(ch, clause_ids=tuple(map(q, ch.clause_ids))) for ch in doc.chapters),
    )
