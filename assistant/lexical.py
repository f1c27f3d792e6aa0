"""Chinese tokenisation for BM25: jieba with the documents' own terms, or character bigrams.

Both are offered because which is better is an empirical question; `eval/` measures it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field

from .corpus import Document

# Question words and function words that carry no topic (hand-picked: no library ships a
# stop list for *questions* about a policy text).
STOPWORDS = frozenset(
    ["的", "了", "和", "与", "及", "是", "在", "有", "对", "把", "被", "为", "等", "并", "或", "也", "都", "就", "要", "将", "以", "于", "之", "其", "这", "那", "个", "中", "上", "下", "吗", "呢", "吧", "啊", "呀", "么", "嘛", "哪", "哪些", "哪个", "哪一", "哪里", "哪儿", "什么", "啥", "怎么", "怎样", "如何", "多少", "几", "是否", "有没有", "请问", "请", "问", "一下", "一些", "一条", "哪条", "条", "第", "讲", "说", "提到", "提", "关于", "文件", "文中", "里面", "里", "意见", "实施", "我", "你", "我们", "咱们", "他们", "它", "这个", "那个", "这些", "那些", "能", "会", "可以", "需要", "应该", "具体", "主要", "内容", "方面", "措施", "举措", "安排", "做法", "打算", "what", "which", "how", "is", "the", "a", "of", "in", "and", "to"]
)
_PUNCT_RE = re.compile(r"^[\W_]+$")
_QUOTED_RE = re.compile(r"“([^”]{2,12})”")
_HAN_RE = re.compile(r"[\u4e00-\u9fff]+|[A-Za-z]+|\d+(?:\.\d+)?")


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def document_terms(documents: list[Document]) -> list[str]:
    """Domain terms from the documents themselves: quoted phrases such as 宽带中国, 煤改气, and
    compounds of place abbreviations such as 川陕甘, 中法 (`abbreviations`)."""
    terms: set[str] = set()
    for d in documents:
        terms.update(c for found in abbreviations(d.text).values() for c in found)
        for c in d.clauses:
            for m in _QUOTED_RE.finditer(c.text):
                for part in re.split(r"[、，,+]", m[1]):
                    if 2 <= len(part) <= 8:
                        terms.add(part)
    return sorted(terms)


@dataclass
class Tokenizer:
    """Turns text into BM25 terms; `id` is recorded in the index manifest."""

    kind: str  # "jieba" or "bigram"
    terms: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in ("jieba", "bigram"):
            raise ValueError(f"unknown BM25 tokenizer {self.kind!r}: use jieba or bigram")
        self._jieba = None
        if self.kind == "jieba":
            import jieba

            jieba.setLogLevel(logging.WARNING)
            self._jieba = jieba.Tokenizer()
            for t in self.terms:
                self._jieba.add_word(t, freq=2000)

    @classmethod
    def for_documents(cls, kind: str, documents: list[Document]) -> Tokenizer:
        return cls(kind, document_terms(documents) if kind == "jieba" else [])

    @property
    def id(self) -> str:
        # The stop list is part of the id: changing it makes a built BM25 index stale.
        stops = hashlib.sha256(" ".join(sorted(STOPWORDS)).encode()).hexdigest()[:8]
        return f"{self.kind}:{len(self.terms)}:{stops}"

    def __call__(self, text: str) -> list[str]:
        text = _clean(text)
        if self.kind == "bigram":
            return self._bigrams(text)
        toks = self._jieba.lcut_for_search(text, HMM=True)
        return [t for t in toks if t.strip() and not _PUNCT_RE.match(t) and t not in STOPWORDS]

    def words(self, text: str) -> list[str]:
        """`text` cut into words, in order, with nothing dropped (characters for the bigram
        kind): where a line may be cut without splitting a word."""
        if self._jieba is None:
            return list(text)
        return self._jieba.lcut(text, HMM=True)

    @staticmethod
    def _bigrams(text: str) -> list[str]:
        out: list[str] = []
        for run in _HAN_RE.findall(text):
            if not ("\u4e00" <= run[0] <= "\u9fff") or len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i:i + 2] for i in range(len(run) - 1))
        return [t for t in out if t not in STOPWORDS]

    def build_bm25(self, texts: list[str], k1: float = 1.2, b: float = 0.5):
        """A bm25s index over these texts (short clauses favour a low length penalty b)."""
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index([self(t) or [""] for t in texts], show_progress=False)
        return bm25

    def load_bm25(self, path: str):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        return bm25s.BM25.load(path, show_progress=False)


class Speller:
    """Fixes homophone typos (南冲 → 南充, 达洲 → 达州) against the documents' own vocabulary.

    Pinyin-IME users mistype by sound. A query span of 2–4 Han characters that occurs nowhere in
    the documents, but reads exactly like a document word and shares a character with it, is
    replaced by that word. Hand-written because no library corrects against a given vocabulary.
    """

    def __init__(self, documents: list[Document], tokenizer: Tokenizer | None = None):
        from pypinyin import lazy_pinyin

        self._pinyin = lazy_pinyin
        self._text = "".join(c.text for d in documents for c in d.clauses)
        tok = tokenizer if tokenizer and tokenizer.kind == "jieba" else Tokenizer(
            "jieba", document_terms(documents))
        self._jieba = tok._jieba
        self._known = tok._jieba.FREQ  # jieba's dictionary: a real word there is no typo
        vocab = {t for t in tok._jieba.lcut_for_search(self._text)
                 if 2 <= len(t) <= 4 and _is_han(t) and not set(t) & set(_CN_NUMERALS)}
        by_sound: dict[tuple[str, ...], set[str]] = {}
        for word in vocab:
            by_sound.setdefault(self._sound(word), set()).add(word)
        self._by_sound = {k: next(iter(v)) for k, v in by_sound.items() if len(v) == 1}

    def correct(self, query: str) -> str:
        """The query with homophone typos replaced; unchanged when nothing matches.

        Only spans that start and end on jieba token boundaries are considered, so a fix never
        straddles two real words (有|几个 is not read as 有机).
        """
        tokens = self._jieba.lcut(query)
        out, i = [], 0
        while i < len(tokens):
            for j in range(min(len(tokens), i + 4), i, -1):
                span = "".join(tokens[i:j])
                word = self._fix(span)
                if word:
                    out.append(word)
                    i = j
                    break
            else:
                out.append(tokens[i])
                i += 1
        return "".join(out)

    def _sound(self, text: str) -> tuple[str, ...]:
        """Pinyin folded the way south-western Mandarin speakers blur it (zh/z, in/ing, n/l)."""
        return tuple(_FUZZY_RE.sub(lambda m: _FUZZY[m[0]], p) for p in self._pinyin(text))

    def _fix(self, span: str) -> str | None:
        if not (2 <= len(span) <= 4 and _is_han(span)) or span in self._text or self._known.get(span):
            return None
        word = self._by_sound.get(self._sound(span))
        if not word or not set(word) & set(span):
            return None
        # A typo is a content character mistyped, not a grammar word between two words
        # (「产业上又要建」 is not 上游).
        if any(a != b and a in _GRAMMAR_CHARS for a, b in zip(span, word)):
            return None
        return word


_FUZZY = {"zh": "z", "ch": "c", "sh": "s", "ing": "in", "eng": "en", "l": "n"}
_FUZZY_RE = re.compile(r"^(?:zh|ch|sh|l)|(?:ing|eng)$")
_CN_NUMERALS = "零一二三四五六七八九十百千万亿两几"
_GRAMMAR_CHARS = set("的了又也还都就在是有要和与及把被对从向给让而且或吗呢吧啊呀么着过")


def _is_han(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


_JOINERS = "中"  # joins compounds (中法, 中欧) without standing for a name of the table


@functools.lru_cache(maxsize=1)
def _abbreviation_table() -> dict[str, str]:
    from importlib.resources import files

    rows = files("assistant").joinpath("abbreviations.tsv").read_text("utf-8").splitlines()
    return dict(line.split("\t", 1) for line in rows if line.strip() and not line.startswith("#"))


@functools.lru_cache(maxsize=1)
def gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    """The names of places.txt, and those between its county-level markers."""
    from importlib.resources import files

    text = files("assistant").joinpath("places.txt").read_text("utf-8")
    names, counties, inside = set(), set(), False
    for line in text.splitlines():
        if line.startswith("#"):
            inside = line.startswith("# county level") or (inside and not line.startswith("# end"))
        else:
            names.update(line.split())
            if inside:
                counties.update(line.split())
    return frozenset(names), frozenset(counties)


@functools.lru_cache(maxsize=1)
def _full_names() -> re.Pattern:
    """Full place names (the table's and the gazetteer's above county level) that a run of
    abbreviation characters must not overlap; 粤港澳 and 京津冀 are themselves compounds of
    abbreviations, not names that block one."""
    names, counties = gazetteer()
    marks = set(_abbreviation_table().values())
    full = {n for n in {*_abbreviation_table(), *(names - counties)} if not set(n) <= marks}
    return re.compile("|".join(map(re.escape, sorted(full, key=len, reverse=True))))


def initials(text: str) -> str:
    """The first characters of the cities and provinces `text` names in full (广 of 广安, 成 of
    成都): next to an abbreviation they stand for those places (广深 = 广安–深圳, 成渝)."""
    names, counties = gazetteer()
    return "".join(sorted({p[0] for p in names - counties if len(p) >= 2 and p in text}))


def abbreviations(text: str, local: str | None = None) -> dict[str, list[str]]:
    """The place names `text` writes as one character of a compound of abbreviations: name →
    those compounds, most frequent first (陕西 → 川陕, 川陕甘; 法国 → 中法; 重庆 → 川渝, 渝新欧;
    深圳 → 广深, with 广 the initial of a place the text names in full: `local`, by default
    `initials(text)`). A run of such characters that overlaps a full name (「四川日报」: 川日,
    南京) is no compound, nor is a run without an abbreviation of the table."""
    table = _abbreviation_table()
    local = initials(text) if local is None else local
    marks = set(table.values())
    chars = "".join(sorted(marks | set(_JOINERS) | set(local)))
    names = [m.span() for m in _full_names().finditer(text)]
    counts: dict[str, int] = {}
    for m in re.finditer(f"[{chars}]{{2,}}", text):
        if set(m.group(0)) & marks and not any(a < m.end() and m.start() < b for a, b in names):
            counts[m.group(0)] = counts.get(m.group(0), 0) + 1
    found: dict[str, list[str]] = {}
    for run in sorted(counts, key=lambda r: -counts[r]):
        for name, char in table.items():
            # 广深 names 深圳 through 广 of 广安; 成渝 adds nothing to a 重庆 the text names in
            # full (a compound through an initial is read only for a place named no other way).
            if char in run and not (set(run) & set(local) - marks and name in text):
                found.setdefault(name, []).append(run)
    return found


_ASCII_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{3,}(?![A-Za-z0-9])")


class Glossary:
    """Expands English words in a mixed query with the Chinese terms policy texts use, and
    Chinese abbreviations and everyday words with the policy terms (社保 → 社会保险).

    Users write "GDP 目标", "big data 规划" or 「社保」「幼儿园」; neither BM25 nor the small
    embedder links those to 地区生产总值 / 大数据 / 社会保险 / 学前教育. The tables are plain TSVs
    shipped with the package (general economic and policy vocabulary, not tied to any one
    document).
    """

    def __init__(self, entries: dict[str, list[str]],
                 compounds: dict[str, list[str]] | None = None):
        self.entries = entries
        self.compounds = compounds or {}  # place → the abbreviation compounds naming it
        alternatives = sorted(entries, key=len, reverse=True)
        self._re = re.compile(
            r"(?<![A-Za-z0-9])(" + "|".join(re.escape(a) for a in alternatives) + r")(?![A-Za-z0-9])",
            re.IGNORECASE,
        ) if entries else None

    @classmethod
    def bundled(cls) -> Glossary:
        from importlib.resources import files

        text = "\n".join(files("assistant").joinpath(name).read_text("utf-8")
                         for name in ("glossary_en_zh.tsv", "glossary_zh.tsv"))
        entries: dict[str, list[str]] = {}
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                en, zh = line.split("\t", 1)
                entries[en.strip().lower()] = [t.strip() for t in zh.split(",") if t.strip()]
        return cls(entries)

    def without_words_in(self, text: str) -> Glossary:
        """This glossary for documents with this `text`: less its Chinese entries the text
        itself uses (a word the documents use needs no policy term beside it: 「民宿」 in a text
        that says 巴山民宿), and less the policy terms the text never uses (「地铁」 → 城市轨道交通
        would add only 城市 and 交通, which the text has everywhere)."""
        entries = {k: [t for t in v if t in text] for k, v in self.entries.items()
                   if not (_is_han(k) and k in text)}
        return Glossary({k: v for k, v in entries.items() if v}, self.compounds)

    def with_abbreviations(self, text: str) -> Glossary:
        """This glossary plus, for each place `text` names by abbreviation (`abbreviations`),
        the compounds it is in: 「和陕西有什么合作」 is searched with 川陕甘 too; also when the
        text names it in full elsewhere (重庆 beside 川渝合作)."""
        entries = {k: list(v) for k, v in self.entries.items()}
        found = abbreviations(text)
        for name, compounds in found.items():
            entries[name] = list(dict.fromkeys(entries.get(name, []) + compounds))
        return Glossary(entries, {**self.compounds, **found})

    def _transposed(self, word: str) -> str | None:
        """The one English key `word` is a typo of by two neighbouring letters swapped (GPD for
        GDP, the commonest slip in typing an abbreviation); None when it is a key itself, or
        none or several are."""
        if word in self.entries or len(word) < 3:
            return None
        swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
        keys = [k for k in swaps if k in self.entries]
        return keys[0] if len(keys) == 1 else None

    def expand(self, query: str) -> str:
        """The query with the policy terms for its English words and Chinese abbreviations or
        everyday words appended (a term already in the query is not added); else unchanged."""
        if self._re is None:
            return query
        added: list[str] = []
        text = unicodedata.normalize("NFKC", query)
        matched = [m[1].lower() for m in self._re.finditer(text)]
        matched += [k for w in _ASCII_WORD.findall(text) if (k := self._transposed(w.lower()))]
        # Two places the question names together are searched by the compounds naming both
        # (「四川和重庆」 → 川渝, not every compound with 川 such as 川陕甘).
        places = [k for k in dict.fromkeys(matched) if k in self.compounds]
        shared = {c for a in places for b in places if a != b
                  for c in self.compounds[a] if c in self.compounds[b]}
        for key in matched:
            for term in self.entries[key]:
                if shared and key in places and term in self.compounds[key] and term not in shared:
                    continue
                if term not in query and term not in added:
                    added.append(term)
        return f"{query}（{' '.join(added)}）" if added else query
