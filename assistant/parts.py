"""One part of a question: which sentences may answer it, and its line checked as it streams.

A part's *plan* is made before the model runs (the candidate sentences that hold what the part
asks); `PartWriter.write` then reads the model's line for that part phrase by phrase, shows each
prefix that passes verification against one evidence sentence, and otherwise falls back to the
part's best evidence quoted, or says what the text does not give.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from itertools import accumulate
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from .answerability import (COMES_ABOUT, MEASURED, AnswerabilityJudge, asked_kind, asks_which,
                            gives_kind, kind_pattern)
from .citations import (ASKING_WORDS, CONNECTIVES, Citation, Verifier, misattributed,
                        phrase_about, places_in, resolve_ref, said_of, speaks_of, strip_marks,
                        support)
from .corpus import Clause, Sentence, arabic_numbers, normalize
from .evidence import (MAX_ANSWER_CHARS, NOT_COVERED, RECIPROCAL, PartAnswer, SentenceRanker, align,
                       asks_location, asks_yes_no, counted_in, is_heading, overview_topic, trim,
                       up_to_terms, without_opening_places)

SHOWN_SHARE = 0.6  # a line cut at its last verified phrase must keep this share of its text
STANDALONE_CHARS = 16  # ... or this many characters: a verified span this long is no fragment
_UNIT = re.compile(r"[\d.一二三四五六七八九十百千万亿]*(?:亿元|万元|元|亿|万|%|％)")  # 9000亿元 names no thing
_BETWEEN = re.compile(r"之间|相互|互相|彼此")
# What a thing is made of is asked, not named, by these (「经济区由几个市组成」 asks of the
# zone and its cities; a sentence need not say 组成).
_MADE_OF = re.compile(r"包括|包含|组成|构成|涵盖")
RARE_CLAUSES = 3  # a one-character word in at most this many clauses names a thing (锂, 港)
REPEATED_SHARE = 0.5  # a line with this share of its bigrams in an earlier part's text repeats it
UNVERIFIED_CHARS = 40  # a line with no verified phrase by now is not waited for any longer
ON_TOPIC_SHARE = 0.5  # a line without the part's words keeps to the phrases that have them
# A thing spoken of in more clauses than this is asked of too broadly to list clause by clause;
# a word in more clauses than this does not name the thing (合作, 城市, 规划).
SPREAD_CLAUSES = 4
# Words that frame an overview question rather than name its thing (「…的表述」「作了哪些部署」).
_FRAME_WORDS = re.compile(r"内容|表述|提法|说法|规定|部署|举措|措施|地方|条款|条目|方面|全文|文件|"
                          r"意见|涉及|提及|提到|散见|要求|政策|机制|这份")
_CLAUSE_REF_RE = re.compile(r"第\s*[（(]?\s*[0-9一二三四五六七八九十]+\s*[)）]?\s*条")


class Sink(Protocol):
    """Where a part's text and citations go (the pipeline's running answer)."""

    citations: list[Citation]
    question: str  # the question as the user wrote it
    parts: list[str]  # the text emitted so far

    def emit(self, text: str) -> Iterator[str]: ...


@dataclass(frozen=True)
class Plan:
    """What is known about one part of the question before the model writes."""

    question: str
    terms: list[str]
    candidates: list[Sentence]
    holding: list[Sentence]  # the best candidates that hold what the part asks (a date...)
    eligible: list[Sentence]  # every candidate that does: what the model's line may rest on
    named: tuple[str, ...] = ()  # places the part names
    own: str = ""  # the part as the user wrote it (`question` has English terms expanded)
    thing: tuple[str, ...] = ()  # what one clause is asked of (a spread part): a line names it


class PartWriter:
    """Plans and writes the parts of an answer over one document's clauses."""

    def __init__(self, clauses: dict[str, Clause], places: set[str], context_terms: set[str],
                 judge: AnswerabilityJudge, titles: str = "",
                 abbreviated: dict[str, list[str]] | None = None):
        self.clauses, self.places, self.context_terms = clauses, places, context_terms
        self.abbreviated = abbreviated or {}  # place → the compounds the text names it in
        self.judge, self.titles = judge, titles  # the documents' titles (振兴, 实施意见)
        self._counts: dict[str, int] = {}
        self._singles: set[str] | None = None

    def plan(self, question: str, ranker: SentenceRanker, own: str = "") -> Plan:
        """One part's content words, ranked candidate sentences, and those that hold its answer.

        `question` is the part as searched (typos corrected, English terms expanded); `own` is
        the part as the user wrote it: the thing a quantity question measures is taken from it.
        """
        named = places_in(question, self.places)
        terms = self._terms(question, ranker)
        candidates = ranker.rank(question, own)
        mine = self._terms(own, ranker) if own else terms
        # The longest words only: 城镇化率, not also 城镇 and 城镇化.
        # English words stand in the searched text as their Chinese equivalents.
        content = [t for t in mine if t not in named and not t.isascii()
                   and not any(t != o and t in o for o in mine)]
        # ... and as the policy terms the glossary added for them (「GDP目标是多少」 measures
        # 地区生产总值, not just 目标).
        if own and question.startswith(own):
            glossed = self._terms(question[len(own):], ranker)
            content += [t for t in glossed if t not in content and t not in named
                        and not any(t != o and t in o for o in glossed)]
        # One-character words the document uses in few clauses name things too (锂, 钾, 港):
        # words the text itself writes alone, not characters of its longer words (着 of 着力,
        # 老 of 老区, in 「家里还住着老土坯房」).
        alone = self._single_words(ranker.tokenizer)
        singles = [t for t in ranker.tokenizer(question) if len(t) == 1 and t in alone
                   and "\u4e00" <= t <= "\u9fff" and 1 <= self.clause_count(t) <= RARE_CLAUSES]
        asked = list(dict.fromkeys(terms + named + singles
                                   + re.findall(r"\d+", arabic_numbers(question))))
        eligible = [s for s in candidates if self._holds(question, s, content, singles, asked)]
        # 「开通哪些航线」: if the best candidate with the kind asked has it only after a quantity
        # naming none (开通更多航线), the text does not name them; another sentence's names
        # (南充、广元机场; 苍溪、西充 for another 示范县) answer something else.
        for noun in self.judge.which(question):
            having = [s for s in candidates if noun in s.text]
            if having and self.judge.names_none(noun, having[0].text):
                eligible = []
        # A part about a named place rests on sentences that name it: 「达州的定位」 must not be
        # answered with 南充's sentence of the same clause.
        # A place is named by the compounds the text writes it in too (重庆: 川渝; 法国, named
        # only so: 中法).
        compounds = [c for p, cs in self.abbreviated.items()
                     if p in question and p not in self.context_terms
                     for c in cs]
        naming = [s for s in eligible if any(p in s.text for p in [*named, *compounds])
                  or set(named) & self.by_initials(s.text)]
        # Two or more of the text's own places (the cities the region is made of), whose
        # sentences share no word of the question, nor the words the glossary searched it with:
        # it asks of something between them, which a sentence naming none of the cities says of
        # each: 「在南充医院做的化验，拿到达州医院还认不认」 is answered by 「推动各市之间…医学检验
        # 结果互认」, not by 达州's customs office. (Not one city: 「广元被摆在啥位置」 is 6's, not
        # 一-1's 功能定位 said of the region.) A sentence naming another city is that city's.
        members = self.members
        shared = [t for t in terms if len(t) >= 2 and t not in named]
        if (naming and len(set(named)) >= 2 and set(named) <= members
                and not any(t in s.text for s in naming for t in shared)):
            unplaced = re.sub("(?:" + "|".join(map(re.escape, named)) + ")市?", "", question)
            unnamed = [t for t in asked if t not in named]
            general = [s for s in candidates if not any(m in s.text for m in members)
                       and any(t in s.text for t in shared)
                       and self._holds(unplaced, s, content, singles, unnamed)]
            naming = [s for s in candidates if s in general or s in naming]
        # A place named only in a statement opening the question (「广元冬天雾霾不少，文件对治理
        # 空气污染有啥措施」) is where the asker is, not what is asked, when the sentences naming
        # it share none of the question's other words: the part is planned without it.
        elif naming and own and not any(t in s.text for s in naming for t in mine
                                        if len(t) >= 2 and t not in named):
            bare = without_opening_places(own, named)
            if bare != own:
                return self.plan(without_opening_places(question, named), ranker, bare)
        # If none does, the text does not say this of the place (「绵阳的产业怎么发展」: another
        # sentence's 产业 is not 绵阳's).
        eligible = naming if named or compounds else eligible
        # So does a part with a word the document uses in few clauses (社会治安, 土坯房): a line
        # from a sentence without it answers something else (「社会治安方面…」 → 社会保险's).
        # The searched question's own longest words count too: 社保 is searched as 社会保险.
        # Not the abbreviation compounds a named place is searched with: those stand for the
        # place (`naming` above), and the longest of them (川渝陕甘) would shut out the others.
        every_compound = {c for cs in self.abbreviated.values() for c in cs}
        searched = [t for t in terms if t not in named and not t.isascii()
                    and t not in every_compound
                    and not any(t != o and t in o for o in terms)]
        # (And the rare one-character words: 「锂钾资源要建成什么」 is about 锂 and 钾.)
        rare = [t for t in dict.fromkeys(content + searched + singles)
                if 1 <= self.clause_count(t) <= RARE_CLAUSES
                and t not in self.titles  # 振兴 of 「…振兴发展的实施意见」 is everywhere in sense
                and not _BETWEEN.fullmatch(t)]  # 之间 relates things, it names none
        # A quantity or date of a thing the text names in few clauses must be given in a
        # sentence naming it, the rarest of the question's words, when the best sentence for the
        # question names it (the question is about that thing): 「红鱼洞水库的库容有多大」 is
        # not answered by 一批小型水库 of the next sentence, nor 「…什么时候建成」 by another
        # sentence's 到2022年…建成, when the sentence naming 红鱼洞水库 gives neither.
        # So is 「…示范县是哪几个县」: which one is named where the thing is (not 苍溪、西充 of
        # another sentence's 示范县).
        if rare and (asked_kind(question) in MEASURED or asks_which(question)):
            fewest = min(self.clause_count(t) for t in rare)
            rarest = [t for t in rare if self.clause_count(t) == fewest]
            if candidates and any(t in candidates[0].text for t in rarest):
                eligible = [s for s in eligible if any(t in s.text for t in rarest)]
        # A word of a measure's heading is said of every sentence of it (「新兴产业上要建哪些基地」
        # → 10.4's 新材料产业基地, under 「加快培育新兴产业」).
        eligible = [s for s in eligible if any(t in self._headed(s) for t in rare)] or eligible
        # Those holding more of them first (9.4's 锂 and 钾 before 一-2.1's 建成), and the best
        # is a candidate even when sentences with more common words of the question rank higher.
        eligible = sorted(eligible, key=lambda s: -sum(t in self._headed(s) for t in rare))
        # A measure's title (「打造幸福美丽新村升级版。」) names what the question is about; the
        # answer is in its body: the clause's best other sentence comes before it (not for
        # 「…在哪一条」, which the title answers best).
        ordered: list[Sentence] = []
        for s in eligible:
            if is_heading(s) and not asks_location(question):
                ordered += [b for b in eligible if b.clause_id == s.clause_id
                            and not is_heading(b) and b not in ordered][:1]
            if s not in ordered:
                ordered.append(s)
        eligible = ordered
        top = set(candidates[:4]) | set(naming[:2]) | set(eligible[:1])
        return Plan(question, terms, candidates, [s for s in eligible if s in top], eligible,
                    tuple(named), own)

    def _holds(self, question: str, s: Sentence, content: list[str], singles: list[str],
               asked: list[str]) -> bool:
        """Whether sentence `s` may answer the part: it holds the kind asked, shares a word
        with the part (a measure's heading is said of each of its sentences: 「谁来负责落实」 is
        answered by 26.2's 责任主体 under 「落实主体责任」), and its clause has one of `asked`."""
        return (self.verdict(question, (s,), content).answerable
                and self.judge.relevant(question, self._headed(s), self.context_terms, singles)
                and self.judge.covers(asked, self.clauses[s.clause_id].text))

    def rare_words(self, plan: Plan) -> list[str]:
        """The part's own words the document uses in few clauses (成南达万高铁, 土坯房), not the
        coming about asked of a thing (建成, 通车)."""
        return [t for t in plan.terms if len(t) >= 2 and t not in plan.named
                and not COMES_ABOUT.fullmatch(t) and not _UNIT.fullmatch(t)
                and 1 <= self.clause_count(t) <= RARE_CLAUSES and t not in self.titles
                and (not plan.own or t in plan.own)]

    def thing_before(self, plan: Plan, before: Plan) -> list[str]:
        """The rare words of `before` that `plan` asks of, when it asks a date or a quantity and
        names nothing rare, nor a place, of its own (「…？预计哪一年建成通车」); else none."""
        thing = self.rare_words(before)
        if (not thing or plan.named or self.rare_words(plan)
                or asked_kind(plan.question) not in MEASURED):
            return []
        return [t for t in thing if not any(t != o and t in o for o in thing)]

    @staticmethod
    def naming_only(plan: Plan, words: list[str]) -> Plan:
        """`plan` kept to the sentences naming one of `words`."""
        keep = [s for s in plan.eligible if any(t in s.text for t in words)]
        return replace(plan, holding=[s for s in plan.holding if s in keep], eligible=keep)

    def _headed(self, s: Sentence) -> str:
        """The sentence with its measure's heading before it (the heading alone as itself)."""
        title = self.clauses[s.clause_id].title
        return s.text if is_heading(s) or not title else f"{title}。{s.text}"

    def thing(self, plan: Plan) -> list[str]:
        """The words that name what an overview question (`asks_overview`) asks all about, such
        that sentences of 2..SPREAD_CLAUSES clauses hold them all; [] if none do.

        The places the question names and its quoted words, or without quotes its other words,
        not the relation or aspect asked about (合作, 之间), the stages of 「从开采到利用」 or the
        asking itself (「…有关的内容」「…作了哪些部署」). Words next to each other that the
        text writes together are one (大熊猫国家公园). If no sentence holds all of them, the
        places with each other word alone, longest first: 「在生态环保方面，对嘉陵江流域都提了
        哪些要求」 is about 嘉陵江流域 (the text says 环保 elsewhere). Kinds of provision (机制,
        措施, 规定) are the asking too: 「应急方面的合作机制」 is about 应急 (第（二十）条 says
        应急协作机制, 第（二十二）条 应急管理合作)."""
        own = plan.own or plan.question
        quoted = [q for q in re.findall(r"[“「\"‘]([^”」\"’]{2,12})[”」\"’]", own)
                  if self.clause_count(q)]
        topic = overview_topic(own)
        words = quoted or [t for t in plan.terms if t in topic and t not in plan.named
                           and not t.isascii() and not RECIPROCAL.search(t)
                           and not _FRAME_WORDS.fullmatch(t) and t not in self.titles
                           and not any(t != o and t in o for o in plan.terms)
                           and self.clause_count(t)]
        words = self._compounds(words, own)
        named = list(plan.named)
        tries = [named + words]
        if len(words) > 1 and not self.naming(tries[0]):  # no sentence says them together
            tries += [named + [w] for w in sorted(words, key=len, reverse=True)]
        return next((thing for thing in tries
                     if thing and 2 <= len(self.naming(thing)) <= SPREAD_CLAUSES), [])

    def _compounds(self, words: list[str], question: str) -> list[str]:
        """Words written next to each other in the question and in the text are one word:
        「大熊猫国家公园」 is one thing, not 大熊猫, 国家 and 公园."""
        words = list(words)
        while pair := next(((a, b) for a in words for b in words if a != b
                            and a + b in question and self.clause_count(a + b)), None):
            a, b = pair
            words = [a + b if w == a else w for w in words if w != b]
        return words

    def naming(self, thing: list[str]) -> list[str]:
        """The ids of the clauses with a sentence that holds every word of `thing`, in
        document order."""
        return [c.id for c in self.clauses.values()
                if any(all(t in s.text for t in thing) for s in c.sentences)] if thing else []

    def spread(self, plan: Plan) -> list[Plan]:
        """For a question asking all the text says of a thing (`asks_overview`): one plan per
        clause with an eligible sentence naming the thing (`thing`), when 2..SPREAD_CLAUSES
        clauses have one; else []. 「南充机场有哪些安排」 → 第（一）条's 改扩建 and 第（二十三）条's
        开通更多航线, each part checked against its own clause's sentence."""
        thing = self.thing(plan)
        if not thing:
            return []
        firsts: dict[str, Sentence] = {}
        for s in plan.eligible:
            if all(t in s.text for t in thing):
                firsts.setdefault(s.clause_id, s)
        if not 2 <= len(firsts) <= SPREAD_CLAUSES:
            return []
        order = self.naming(thing)  # in the document's order
        return [replace(plan, candidates=[s], holding=[s], eligible=[s], thing=tuple(thing))
                for s in sorted(firsts.values(), key=lambda s: order.index(s.clause_id))]

    def apart(self, halves: list[Plan], items: tuple[str, str]) -> list[Plan]:
        """The two halves of 「A和B…」 whose best sentences are in one clause that names only A
        (「红色旅游和红色文化」, both led to 第（九）条's 红色旅游): B rests on its best sentence
        in another clause instead (第（二十一）条's 红色文化传承区), if it has one."""
        tops = [h.holding[0] if h.holding else None for h in halves]
        if None in tops or tops[0].clause_id != tops[1].clause_id:
            return halves
        has = [item in top.text for item, top in zip(items, tops, strict=True)]
        if has.count(True) != 1:
            return halves
        k = has.index(False)
        clause = tops[k].clause_id
        moved = replace(halves[k], holding=[s for s in halves[k].holding if s.clause_id != clause],
                        eligible=[s for s in halves[k].eligible if s.clause_id != clause])
        # ... a clause that speaks of B (小城镇 for 城镇), not one the ranking offers for the
        # rest of the question (「培训和留人」: 留人 is nowhere in the text).
        if not moved.holding or items[k] not in self.clauses[moved.holding[0].clause_id].text:
            return halves
        return [moved, halves[1]] if k == 0 else [halves[0], moved]

    def _single_words(self, tokenizer: Callable[[str], list[str]]) -> set[str]:
        """The one-character words of the document as its tokenizer cuts it (memoised)."""
        if self._singles is None:
            self._singles = {t for c in self.clauses.values() for t in tokenizer(c.text)
                             if len(t) == 1}
        return self._singles

    @cached_property
    def members(self) -> set[str]:
        """The places the document is about (a region's cities): those named in at least half
        as many clauses as the place named in most, not the partners it names in passing."""
        counts = {p: self.clause_count(p) for p in self.places}
        most = max(counts.values(), default=0)
        return {p for p, n in counts.items() if n and 2 * n >= most}

    @cached_property
    def _initials(self) -> str:
        """The first characters of the places the document names, as a character class."""
        return "".join(sorted({p[0] for p in self.places if self.clause_count(p)}))

    def by_initials(self, text: str) -> set[str]:
        """The region's cities `text` names by their first characters in a run of three or more
        initials of distinct places of the document, two of them the region's (成南达万高铁:
        成都, 南充, 达州, 万州; 广巴达发展带), so that 「达州要通哪条高铁」 reaches it."""
        members = self.members
        found: set[str] = set()
        for m in re.finditer(f"[{self._initials}]{{3,}}", text):
            run = m.group(0)
            mine = {p for p in members if p[0] in run}
            if len(set(run)) == len(run) and len({p[0] for p in mine}) >= 2:
                found |= mine
        return found

    def clause_count(self, word: str) -> int:
        """In how many of the document's clauses `word` occurs (memoised)."""
        if word not in self._counts:
            self._counts[word] = sum(word in c.text for c in self.clauses.values())
        return self._counts[word]

    def _terms(self, text: str, ranker: SentenceRanker) -> list[str]:
        words = [t for t in ranker.terms(text) if not ASKING_WORDS.fullmatch(t)
                 and not _MADE_OF.fullmatch(t) and not any(t in c for c in self.context_terms)]
        # A preposition cut into the word after it (在城镇 of 「在城镇生态建设上」) is that word:
        # as a word of its own it is found only where the text has the same two (4.3's
        # 「在城镇热点公共区域」) and would seem a rare word of the question.
        return [t for t in words if not (len(t) > 2 and t[0] in _PREPOSITIONS and t[1:] in words)]

    def missing(self, plan: Plan) -> str:
        """Why no evidence answers this part, in Chinese."""
        verdict = self.verdict(plan.question, tuple(plan.candidates[:1]))
        return verdict.reason or "文件没有写这方面的内容"

    def write(self, run: Sink, index: int, plan: Plan, events, verifier: Verifier,
              taken: dict[str, str] | None = None, *, line_no: int | None = None,
              final: bool = True):
        """One part: the model's line, verified phrase by phrase against one evidence sentence
        and shown when the line ends; else that part's best evidence quoted; else what the text
        does not give. Returns the PartAnswer.

        A line is shown up to its last verified phrase only if that is most of what it wrote
        (SHOWN_SHARE) or a span that stands on its own (STANDALONE_CHARS): 「海绵城市」 of
        「海绵城市、…是城市内涝问题的重要应对措施」 is a fragment,
        and the evidence quoted answers better. A line that repeats what an earlier part's line
        said from the same sentence (`taken`: sentence id → that part's text) does not answer
        this one; a line saying something else from that sentence does.

        `line_no` is the part's line in `events` (default `index`). Unless `final`, a part whose
        line was written but failed emits nothing and comes back as mode "retry", so that the
        model can be asked again for it before its evidence is quoted."""
        taken = taken or {}
        question, terms, holding = plan.question, plan.terms, plan.holding
        asked = (question, getattr(run, "question", "") or "")
        shown, evidence, line, start, written = "", None, "", None, ""
        # A verified span of STANDALONE_CHARS is kept whatever follows, so it is shown now
        # rather than at the line's end, unless a check at the end may still reword or drop it:
        # a where-question's places, a whether-question's 是/不, a place to lead the line with.
        early = not (_ASKS_PLACE.search(question) or asks_yes_no(question))
        sent, sep = "", "" if index == 0 else "\n"  # what is shown of the line so far
        sent_evidence = None
        for n, text, done in events_for(events, index if line_no is None else line_no):
            # An empty pair of quote marks (「」依据：「…」) is stray markup, not words.
            line = _EMPTY_QUOTES.sub("", strip_marks(text)[0]).lstrip(_NO_OPENING)
            line = _strip_title(_unbooked(line, self.titles), list(self.clauses.values()))
            # Marks a line cannot open with (「」；「开展…」 copied from between two quotes).
            line = _balanced_open(line.lstrip(_NO_OPENING))
            body = line.rstrip("，,、；;：:。！？!?")
            if start is not None:
                written = _balanced(body[start:])
            if len(text) >= MAX_ANSWER_CHARS:  # cut off by the length limit
                found = self._longest(body, start, asked, plan, verifier, taken, shown)
                if found is not None:
                    evidence, start, shown = found
                break
            if not holding or NOT_COVERED in line or len(body) < 4:
                continue
            # The line as written, else without its opening that restates the question
            # (「南充的城市定位是」: the user asked that, and the text need not say it).
            s, k = None, None
            for k in ([start] if start is not None else answer_starts(body, asked, self.places)):
                said = _balanced(body[k:])
                s = self._check(said, plan, verifier)
                if s is not None and support(said, taken.get(s.id, "")) < REPEATED_SHARE:
                    break
                s = None
            if s is None:
                if done or shown or len(body) > UNVERIFIED_CHARS:
                    # Stop at the last verified word: 「…金牛道、阴平道三条」 keeps 阴平道.
                    found = self._longest(body, start, asked, plan, verifier, taken, shown)
                    if found is not None:
                        evidence, start, shown = found
                    break  # (or give up on this line)
                continue
            evidence, start = s, k
            shown = written = _balanced(body[k:])
            if (early and not done and len(shown) >= STANDALONE_CHARS
                    and shown.startswith(sent) and not _YES_NO_RE.match(shown)
                    and (not plan.named or any(p in shown for p in plan.named))):
                yield from run.emit((sep if not sent else "") + shown[len(sent):])
                sent, sent_evidence = shown, s
        if sent:  # shown in part already: the rest of what verified, then its citation
            kept = _without_idle_tail(shown, question, verifier)
            if not kept.startswith(sent):  # (what followed reworded it): what was shown
                kept, evidence = sent, sent_evidence
            return (yield from self._generated(run, index, question, kept, evidence, sent))
        if holding and line:
            found = self._places_answer(body, asked, plan)  # 「…放在南充」: a place, no more
            if found is not None:
                evidence, shown = found
                written = shown
        # A line about a named place that no longer names it (its opening restated the
        # question: 「广元的城市定位是…」) is led by the place, so the answer says whose it is;
        # only when the text says what is left of the line of that place (not 「广安：石墨…」,
        # 巴中's, nor 「阆中：推进通用机场建设」, said of no place).
        lead = [p for p in plan.named if evidence is not None and p in evidence.text
                and not any(q in shown for q in plan.named)]
        if lead and (misattributed("、".join(lead) + shown, evidence.text, self.places)
                     or not all(speaks_of(p, shown, evidence.text, self.places) for p in lead)):
            evidence = None
        # Places the line gives as where what the question asks about is (「新能源汽车产业基地放在哪个市」
        # → 「广安和达州」) must be the ones the text says it of, not others of the same sentence.
        if evidence is not None and _ASKS_PLACE.search(question) and not all(
                said_of(p, question, evidence.text, self.context_terms)
                for p in places_in(shown, self.places) if p not in question):
            evidence = None
        if evidence is not None and shown and (len(shown) >= SHOWN_SHARE * len(written)
                                               or len(shown) >= STANDALONE_CHARS):
            shown = self._yes_or_no(_without_idle_tail(shown, question, verifier), plan, evidence)
            if lead:  # 「南充：建设…」, not 「南充：包括建设…」
                shown = "、".join(lead) + "：" + (_without_connectives(shown) or shown)
            return (yield from self._generated(run, index, question, shown, evidence))
        if not holding:
            part = PartAnswer(question, "not_covered", "", (), self.missing(plan))
        elif line and not final:
            return PartAnswer(question, "retry", line, holding[:1], "回答未通过核对")
        else:  # the model's own "文件未涉及" is not trusted over evidence that holds the answer
            best = holding[0]
            part = PartAnswer(question, "quoted",
                              trim(best.text, terms, keep=kind_pattern(question),
                                   counted=counted_in(question)) or best.text, (best,),
                              "回答未通过核对" if line else "模型未作答")
        yield from run.emit(self.text(part, run, first=index == 0))
        return part

    def _generated(self, run: Sink, index: int, question: str, shown: str, evidence: Sentence,
                   sent: str = ""):
        """A verified line, after what of it was shown already (`sent`), with its citation."""
        label = self.clauses[evidence.clause_id].label
        run.citations.append(Citation(evidence.clause_id, label, evidence.text, True, evidence.id))
        sep = "" if index == 0 or sent else "\n"
        yield from run.emit(f"{sep}{shown[len(sent):]}〔{label}〕。")
        return PartAnswer(question, "generated", shown, (evidence,))

    def _longest(self, body: str, start: int | None, asked: tuple[str, ...], plan: Plan,
                 verifier: Verifier, taken: dict[str, str], shown: str
                 ) -> tuple[Sentence, int, str] | None:
        """The longest start of the line, cut between words, that verifies and says more than
        `shown`: the phrase that failed may fail only on its last words (「阴平道三条」,
        「110kV等电压等级」). Only cuts that would be shown are tried (SHOWN_SHARE of the line, or
        STANDALONE_CHARS)."""
        words = getattr(verifier.terms, "words", None)
        if words is None:
            return None
        for k in [start] if start is not None else answer_starts(body, asked, self.places):
            rest = body[k:]
            floor = max(len(shown), min(SHOWN_SHARE * len(rest), STANDALONE_CHARS - 1))
            ends = [e for e in accumulate(len(w) for w in words(rest)) if floor < e < len(rest)]
            for end in reversed(ends):
                if re.search(r"\d", rest[end:]):
                    break  # a figure that failed is not cut off: 「力争突破12000亿元」 is wrong
                said = _balanced(rest[:end].rstrip("，,、；;：:。 和与及的"))
                if len(said) <= len(shown):
                    break
                # What is kept of the failed phrase is a list item (after 、), not the start of
                # a phrase: 「…年度重点工作方案,明确」 ends on a verb without its object.
                # Or it ends where a phrase of the text ends (「…货运出海新通道」 of
                # 「…新通道的合作」): the words cut off were the model's.
                mark = max(said.rfind(c) for c in "，,；;：:、。！？!?")
                ends = [e for e in plan.eligible if _ends_phrase(said, e.text)]
                if mark >= 0 and said[mark] != "、" and not ends:
                    continue  # only a list item is cut: 「…保护传统村落，加快农村」 is a fragment
                # ... and it is a whole item in the text's own words: 「…协作，是推动川」 is not,
                # nor 「建设中欧班列」 of 「建设中欧班列广元组货基地」.
                kept = _without_connectives(said[mark + 1:] if mark >= 0 else said[len(shown):])
                s = self._check(said, plan, verifier)
                if (s is not None and support(said, taken.get(s.id, "")) < REPEATED_SHARE
                        and (s in ends or _is_item(kept, s.text, whole=mark >= 0))):
                    return s, k, said
        return None

    def _places_answer(self, body: str, asked: tuple[str, ...], plan: Plan
                       ) -> tuple[Sentence, str] | None:
        """A line whose answer is only places (「EV新能源车的产业基地放在南充」 → 南充), each of
        which an eligible sentence says what the question asks of: the places, each with the
        phrase the text says it in (「南充：推动南充新材料产业基地和新能源汽车产业基地建设」).
        Too short for the phrase checks, so checked here, place by place."""
        for k in answer_starts(body, asked, self.places):
            said = body[k:].strip()
            names = places_in(said, self.places)
            rest = said
            for n in names:
                rest = rest.replace(n, "")
            if not names or rest.strip("、和与及 ") or any(n in plan.question for n in names):
                continue
            for s in plan.eligible:
                phrases = [phrase_about(n, plan.question, s.text, self.places) for n in names]
                if all(phrases) and all(said_of(n, plan.question, s.text, self.context_terms)
                                        for n in names):
                    return s, f"{said}：{'；'.join(dict.fromkeys(phrases))}"
        return None

    def _yes_or_no(self, shown: str, plan: Plan, evidence: Sentence) -> str:
        """A line that opens with yes or no (「是。依据：文件原文提到“…」): the opening is a claim
        the phrase checks do not cover. 「是」 stays only if every word of the question is in the
        evidence's clause (「阆中建国际机场，是真的吗」: 国际 is not, so no 「是」); a 「不/没有」 never
        stays (what follows is the text's own positive sentence). Framing words after it go."""
        m = _YES_NO_RE.match(shown)
        if m is None:
            return shown
        rest = _balanced_open(_SAYS_RE.sub("", _FRAMING_RE.sub("", shown[m.end():])))
        if len(rest) < 4:
            return shown
        if rest.startswith("“") and rest.endswith("”") or rest.startswith("「") and rest.endswith("」"):
            rest = rest[1:-1]
        clause = self.clauses[evidence.clause_id].text
        claim = _ASKING_WHETHER_RE.sub("", plan.question)  # what the question supposes
        holds = all(t in clause for t in plan.terms if t in claim)
        return f"是，{rest}" if m.group(1) in _YES and holds else rest

    def _check(self, said: str, plan: Plan, verifier: Verifier) -> Sentence | None:
        """The eligible sentence that supports `said` (a line, or its answer after the
        restated question), or None."""
        if len(said) < 4 or not _adds_to(said, plan.question, verifier, plan.own):
            return None
        # A part on what one clause says of a thing speaks of it (「…白酒产业基地…」 from the
        # sentence that opens with 天然气综合开发利用示范区 does not).
        if not all(t in said for t in plan.thing):
            return None
        # 「写在第14条」: a reference to the evidence's own clause is checked, not its number.
        refs = [m.group(0) for m in _CLAUSE_REF_RE.finditer(said)]
        # A part about a named place is not answered by a line about other places only
        # (「巴中在产业上…」 → 「打造广元铝产业基地」 from a sentence that names both).
        if plan.named and not any(p in said for p in plan.named) and places_in(said, self.places):
            return None
        s = align(_CLAUSE_REF_RE.sub("", said), plan.eligible, verifier, plan.question)
        if s is not None and any(resolve_ref(r, self.clauses) != s.clause_id for r in refs):
            return None
        # The line is about the question: it or its sentence has a word of it, or a figure
        # (「破九千亿」 is answered by 「…突破9000亿元」).
        # ... and not from the phrases after those that speak of it: 「对环境准入有哪些约束」 is
        # not answered by 「共同打好蓝天保卫战…」 of 「强化…环境准入清单的约束,共同打好…」.
        # A place the question names says where, not what: a line sharing only 南充 with
        # 「医保在南充，跨市看门诊能不能联网结算」 is about something else of 南充.
        figures = re.findall(r"\d+", arabic_numbers(plan.question))
        # (Nor do words relating the places: 「达州和万州之间都有哪些合作」 asks of the places.)
        topic = [t for t in plan.terms if t not in plan.named
                 and not RECIPROCAL.fullmatch(t)] or plan.terms
        words = [t for t in topic if not re.search(r"\d", t)]  # 到2022年 frames, not asks
        if s is None or not (any(t in said for t in topic) or not plan.terms
                             or any(f in said for f in figures)
                             or support(said, up_to_terms(s.text, words)) >= ON_TOPIC_SHARE):
            return None
        if not gives_kind(plan.question, said, s.text):  # a when-question's line needs its date
            return None
        # A measure's heading (「加快培育新兴产业。」) says where the text speaks of a thing, not
        # what it says: it answers only a question asking where.
        if is_heading(s) and not asks_location(plan.question):
            return None
        # Of the two things an either-or question offers, the line's must be the sentence's:
        # both are the question's own words, so the checks above cannot tell them apart.
        alternatives = _alternatives(plan.question)
        chosen = [a for a in alternatives if a in said]
        if len(chosen) == 1:
            other = next(a for a in alternatives if a != chosen[0])
            if support(chosen[0], s.text) <= max(support(other, s.text), 0.4):
                return None
        return s

    def verdict(self, question: str, evidence: tuple[Sentence, ...],
                          terms: list[str] | tuple[str, ...] = ()):
        context = "".join(self.clauses[s.clause_id].text for s in evidence)
        return self.judge.check_evidence(question, "".join(s.text for s in evidence), context,
                                         terms)

    def text(self, part: PartAnswer, run: Sink, first: bool) -> str:
        """What one part reads as, with its citations recorded."""
        sep = "" if first else "\n"
        if part.mode == "not_covered":
            return f"{sep}{part.reason}。"
        labels = "、".join(dict.fromkeys(self.clauses[s.clause_id].label for s in part.evidence))
        run.citations += [Citation(s.clause_id, self.clauses[s.clause_id].label, s.text, True, s.id)
                          for s in part.evidence]
        if part.mode == "generated":
            return f"{sep}{part.text.rstrip('。；;.')}〔{labels}〕。"
        if f"「{part.text}」" in "".join(run.parts):  # the same words, already quoted, answer it
            return f"{sep}同上（{labels}）。"
        return f"{sep}{labels}写明：「{part.text}」"


def events_for(events, index: int):
    """The events of line `index` (earlier unread lines are skipped; None: no model)."""
    if events is None:
        return
    for n, text, done in events:
        if n < index:
            continue
        yield n, text, done
        if done:
            return



def _adds_to(line: str, question: str, verifier: Verifier, own: str = "") -> bool:
    """The line names something the question did not (「…有以下安排」「招商引资机制写在」 do not):
    a word, a number (「一共5个市」 to 「几个市」), or one of the two things an either-or question
    offers (「是B型」 to 「是A型还是B型」). `own`: the question as the user wrote it, when
    `question` has English terms expanded (「EV新能源车的产业基地」 restates 「EV 新能源车…」)."""
    words = verifier.terms(line) if verifier.terms else re.findall(r"[\u4e00-\u9fff]{2}", line)
    if any(len(w) >= 2 and w not in question and w not in own and w not in CONNECTIVES
           and w not in ("以下", "如下", "下列", "这些", "方面") for w in words):
        return True
    asked_numbers = set(re.findall(r"\d+", arabic_numbers(question)))
    if set(re.findall(r"\d+", arabic_numbers(line))) - asked_numbers:
        return True
    return len([a for a in _alternatives(question) if a in line]) == 1


# A question asking where (which city, county, place).
_ASKS_PLACE = re.compile(r"哪里|哪儿|在哪|何处|什么地方|哪[一几]?[个些座]?(?:市|县|区|城市|地方|地区|省)")
_EITHER_OR = re.compile(r"([^，,。？?！!是为要在]{2,12})还是([^，,。？?！!吗呢的]{2,12})")


def _alternatives(question: str) -> tuple[str, ...]:
    """The two things an either-or question offers (「…是要开工了还是还在做前期」 →
    要开工了, 还在做前期), or ()."""
    m = _EITHER_OR.search(question)
    return (m.group(1), m.group(2)) if m else ()


# Characters that join a restated question to its answer (「南充的定位是…」「…要建成…」).
_GLUE = set("的是为有在要将把对和与及即就都也还了：:，,、。；;！! “「」』”’？?")  # 了: 为|了实现
# (closing marks and question marks open no answer: 「…起什么作用？」依据：「省直…」)
_PAUSES = ("，", ",", "：", ":", "、")


def answer_starts(line: str, questions: tuple[str, ...], places: Collection[str] = ()
                  ) -> list[int]:
    """Where the line's answer may start, in the order to try: the line as written, then after
    its opening that only restates the question (runs of characters copied from the question,
    framing words, joining characters), earliest first.

    「南充的城市定位是成渝经济区…」 → 成渝经济区…; 「…要建成嘉陵江流域国家…」 → 嘉陵江流域国家…;
    a start that would open on framing words (「依据：」) or on a question fragment before a
    comma (「规划，包括建设…」) is skipped for the one after it."""
    def run_at(i: int) -> int:
        return max((_common_run(line, i, q) for q in questions if q), default=0)

    def word_at(i: int) -> str:
        return next((w for w in CONNECTIVES if line.startswith(w, i)), "")

    def framing(k: int) -> bool:  # 「依据：」「文件原文提到“」, not 「推动异地…」「包括红色旅游…」
        word = word_at(k)
        after = k + len(word)
        return bool(word) and (after >= len(line) or line[after] in _GLUE or bool(word_at(after)))

    starts, i = [], 0
    while i < len(line):
        run, word = run_at(i), word_at(i)
        if run >= 2 or word or (run == 1 and line[i + 1:i + 2] in _PAUSES):
            i += max(run, len(word))
        elif line[i] in _GLUE:
            i += 1
        else:
            break
        if i < len(line) and line[i] not in _GLUE:
            starts.append(i)
    clean = [k for k in starts if not framing(k)
             and not (run_at(k) and line[k + run_at(k):k + run_at(k) + 1] in _PAUSES)]
    # Last, after a whole opening phrase the text does not hold (「达州是川东北经济区的中心城市，
    # 也是东出北上综合交通枢纽…」): the phrases after it may, and only they are shown. Not after a
    # phrase that denies or limits something, nor before 但/而: what follows would change sense.
    phrases = [m.end() for m in re.finditer(r"[，,；;。]", line)]
    for k in phrases:
        while k < len(line) and line[k] in _GLUE:
            k += 1
        if (k < len(line) and not _DENIES.search(line[:k])
                and not line.startswith(_CONTRARY, k)
                and _places_kept(line[:k], line[k:], places, questions)):
            clean.append(k)
    return list(dict.fromkeys([0, *clean]))


def _without_idle_tail(shown: str, question: str, verifier: Verifier) -> str:
    """The line without closing phrases that only restate the question (「…监管机制。社会治安方面」)."""
    pieces = re.split(r"(?<=[，,。；;])", shown)
    while len(pieces) > 1 and not _adds_to(pieces[-1].strip("，,。；; "), question, verifier):
        pieces.pop()
    return "".join(pieces).rstrip("，,。；; ")


def _ends_phrase(said: str, sentence: str, tail: int = 4) -> bool:
    """`said` ends on the last words of one of the sentence's phrases."""
    end = normalize(said)[-tail:]
    return len(end) == tail and _is_item(end, sentence, whole=False, ends=_PHRASE_MARKS)


def _is_item(words: str, sentence: str, whole: bool = True, ends: str = "") -> bool:
    """`words` end an item of the sentence (followed there by a mark or 和/及/等, or by one of
    `ends` if given), and if `whole` also start one (after a mark or 和/与/及): 「阴平道」 of
    「…金牛道、阴平道」 is one, 「建设中欧班列」 of 「建设中欧班列广元组货基地」 and 「建设」 of
    「…等建设,」 are not."""
    words, text = normalize(words), normalize(sentence)
    after = ends or _ITEM_MARKS + "等"
    for m in re.finditer(re.escape(words), text) if words else ():
        a, b = m.start(), m.end()
        if (b == len(text) or text[b] in after) and (
                not whole or a == 0 or text[a - 1] in _ITEM_MARKS):
            return True
    return False


_ITEM_MARKS = "、，,；;：:。和与及"
_PHRASE_MARKS = "、，,；;：:。"


def _without_connectives(words: str) -> str:
    """Without the framing words it opens with (「包括建设…」 → 「建设…」)."""
    while word := next((w for w in CONNECTIVES if words.startswith(w)), ""):
        words = words[len(word):]
    return words


def _places_kept(dropped: str, rest: str, places: Collection[str],
                 questions: tuple[str, ...] = ()) -> bool:
    """Every place the dropped opening names is in the rest too: a place the line claims
    something of is not silently dropped (「阆中要建国际机场，推进通用机场建设」 must not become
    an answer about 阆中 that says 推进通用机场建设). A place the question names may go: the
    answer is then led by it, and shown only if the text says the rest of that place."""
    return all(p in rest or any(p in q for q in questions) for p in places_in(dropped, places))


_DENIES = re.compile(r"不|没|未|无|非|否|除|仅|只|如果|若|虽")
_CONTRARY = ("但", "而", "不过", "然而", "却", "否则")


def _balanced(said: str) -> str:
    """Without a closing quote mark whose opening one was cut off with the restated question."""
    for opening, closing in (("“", "”"), ("「", "」")):
        if said.endswith(closing) and said.count(opening) < said.count(closing):
            said = said[:-1]
    return said


def _common_run(line: str, i: int, question: str) -> int:
    """Length of the longest run of the line starting at i that occurs in the question."""
    n = 0
    while i + n < len(line) and line[i:i + n + 1] in question:
        n += 1
    return n


_PREPOSITIONS = "在对于从向把被和与及跟同给为"
_NO_OPENING = "」』”’）)；;，,、：:。！？!? "
_EMPTY_QUOTES = re.compile(r"「\s*」|“\s*”|『\s*』|（\s*）|\(\s*\)")
_FRAMING_RE = re.compile(r"^(?:根据|依据|按照)[^，,：:。]{0,8}[，,：:]\s*")
# Book-title marks opening a line, closed or not (「根据《共建…保障体系」): `_unbooked`.
_BOOKED_RE = re.compile(r"^(?:根据|依据|按照)?《([^《》]*)(》?)")
# The prompt's own evidence wrapper echoed (「（依据：「…」）」), maybe after the question restated
# (「红色文化怎么搞，依据：「…」」): the quote inside is the line.
_ECHO_RE = re.compile(r"^[^「“”」，,。]{0,40}[，,]?\s*[（(]?依据[：:]\s*"
                      r"(?:「(?P<quote>[^「」]{4,})」?|“(?P<dquote>[^“”]{4,})”?)[）)]?[。.；;]?$")
_YES = ("是", "是的", "对", "会", "能", "可以", "有")
_YES_NO_RE = re.compile(r"^(是的|是|对|会|能|可以|有|不是|不会|不能|不可以|没有|否|不)[。，,！!；;]\s*")
_ASKING_WHETHER_RE = re.compile(r"(.)不\1|有没有|是否|能否|可否|吗|听说|据说|是真的|真的|到底")
_SAYS_RE = re.compile(r"^文件(?:原文)?中?(?:提到|指出|写明|明确|规定|要求)了?[：:，,]?\s*")


def _balanced_open(said: str) -> str:
    """Without an opening quote mark whose closing one was never shown."""
    for opening, closing in (("“", "”"), ("「", "」")):
        if said.startswith(opening) and said.count(closing) < said.count(opening):
            said = said[1:]
    return said


def _unbooked(line: str, titles: str) -> str:
    """Without book-title marks around the text's own words at the line's start (「根据《共建…
    保障体系》，…」: the model quoting a sentence as if it named a document), with the framing
    word before them; a document's title in 《》 is kept."""
    m = _BOOKED_RE.match(line)
    if m is None or (m.group(2) and m.group(1) and normalize(m.group(1)) in normalize(titles)):
        return line
    return m.group(1) + line[m.end():].lstrip("，,：:")


def _strip_title(sentence: str, clauses: list[Clause]) -> str:
    """Drop a leading "<measure title>：" or 「根据文件原文，」 the model likes to echo."""
    echo = _ECHO_RE.match(sentence)
    if echo:
        return echo.group("quote") or echo.group("dquote")
    sentence = _FRAMING_RE.sub("", sentence)
    for c in clauses:
        for sep in ("：", ":", "，", ","):
            if sentence.startswith(c.title + sep) and len(sentence) > len(c.title) + 6:
                return sentence[len(c.title) + 1:]
    return sentence


