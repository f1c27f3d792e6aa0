"""Citations, and the check of model text against evidence text.

The small local model does not follow citation formats reliably and invents facts when the context
lacks them, so nothing it writes is trusted: `Verifier.check_text` passes a line only if its
numbers, place names and quotes occur in the evidence, most of its wording is found there and no
content word is its own. Citation marks the model writes anyway are stripped (`strip_marks`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .corpus import CN_NUM, Clause, cn_number_value, cn_to_int, normalize

_MARK_RE = re.compile(
    r"【([^】]{1,16})】|\[([^\]]{1,16})\]|〔([^〕]{1,16})〕"
    r"|[（(]\s*(?:见|据|出自|依据)?\s*(第\s*[（(]?[^）)]{1,6}[）)]?\s*条)\s*[）)]"
)
_CLAUSE_REF_RE = re.compile(rf"^第?\s*[（(]?\s*([{CN_NUM}]+|\d+)\s*[)）]?\s*条?$")
_PARA_REF_RE = re.compile(r"^(?:一[-－—‐]|总体要求\s*第?)([12一二])段?$")
# A named thing a line gives (…示范区, …基地, …名城): its name must be the text's, as written.
# Bigram support lets 「国家白酒综合开发利用示范区」 pass against 「国家天然气综合开发利用示范区、
# …川东北白酒产业基地」: most of its character pairs are there, the thing is not.
_NAME_END = re.compile(r"(?:示范区|示范县|示范市|示范城市|示范园|示范镇|示范基地|基地|产业园|产业城|"
                       r"园区|名城|中心|枢纽|试验区|新区|开发区|保税区)$")
_NAME_CUT = re.compile(r"建设|打造|创建|争创|推进|培育|设立|申请|建成|成为|推动|加快|支持|积极|发展成|"
                       r"包括|有|是|为|要|将|的|在|把|和|与|及|等|、|，|,|；|;|。|：|:")
_QUOTE_RE = re.compile(r"[「“\"『]([^」”\"』]{2,200})[」”\"』]")
_ARABIC_RE = re.compile(r"\d+(?:\.\d+)?")
_CN_NUM_RE = re.compile(r"[零一二三四五六七八九十百千万亿两]{2,}")
_HAN_RE = re.compile(r"[\u4e00-\u9fff]")
_CONJUNCTION_RE = re.compile(r"[和与及、,，;；]")
MIN_SUPPORT = 0.6  # share of a sentence's character bigrams that must occur in its clause
MAX_UNSUPPORTED_TERMS = 1  # content words of a sentence that may be absent from its clause
# Words an answer uses to frame what the text says; they assert nothing of their own.
CONNECTIVES = frozenset({"通过", "推动", "推进", "包括", "主要", "进行", "需要", "可以", "提出", "要求",
                         "实现", "负责", "属于", "就是", "以及", "其中", "还有", "方面", "相关", "提到",
                         "规定", "明确", "指出", "强调", "文件", "意见", "内容", "重点", "措施",
                         "按照", "根据", "依据", "原文", "方针", "包含", "涉及", "有关", "对于", "关于"})
# Grammar characters that assert nothing (also, already, question particles): a policy text
# rarely uses them, so the check for characters the document never uses must not count them.
GRAMMAR_CHARS = frozenset("也了吗呢吧就还又而且被让其即来")  # 来: 对…来说
# Words a question asks with (and totals, counts like 三条 or 几个): they carry no topic, and
# restating them asserts nothing (「达州要建的是…」「…打算怎么搞」).
ASKING_WORDS = re.compile(r"[一二三四五六七八九十两几多]+[条个项所家类座大种点]|一共|总共|分别|各自|具体|"
                          r"主要|哪些|哪个|哪几|什么|怎么|如何|多少|有没有|是否|可以|能否|"
                          r"达到|要建|建设|要有|需要|打算|计划|实现|争取|安排|要求|要做|做些|"
                          r"所有|全部|相关|有关")


@dataclass(frozen=True)
class Citation:
    """A clause a statement rests on, the exact span quoted from it, and whether it checked out."""

    clause_id: str
    label: str
    quote: str
    verified: bool
    sentence_id: str = ""  # "6.3": the sentence of the clause the quote comes from

    def to_dict(self) -> dict:
        return {"clause_id": self.clause_id, "sentence_id": self.sentence_id or None,
                "label": self.label, "quote": self.quote, "verified": self.verified}


def resolve_ref(ref: str, known: dict[str, Clause]) -> str | None:
    """Map a model-written reference (3, 三, 第（三）条, 一-1) to a clause id, or None."""
    ref = unicodedata.normalize("NFKC", ref).strip().replace(" ", "")
    if ref in known:
        return ref
    if m := _PARA_REF_RE.match(ref):
        n = {"1": "1", "2": "2", "一": "1", "二": "2"}[m[1]]
        return f"一-{n}" if f"一-{n}" in known else None
    if m := _CLAUSE_REF_RE.match(ref):
        num = m[1]
        cid = num if num.isdigit() else str(cn_to_int(num))
        return cid if cid in known else None
    return None


def strip_marks(sentence: str) -> tuple[str, list[str]]:
    """The sentence without citation marks, and the raw references those marks contained."""
    refs: list[str] = []

    def take(m: re.Match) -> str:
        refs.extend(p for g in m.groups() if g for p in re.split(r"[,，、;；和及]", g) if p.strip())
        return ""

    return _MARK_RE.sub(take, sentence).strip(), refs


def _bigrams(text: str) -> set[str]:
    # 和/与/及 and commas read as one list mark on both sides: 「南充和达州」 is worded as
    # 「南充、达州」, 「阆中机场和通用机场」 as 「阆中机场,推进通用机场」.
    t = _CONJUNCTION_RE.sub("、", normalize(text))
    return {t[i:i + 2] for i in range(len(t) - 1) if _HAN_RE.match(t[i]) or _HAN_RE.match(t[i + 1])}


def support(sentence: str, clause_text: str) -> float:
    """Share of the sentence's character bigrams that also occur in the clause."""
    grams = _bigrams(sentence)
    return len(grams & _bigrams(clause_text)) / len(grams) if grams else 0.0


def _numbers_ok(sentence: str, clause_text: str) -> str:
    """'' if every number in the sentence occurs in the clause, else the offending number."""
    text = normalize(clause_text)
    arabic_in_clause = set(_ARABIC_RE.findall(text))
    for num in _ARABIC_RE.findall(normalize(sentence)):
        if num not in arabic_in_clause:
            return num
    for run in _CN_NUM_RE.findall(sentence):
        if run in text:
            continue
        value = cn_number_value(run)
        if value is None or str(value) not in arabic_in_clause:
            return run
    return ""


def places_in(text: str, places: Collection[str]) -> list[str]:
    """Known place names in text, longest match first, without overlaps, in text order."""
    found, s = [], text
    for name in sorted(places, key=len, reverse=True):
        if name in s:
            found.append(name)
            s = s.replace(name, "\0" * len(name))
    return sorted(found, key=text.index)


def _place_spans(text: str, names: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, name) of every occurrence of the names in text, in order, no overlaps."""
    spans: list[tuple[int, int, str]] = []
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(re.escape(name), text):
            if not any(a < m.end() and m.start() < b for a, b, _ in spans):
                spans.append((m.start(), m.end(), name))
    return sorted(spans)


def _segments(text: str, names: list[str]) -> list[tuple[set[str], str]]:
    """The text's phrases with the places each speaks of. A phrase is cut at commas, and before
    a place after 、/和/与/及 that starts a parallel statement of its own (「推动南充建设A、广元建设B」
    is two; 「南充、广元机场改扩建」 and 「曾家山、昭化古城、华蓥山」 are one)."""
    spans = _place_spans(text, names)
    cuts = {0, len(text)} | {m.end() for m in re.finditer(r"[，,；;。：:！？]", text)}
    for i in range(1, len(spans)):
        start, prev = spans[i][0], spans[i - 1][1]
        if start > 0 and text[start - 1] in "、和与及":
            between = text[prev:start - 1]
            # What follows the place, or the last place of its 、-list: 「达州机场迁建和南充、广元
            # 机场改扩建」 is two statements (达州's 迁建, 南充's and 广元's 改扩建).
            j = i
            while j + 1 < len(spans) and text[spans[j][1]:spans[j + 1][0]] == "、":
                j += 1
            if len(_HAN_RE.findall(between)) >= 2 and text[prev:prev + 2] == text[
                    spans[j][1]:spans[j][1] + 2]:
                cuts.add(start - 1)
    bounds = sorted(cuts)
    return [({n for a, _, n in spans if lo <= a < hi}, text[lo:hi])
            for lo, hi in zip(bounds, bounds[1:]) if text[lo:hi].strip()]


def _names_in(name: str, text: str) -> bool:
    """The text has this name, or it with a character or two the line left out (产业应用基地 for
    产业化应用基地), never one with characters of its own (白酒 in 国家…综合开发利用示范区)."""
    name, text = normalize(name), normalize(text)
    if name in text:
        return True
    loose = re.compile(".{0,2}?".join(re.escape(ch) for ch in name))
    return any(len(m.group(0)) <= len(name) + 2 for m in loose.finditer(text))


def named_things(line: str) -> list[str]:
    """The names of things a line gives: each piece between verbs, particles and list marks that
    ends as a name of a place-like thing does (「建设国家锂钾综合开发示范区」 → 国家锂钾综合开发示范区)."""
    pieces = _NAME_CUT.split(re.sub(r"〔[^〕]*〕", "", line))
    return [p.strip("“”\"「」 ") for p in pieces
            if len(p.strip("“”\"「」 ")) >= 5 and _NAME_END.search(p.strip("“”\"「」 "))]


def misattributed(said: str, text: str, names: list[str] | Collection[str]) -> str:
    """A place of the line given what the text says of another place (「南充要争取…生活垃圾分类
    试点城市」 where the text gives 生活垃圾分类 to 广元), or ''. A pair of characters in a phrase
    of the line about place P, found in the text only in phrases about other places, is not P's."""
    in_text = {n for _, _, n in _place_spans(text, list(names))}
    if len(in_text) < 2:
        return ""
    # A name the line forms from a place and what follows it (「广安铝产业基地」) where the text
    # forms it with another place only (「广元铝产业基地」; 「广安、达州玄武岩基地」 names both).
    alt = "|".join(re.escape(n) for n in sorted(in_text, key=len, reverse=True))
    for _, end, name in _place_spans(said, list(in_text)):
        nxt = said[end:end + 2]
        if len(nxt) == 2 and all(_HAN_RE.fullmatch(c) for c in nxt) and name + nxt not in text \
                and any(other + nxt in text for other in in_text if other != name) \
                and not re.search(re.escape(name) + f"(?:[、和与及](?:{alt}))+" + re.escape(nxt), text):
            return name
    segments = _segments(text, list(in_text))
    for owners, seg in _segments(said, list(in_text)):
        if not owners:
            continue
        for gram in sorted(han_pairs(seg)):
            holders = [o for o, t in segments if gram in t]
            if holders and all(o and not o & owners for o in holders):
                return "、".join(sorted(owners))
    return ""


def speaks_of(place: str, said: str, text: str, names: Collection[str]) -> bool:
    """Whether `text` says `said` of `place`: half of its character pairs are in the phrases of
    the text about that place (「…开工建设阆中机场,推进通用机场建设」 does not say 推进通用机场建设
    of 阆中)."""
    grams = han_pairs(said)
    about = "".join(t for owners, t in _segments(text, [n for n in names if n in text])
                    if place in owners)
    return bool(grams) and 2 * sum(g in about for g in grams) >= len(grams)


def said_of(place: str, question: str, text: str, common: Collection[str] = (),
            share: float = 0.5) -> bool:
    """Whether a phrase of `text` (cut at commas) naming `place` holds half of the character
    pairs of the question that the text has, not counting pairs of `common` words (the region's
    name): 「新能源车的产业基地放在哪个市」 is said of 南充 in 「…广安、达州玄武岩基地建设…,推动南充
    新材料产业基地和新能源汽车产业基地建设」, not of 广安. Coarser than speaks_of: items of one
    list share what follows them (「支持达州经济开发区、…南充经济开发区升级为国家级…」). `share`:
    of the pairs, how many the phrase must hold."""
    skip = set().union(*(han_pairs(c) for c in common)) if common else set()
    grams = {g for g in han_pairs(question) if g in text and g not in skip}
    about = "".join(p for p in re.split(r"(?<=[，,；;。：:！？])", text) if place in p)
    return bool(grams) and sum(g in about for g in grams) >= share * len(grams)


def phrase_about(place: str, question: str, text: str, names: Collection[str]) -> str:
    """The phrase of `text` about `place` sharing most character pairs with the question, or ''
    (「推动南充新材料产业基地和新能源汽车产业基地建设」 for 南充 and a question on 新能源车)."""
    grams = han_pairs(question)
    scored = [(len(grams & han_pairs(t)), t) for owners, t in
              _segments(text, [n for n in names if n in text]) if place in owners]
    best = max(scored, default=(0, ""), key=lambda x: x[0])
    return best[1].strip("，,；;。：:、 ") if best[0] else ""


def han_pairs(text: str) -> set[str]:
    """The pairs of adjacent Han characters in text: a tokenizer-free measure of shared wording."""
    return {text[i:i + 2] for i in range(len(text) - 1)
            if _HAN_RE.fullmatch(text[i]) and _HAN_RE.fullmatch(text[i + 1])}


def _repetitive(sentence: str, source: str = "") -> bool:
    """The small model sometimes loops ("南充、达州、广安、南充、达州…"). A repeat the `source`
    sentence itself has is a copy, not a loop (「达州经济开发区、巴中经济开发区、南充经济开发区」)."""
    grams = [sentence[i:i + 4] for i in range(len(sentence) - 3)]
    return any(grams.count(g) >= 3 and source.count(g) < grams.count(g) for g in set(grams))


class Verifier:
    """Checks sentences against the clauses that were given to the model for this question."""

    def __init__(self, given: list[Clause], place_names: set[str] | frozenset[str] = frozenset(),
                 context_terms: set[str] | frozenset[str] = frozenset(),
                 terms: Callable[[str], list[str]] | None = None,
                 vocabulary: frozenset[str] = frozenset()):
        self.given = {c.id: c for c in given}
        # Characters of the whole document: a Han character it never uses (钒, 钛) is a word the
        # model brought in, which the word tokenizer may split into single characters and miss.
        self.vocabulary = vocabulary
        self.terms = terms  # content-word tokenizer; with it, unsupported words are counted
        self.place_names = place_names  # known place names (from the documents and a gazetteer)
        self.context_terms = context_terms  # terms every answer may use (document title words)

    def check_text(self, sentence: str, text: str, asked: str = "", scope: str = "") -> str:
        """'' if the sentence is supported by this text (numbers, places, quotes, wording).

        `asked`: the question; its wording may be restated (「…要实施的是“一干多支”发展战略」),
        but every number, place and quote must still come from `text`, and a content word of
        the question counts only if `scope` (the evidence's clause) has it too: 「达州组货基地」
        may not take 组货基地 from the question and 达州 from a clause about something else.
        """
        question = asked
        if asked and scope and self.terms is not None:
            asked = "".join(t for t in self.terms(asked) if normalize(t) in normalize(scope)
                            or t in CONNECTIVES or ASKING_WORDS.fullmatch(t)) + "".join(
                ch for ch in asked if not _HAN_RE.match(ch))
        if bad := _numbers_ok(sentence, text):
            return f"数字“{bad}”不在该条款中"
        # With the question given, the region's own name is excused only where the question
        # used it: 「南充是川东北经济区的北部中心城市」 must not replace 成渝经济区 unchecked.
        excused = {t for t in self.context_terms if not asked or t in asked}
        for place in self.places_in(sentence):
            if place not in text and place not in excused:
                return f"地名“{place}”不在该条款中"
        if place := misattributed(sentence, text, self.place_names):
            return f"原文没有这样说{place}"
        for q in _QUOTE_RE.findall(sentence):
            if normalize(q) not in normalize(text):
                return f"引文“{q}”与原文不符"
        for name in named_things(sentence):
            if not _names_in(name, text) and normalize(name) not in normalize(question):
                return f"名称“{name}”与原文不符"
        # A character the document never uses, outside the question's own wording and the
        # framing words (包括, 按照), is a word the model brought in.
        novel = [ch for ch in _HAN_RE.findall(sentence)
                 if ch not in self.vocabulary and ch not in GRAMMAR_CHARS] if self.vocabulary else []
        if novel:
            framing = "".join(w for w in CONNECTIVES if w in sentence) + question
            if novel := [ch for ch in novel if ch not in framing]:
                return f"“{''.join(novel)}”不见于文件"
        if support(sentence, text + asked) < MIN_SUPPORT:
            return "内容在该条款中找不到依据"
        if self.terms is not None:
            norm = normalize(text + asked).lower()  # the tokenizer lowercases (5A → 5a)
            said = normalize(sentence).lower()
            missing = [t for t in dict.fromkeys(self.terms(sentence)) if len(t) >= 2
                       and normalize(t).lower() not in norm and t not in CONNECTIVES
                       and not any(t in c for c in excused) and not self._seam(t, said, norm)]
            # Restating the question is allowed; then every other word must be in the text.
            if len(missing) > (0 if asked else MAX_UNSUPPORTED_TERMS):
                return f"“{'、'.join(missing[:3])}”不在该条款中"
        return ""

    @staticmethod
    def _seam(token: str, sentence: str, text: str) -> bool:
        """A two-character token jieba cut across a word seam (重点镇|要 → 「镇要」, 打造|成 →
        「造成」): one of its characters belongs to an evidence word with its neighbour outside
        the token; or a three-character token of two words joined by 和/与/及 (「…联运港和经达州…」
        → 「港和经」). Longer words, and the longer words search mode also yields, are still checked."""
        if len(token) == 3 and token[1] in "和与及":  # 港|和|经: two words joined by 和
            return any(sentence[i - 1:i + 1] in text and sentence[i + 2:i + 4] in text
                       for i in (m.start() for m in re.finditer(re.escape(token), sentence))
                       if i > 0)
        if len(token) != 2:
            return False
        for i in (m.start() for m in re.finditer(re.escape(token), sentence)):
            left, right = sentence[max(i - 1, 0):i + 1], sentence[i + 1:i + 3]
            if (i > 0 and left in text) or (len(right) == 2 and right in text):
                return True
        return False

    def places_in(self, sentence: str) -> list[str]:
        """Known place names mentioned in the sentence, without overlaps."""
        return places_in(sentence, self.place_names)
