"""Answers built part by part on sentence-level evidence.

The question is cut into the parts it asks (by its own punctuation). The model writes one short
answer line per part, in a format a llama.cpp grammar enforces (`回答：…` lines, exactly one per
part, bounded length), so the output always parses. Each line is then tied to the sentences
that support it: the candidate sentences of the retrieved clauses are searched for the one (or
two) against which the line passes every check of `citations.Verifier`. A line that passes is
shown with citations to those sentences; one that fails is replaced by the best evidence
sentence for that part, quoted; a part whose evidence lacks what it asks (`answerability`) says
so. The model is asked for sentence ids nowhere: measured here, with the whole document cached,
it named a supporting sentence for 0 of 14 questions while writing a correct line for 8
(docs/evidence-first.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .citations import _HAN_RE, Verifier, _repetitive, support
from .corpus import Clause, Sentence

ANSWER_TAG = "回答："
QUOTE_OPEN, QUOTE_CLOSE = "「", "」"
NOT_COVERED = "文件未涉及"  # what the model is told to write for a part the text does not cover
MAX_PARTS = 3
WHETHER_MIN_CHARS = 10  # a yes/no part's line: 「是。」 and then what the text says
MAX_ANSWER_CHARS = 80  # one short sentence; the small model rambles through lists otherwise
QUOTE_CHARS = 60  # a quoted evidence sentence longer than this is cut to its relevant phrases

# A question asks several things when its sentences are separate questions
# (「…是什么？…怎么协同？」) or clauses joined by a comma each carry a question word.
# (「过关检查方便不？」: 不 closing a question asks whether, as 吗 does.)
_QUESTION_WORD = re.compile(r"什么|多少|多久|多长|多大|何时|哪|谁|怎么|怎样|如何|会不会|能不能|要不要|可不可以|(?<![好这那十没])几|吗|呢|是否|有没有|能否|为何|为什么|啥|"
                            r"[\u4e00-\u9fff]不[？?]")
_HARD_SPLIT = re.compile(r"(?<=[？?；;。!！])\s*")
_SOFT_SPLIT = re.compile(r"(?<=[，,])\s*|(?<=另外)|(?<=此外)|(?<=还有)")
_MIN_PART_CHARS = 4
# A phrase that introduces what follows it (「…体现在哪两方面：」).
_LEAD = re.compile(r"[^，,：:]{2,}[：:]")
# A question listed after another with 、 names a thing of its own in this many characters
# (「什么时候建成」 names none: it asks more of the thing before it).
_MIN_LISTED_CHARS = 5
# What a part may say besides question words and still name nothing (分别是什么, 都在哪里, 具体指啥)
# ... and besides asking where the text says it (对应哪一条, 归在哪一条, 文件哪一条专门讲).
_LOCATE_ONLY = re.compile(r"一?(?:条|款|章|段|部分)|对应|归在|归于|属于|放在|翻到|查|看|专门|文件|文中|原文|意见|写|提")
_PROVISION_WORDS = re.compile(r"规定|要求|内容|相关|说法|安排|涉及|部署|提及")
_ASKS_ONLY = re.compile(r"分别|各自|具体|实际|最终|目前|请问|一下|都|又|还|也|是|有|在|的|些|了|吧|里|指|说|讲|到底|究竟|呀|啊")


def names_own(part: str) -> int:
    """How many characters of a part name something: not its question words, nor words asking
    more of a thing named before (分别, 具体) or where the text says it (对应哪一条)."""
    # (nor words for provisions: 「文件哪条有规定」「…？文件有安排吗」 ask of the thing before)
    own = _PROVISION_WORDS.sub("", _LOCATE_ONLY.sub("", _LOCATE_RE.sub("", part)))
    return len(_HAN_RE.findall(_ASKS_ONLY.sub("", _QUESTION_WORD.sub("", own))))


_RESIDENT = (r"(?:我是|我在|我家在|家在|住在|家住)?({})(?:人|市民|居民|群众|老百姓|本地人)(?![民口才])",
             r"(?:我是|我在|我家在|家在|住在|家住)({})(?:的)?(?=[，,])",
             # the asker's own circumstances (「我在达州上班、医保在南充，…」), before the question
             r"(?:我|本人|家人|孩子|老人)?(?:在|去|到|回)({})(?:上班|工作|看病|就医|住院|读书|上学"
             r"|生活|打工|务工|居住|养老|办事)(?=[，,、])",
             r"(?:我的?)?(?:医保|社保|户口|户籍)(?:关系)?在({})(?=[，,、])")


# Who an opening statement of circumstances is about: the asker or their family.
_ASKER = r"(?:我们?|我家|俺|本人|家里(?:人|的?老人)?|家人|老人|孩子|娃|父母|爸妈)"
# How a further clause of such a statement goes on (「…，常去达州看门诊，…」).
_GOING_ON = (r"(?:常|常常|经常|平时|有时|每周|每月|现在|以前|后来|想|打算|准备|也|还|又|再)*"
              r"(?:在|去|到|回|住)")
# ... but a clause saying what the asker wants to know names what is asked (「我想了解南充和达州，…」).
_ASKING_VERB = re.compile(r"知道|了解|想问|请问|打听|咨询|关心|关注|查一?下|看看")


# Words by which the asker points at where they live (这边, 我们那里, 当地, 老家).
# (Not 「经过我们这儿去万州」: a place passed through; nor 「我们这种房子」「我们这个行业」.)
_HERE = re.compile(r"(?:我们|咱们|俺们)(?:这边|这里|那边|那里)|当地|本地|家乡|老家")


def without_residence(question: str, places: Collection[str]) -> str:
    """The question without where the asker lives (「达州人去外地看门诊…」, 「我是南充的，…」): a
    place named so is the asker's, not a constraint the evidence must name."""
    # 「我是宣汉人，我们这边以后有没有修高速的打算」: 这边 is that place, and what is asked.
    if not places or _HERE.search(question):
        return question
    names = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    out = question
    for pattern in _RESIDENT:
        out = re.sub(pattern.format(names), "", out)
    # An opening statement of the asker's own doings there (「我在达州开了个小厂，…」), asking nothing.
    opening = re.match(r"(?:我们?|我家|本人|家里)(?:在|去|到|回|住)(?:{})[^，,。？?！!；;]{{0,12}}[，,]"
                       .format(names), out)
    going_on = bool(opening and not _QUESTION_WORD.search(opening.group(0)))
    if going_on:
        out = out[opening.end():]
    # Other statements of the asker's (or their family's) circumstances, asking nothing, keep
    # what they say but not their places (「我是达州乡下的农民，…」, 「家里老人在巴中做的化验，想去
    # 南充大医院复查，…」): the clause naming the asker, then clauses going on with where they go
    # and what they do there.
    clause = r"[^，,。？?！!；;]{{0,12}}?(?:{})[^，,。？?！!；;]{{2,12}}[，,]".format(names)
    further = re.compile(_GOING_ON + clause)
    pattern = further if going_on else re.compile(_ASKER + clause)
    kept, rest = "", out.lstrip("，,、 ")
    while (said := pattern.match(rest)) and not _QUESTION_WORD.search(said.group(0)) \
            and not _ASKING_VERB.search(said.group(0)):
        kept += re.sub(f"(?:{names})的?", "", said.group(0))
        rest, pattern = rest[said.end():], further
    out = kept + rest if kept else out
    out = out.lstrip("，,、 ")
    return out if len(out) >= 4 else question


# 「…什么时候完成、谁负责，文件要求写明吗」 asks one thing: whether the text requires them stated.
STATES_RE = re.compile(r"(写明|写清|讲清|说清|说明白|讲明白|明确|交代)(楚)?(了)?(吗|没有|没)[？?。！!]*$")


def split_question(question: str, max_parts: int = MAX_PARTS) -> list[str]:
    """The parts a question asks, by its own punctuation; one part when it asks one thing."""
    q = question.strip()
    if STATES_RE.search(q):
        return [q]
    parts: list[str] = []
    for sentence in _HARD_SPLIT.split(q):
        pieces = [p for p in _SOFT_SPLIT.split(sentence) if p.strip()]
        asking = [p for p in pieces if _QUESTION_WORD.search(p)]
        listed = _enumerated if not _LOCATE_RE.search(sentence) else lambda p: [p]
        if len(asking) >= 2 and all(len(p.strip("，, ")) >= _MIN_PART_CHARS for p in pieces):
            found = [q for p in _merge_to_questions(pieces) for q in listed(p)]
            # 「达州与万州的联系体现在哪两方面：交通上修什么路，城市发展上提出什么？」: what the
            # colon introduces is said of each part after it.
            lead = _LEAD.match(found[0])
            if lead and len(found) >= 2 and len(found[0]) > lead.end():
                found = found[:1] + [lead.group(0) + f for f in found[1:]]
            parts += found
        elif sentence.strip():
            parts += listed(sentence.strip())
    parts = [p for p in parts if len(p.strip("？?。；;，, ")) >= 2]
    # A fragment without a question word (「南充和达州各自的定位。」) belongs with its neighbour.
    merged: list[str] = []
    for p in parts:
        if merged and not _QUESTION_WORD.search(merged[-1]):
            merged[-1] += p
        else:
            merged.append(p)
    if len(merged) > 1 and not _QUESTION_WORD.search(merged[-1]):
        tail = merged.pop()
        merged[-1] += tail
    # A question that names nothing of its own (「…有几条发展带，分别是什么？」, 「…，都在哪里？」)
    # asks more of the thing of the one before it: one part.
    # So does a part asking only where the text says it (「…，对应哪一条？」「文件哪一条专门讲？」).
    for i in range(len(merged) - 1, 0, -1):
        if names_own(merged[i]) < 2:
            merged[i - 1] += merged.pop(i)
    merged = [d for p in merged for d in distribute(p)]
    if len(merged) > max_parts:
        merged = merged[: max_parts - 1] + ["".join(merged[max_parts - 1:])]
    return merged or [q]


_EACH = re.compile(r"分别|各自|各")
_ITEM_STOP = set("在对把从向给的，,。？?；;：: ")
_JOINER = re.compile(r"[、和与及]")
# Two to MAX_PARTS short items joined by 、/和/与/及, each ending before a stop character.
_ITEMS = re.compile(r"[^在对把从向给的是有要将这，,。？?；;：:、和与及 ]{2,8}"
                    r"(?:[、和与及][^在对把从向给的是有要将这，,。？?；;：:、和与及 ]{2,8})+")


# The word that counts or frames listed items (三方面, 两个领域, 等方面), not an item.
_COUNT_OF_ITEMS = r"(?:这|等)?[两二三四五六几]?个?"
_COUNTED_AS = re.compile(_COUNT_OF_ITEMS + r"(?:方面|领域|块|项|件事)$")
# A phrase that opens with the topics asked of, before the phrase that asks (「在A和B方面，」).
_TOPIC_PHRASE = re.compile(r"^(?:文件)?(?:在|对于?|关于|就)(.+?)(?:" + _COUNT_OF_ITEMS + r"(?:方面|领域)|上)?[，,]$")


def distribute(part: str) -> list[str]:
    """「A和B分别/各自…」 asks the same of each item: 「A…」, 「B…」 (one part when it does not).

    The items are the last joined run before 分别 in the same phrase; words may stand between
    them and 分别 (「广元和巴中在文件里分别是什么定位」)."""
    m = _EACH.search(part)
    if m is None:
        return [part]
    i = m.start()
    while i > 0 and part[i - 1] not in _ITEM_STOP:
        i -= 1
    # 「川东北与川南经济区、攀西经济区分别在哪些方面合作」: the first name is the partner of
    # each item that follows, not an item (the predicate relates them).
    partner = re.match(r"[^、和与及]{2,8}[与和同跟](?=[^、和与及]{2,8}、)", part[i:m.start()])
    if partner and RECIPROCAL.search(part[m.end():]):
        i += partner.end()
    # 「在机场、新材料基地和信息基础设施三方面各有什么」: what counts the items is not one.
    run = part[i:m.start()]
    counted = _COUNTED_AS.search(run)
    j = m.start() - (len(counted.group(0)) if counted else 0)
    items = [x for x in _JOINER.split(part[i:j]) if x]
    rest = part[m.end():]
    if len(items) < 2:  # not right before 分别: the last joined run earlier in the phrase
        left = max(part.rfind(c, 0, m.start()) for c in "，,。？?；;：:") + 1
        runs = list(_ITEMS.finditer(part, left, m.start()))
        # ... or the topic phrase before it (「在农产品流通和乡村旅游住宿方面，文件分别提出了什么」)
        if not runs and left and (topic := _TOPIC_PHRASE.match(part[:left])):
            runs = list(_ITEMS.finditer(part, topic.start(1), topic.end(1)))
        if not runs:
            return [part]
        i, j = runs[-1].span()
        items = _JOINER.split(runs[-1].group())
        if (counted := _COUNTED_AS.search(items[-1])) and len(items[-1]) > len(counted.group(0)) + 1:
            items[-1] = items[-1][:-len(counted.group(0))]
            j -= len(counted.group(0))
        rest = re.sub(r"^这?[两二三四五几]个?(?:城市|市|县|区|地方?)|^" + _COUNT_OF_ITEMS + r"(?=方面|领域)",
                      "", part[j:m.start()]) + rest
    if not 2 <= len(items) <= MAX_PARTS or any(len(x) > 8 or _QUESTION_WORD.search(x)
                                              for x in items):
        return [part]
    return [part[:i] + x + rest for x in items]


_LEFT_STOP = set("的在对把从向给是有要将，,。？?；;：: ")
_RIGHT_STOP = re.compile(r"的|之|方面|上|这|两|怎么|什么|如何|分别|各|都|有|要|是|将|[，,。？?；;：:]")
# Predicates that relate the two things to each other (「达州和万州之间的合作」) ask one thing.
RECIPROCAL = re.compile(r"之间|相互|互相|一起|共同|协同|联动|合作|对接|衔接|关系|区别|不同|联系|比较|相比|对比|谁更|哪个更|更[快慢高低大小多少好强]")


def coordinate(part: str) -> list[str]:
    """「X的A和B怎么安排」 asks about A and about B: 「X的A怎么安排」, 「X的B怎么安排」.

    One conjunction between two short noun phrases; not when the predicate relates them to
    each other (之间, 合作, 区别 …). Whether the split stands is decided by the evidence (the
    two parts must rest on different clauses), not here."""
    found = conjuncts(part)
    if found is None:
        return [part]
    head, left, right, rest = found
    return [head + left + rest, head + right + rest]


def conjuncts(part: str) -> tuple[str, str, str, str] | None:
    """(head, A, B, rest) of 「headA和Brest」 when `coordinate` splits the part, else None."""
    hits = [m for m in _JOINER.finditer(part) if m.group(0) != "、"]
    if len(hits) != 1 or RECIPROCAL.search(part):
        return None
    at = hits[0].start()
    i = at
    while i > 0 and part[i - 1] not in _LEFT_STOP:
        i -= 1
    left = part[i:at]
    if "、" in left or part[i - 1:i] == "、":
        return None  # 「南充、达州和广安」: a list, asked of together
    for word in ("哪些", "哪几", "什么"):  # 「争取哪些产业基地和…」: the conjunct is 产业基地
        if word in left:
            i, left = i + left.rindex(word) + len(word), left[left.rindex(word) + len(word):]
    stop = _RIGHT_STOP.search(part, at + 1)
    j = stop.start() if stop else len(part)
    right = part[at + 1:j]
    if not (2 <= len(left) <= 8 and 2 <= len(right) <= 8) or _QUESTION_WORD.search(left + right):
        return None
    rest = re.sub(r"^(?:这|那)?(?:两|二)(?:块|个|项|方面|者)|分别|各自", "", part[j:])
    return part[:i], left, right, rest


# Asks for all the text says of a thing, not one fact of it: 「…都有哪些合作」「跟长三角有关的
# 内容」「这个概念在文件里怎么用的」「从开采到利用有啥规划」「有哪些…安排」.
OVERVIEW_RE = re.compile(
    r"都[^，,。？?]{0,4}(?:哪些|啥|什么|怎么)|都(?:写|讲|说|提|包括|涉及)了?"
    r"|(?:有关|相关|涉及|关于)(?P<a>[^，,。？?]{0,12}?)的?"
    r"(?:内容|表述|规定|安排|部署|措施|举措|说法|地方|政策|条款)"
    r"|哪些(?:条|条款|地方|方面)[^，,。？?]{0,3}(?:提|讲|说|写|涉及)|(?:所有|全部)的?(?:内容|安排|措施|说法)"
    r"|哪些(?P<b>[^，,。？?]{0,8})(?:安排|部署|举措|措施|内容|合作|定位|说法|提法|规定|规划)"
    r"|怎么用|如何(?:使用|运用)|提到[^，,。？?]{0,3}(?:几次|哪些地方|多少次)"
    r"|(?:怎么|如何|哪些地方|在哪里?)被?(?:提及|提到|表述)|(?:提|讲|写|说)了?哪些"
    r"|从[^，,。？?]{1,8}到")
# 「X从A到B…」: A and B are stages of X, not the thing asked of.
STAGES_RE = re.compile(r"从[^，,。？?]{1,8}?到[^有的是怎什哪啥吗呢，,。？?]{1,8}")


def asks_overview(question: str) -> bool:
    """The question asks for everything the text says of a thing (which may be in several
    clauses), not for one fact of it."""
    return bool(OVERVIEW_RE.search(question))


def overview_topic(question: str) -> str:
    """The question without its asking words and stages: what remains names the thing
    (「关于川渝合作的表述都有哪些」 → 川渝合作, kept from inside the asking phrase)."""
    return OVERVIEW_RE.sub(lambda m: " " + (m.group("a") or m.group("b") or "") + " ",
                           STAGES_RE.sub("", question))


def _enumerated(part: str) -> list[str]:
    """「要建什么干部学院、重点保护哪位伟人的故里」: questions listed with 、, each asking and
    naming a thing of its own (not 「南充、达州是什么定位」, nor 「要什么条件、什么材料」,
    whose second item names too little to be asked alone, nor topics listed before asking where
    the text speaks of them: 「几个市一起去招商、合作项目怎么分成本，对应哪一条」)."""
    pieces = [p for p in re.split(r"(?<=、)", part) if p.strip()]
    if len(pieces) < 2 or not all(_QUESTION_WORD.search(p) and names_own(p) >= _MIN_LISTED_CHARS
                                  for p in pieces):
        return [part]
    return [p.strip().rstrip("、") for p in pieces]


def _merge_to_questions(pieces: list[str]) -> list[str]:
    """Comma pieces grouped so that each group ends with the piece that carries its question word."""
    out, buf = [], ""
    for p in pieces:
        buf += p
        if _QUESTION_WORD.search(p):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out[-1] += buf
    return out


# How a clause introduces what is then asked of (「说到广元，…」「关于南充，…」): a topic, not a statement.
_TOPIC_OPENING = re.compile(r"^(?:关于|对于|至于|说到|讲到|谈到|提到|那么?|请问|我想问|想问)")
# A statement says this much besides its place (「冬天灰蒙蒙的雾霾天气不少」, not 「的空气污染」).
_STATEMENT_CHARS = 6


def without_opening_places(question: str, places: Collection[str]) -> str:
    """The question without the places of the statements that open it, before the first clause
    that asks: 「广元冬天灰蒙蒙的雾霾天气不少，这份文件对治理空气污染有啥措施？」 asks about air
    pollution; 广元 is where the asker sees it. The question itself when nothing opens it so
    (「广元的定位是什么」, 「说到广元，它的定位是什么」, 「广元的空气污染，文件有啥措施」)."""
    clauses = re.split(r"(?<=[，,；;。！!])", question)
    first = next((k for k, c in enumerate(clauses) if _QUESTION_WORD.search(c)), 0)
    if first == 0 or not places:
        return question
    names = "|".join(re.escape(p) for p in sorted(places, key=len, reverse=True))
    opening = []
    for c in clauses[:first]:
        bare = re.sub(f"(?:{names})的?", "", c)
        if bare != c and (_TOPIC_OPENING.match(c)
                          or len(_HAN_RE.findall(bare)) < _STATEMENT_CHARS):
            return question
        opening.append(bare)
    return "".join(opening) + "".join(clauses[first:])


# 「写在哪一条」「在文件哪里」「哪个部分讲…」: asks where the document says something, not what.
# (Not 条 counting a road, railway or river: 「要开工哪条高铁」 asks which railway.)
# (「在文件哪个部分」「…的内容在哪里」 too: where the text's content is, not where a thing is built.)
_LOCATE_RE = re.compile(r"(?:哪一?|第几)(?:条(?!高铁|铁路|公路|高速|路|线|河|江|航|通道|管道|渠|街|隧道|动车|城际)"
                        r"|款|章|段|部分)|(?:文件|文中|意见)(?:的)?(?:哪里|哪儿|什么地方)"
                        r"|写在哪|在哪一?条|(?:文件|文中|意见|原文)(?:的)?哪个(?:部分|章节|地方)"
                        r"|(?:内容|规定|条款|表述|说法)(?:写在|出现在|在)(?:哪里|哪儿|哪|什么地方)")


# A question about the document as a whole: its contents or how it is laid out (「这份文件主要讲
# 了什么」「文件分为几个部分」「一共有多少条措施」), naming nothing in it.
_OUTLINE_RE = re.compile(
    r"(?:主要|大致|大概|核心|总体|整体|具体)?(?:内容|框架|结构|目录|大纲|要点|脉络)"
    r"|(?:几|多少)个?大?(?:部分|章|板块|方面|块)|(?:几|多少)(?:条|项)(?:措施|举措|内容)?"
    r"|(?:讲|说|写|包括|包含|涉及|分为|分成|分了|有)了?(?:些)?(?:什么|哪些|啥|哪几)|介绍|概括|总结|概述")
_DOCUMENT_WORDS = re.compile(r"这份|这个|这篇|本|该|整个|整份|全文|文件|实施意见|意见|政策|文章|通知")
_OUTLINE_FILLER = re.compile(r"请问|请|帮我|给我|一下|简单|简要|概括|总结|介绍|说说|讲讲|主要|大致|大概|核心|"
                             r"总体|整体|具体|一共|总共|共|都|分别|各|了|的|是|有|呢|吗|啊|呀|吧|个|大|条|项|些|"
                             r"措施|举措|部分|章|板块|方面|块|内容|框架|结构|目录|大纲|要点|脉络|讲|说|写|"
                             r"包括|包含|涉及|分为|分成|分|什么|哪些|啥|哪几|几|多少|里|中|面|概述|[，,。？?！!\s]")


def asks_outline(question: str) -> bool:
    """The question asks what the document covers or how it is divided, and names nothing of
    its own besides the document (「南充的定位是什么」 names 南充; 「第二章讲什么」 a chapter).
    The document's own title in 《》 is read as 文件 before this (`without_own_titles`)."""
    q = unicodedata.normalize("NFKC", question)
    if not _OUTLINE_RE.search(q) or not _DOCUMENT_WORDS.search(q):
        return False
    rest = _OUTLINE_FILLER.sub("", _DOCUMENT_WORDS.sub("", q))
    return not _HAN_RE.search(rest)


# 「能不能…」「有没有…」「…吗」: asks whether, and a bare 「可以」 answers it without content.
_YES_NO_RE = re.compile(r"(.)不\1|有没有|是否|能否|可否|吗[？?。！!]*$|不[？?]*$")


def asks_yes_no(question: str) -> bool:
    """The question (or part) asks whether something holds."""
    return bool(_YES_NO_RE.search(question.strip()))


def asks_location(question: str) -> bool:
    """The question asks which clause or part of the document covers something."""
    return bool(_LOCATE_RE.search(question))


def line_opening(whether: bool) -> str:
    """How a part's line opens: the tag, then an opening quote unless the part asks whether
    (that line starts with 是/不). Opened with a quote the small model copies its evidence
    instead of restating the question (measured on the first 60 answerable gold questions:
    key phrases 0.83 → 0.90, quoted evidence 6 → 1 of 60)."""
    return ANSWER_TAG + ("" if whether else QUOTE_OPEN)


def grammar(n_parts: int = 1, whether: Sequence[bool] = (), prefilled: bool = False) -> str:
    """GBNF: exactly n_parts lines, each `line_opening` then 2–MAX_ANSWER_CHARS characters.

    A part that asks whether (`whether[i]`) gets at least WHETHER_MIN_CHARS: told to answer
    yes or no and then say what the text says, the small model stops after 「是。」.
    `prefilled`: the first line's opening is already in the prompt (read, not written)."""
    asks = [i < len(whether) and bool(whether[i]) for i in range(max(1, n_parts))]
    rules = []
    for i, w in enumerate(asks):
        opening = "" if i == 0 and prefilled else line_opening(w)
        low = WHETHER_MIN_CHARS if w else 2
        tag = f'"{opening}" ' if opening else ""
        rules.append(f"part{i} ::= {tag}[^\\n]{{{low},{MAX_ANSWER_CHARS}}}\n")
    root = ' "\\n" '.join(f"part{i}" for i in range(len(asks)))
    return f"root ::= {root}\n" + "".join(rules)


_PHRASE_END = "，,、；;：:。！？!?"


def line_events(chunks: Iterator[str]) -> Iterator[tuple[int, str, bool]]:
    """(line number, text so far, line finished) at every phrase boundary and line end.

    Lets a part be verified and shown phrase by phrase while the model is still writing it.
    """
    buf, n = "", 0
    for chunk in chunks:
        for ch in chunk:
            if ch == "\n":
                if text := _line_text(buf):
                    yield n, text, True
                    n += 1
                buf = ""
                continue
            buf += ch
            if ch in _PHRASE_END and (text := _line_text(buf)):
                yield n, text, False
    if text := _line_text(buf):
        yield n, text, True


def _line_text(line: str) -> str:
    line = line.strip()
    if line.startswith(ANSWER_TAG):
        line = line[len(ANSWER_TAG):]
    line = re.sub(r"^\d+[.、)）]\s*", "", line).strip()
    # A line opened with a quote (`line_opening`) is what is inside it: after the closing
    # quote come the model's own words (「…协作联动。」根据文件内容). An empty quote (「」…) is
    # dropped, the words after it are the line. Not a line that quotes two things (「A」和「B」).
    # 「」依据：「…」: an empty quote, then the prompt's evidence label echoed before the quote.
    if line.startswith(QUOTE_OPEN + QUOTE_CLOSE):
        line = line[2:].strip()
    line = re.sub(r"^[（(]?依据[:：]\s*", "", line)
    if line.startswith(QUOTE_OPEN) and QUOTE_OPEN not in line[1:]:
        end = line.find(QUOTE_CLOSE)
        line = (line[1:] if end < 0 else line[2:] if end == 1 else line[1:end]).strip()
    return line


PartMode = Literal["generated", "quoted", "not_covered", "retry"]  # retry: not shown


@dataclass(frozen=True)
class PartAnswer:
    """One part of the question and what the user is shown for it."""

    question: str
    mode: PartMode
    text: str  # the model's verified line, the quoted evidence, or what the text does not give
    evidence: tuple[Sentence, ...] = ()
    reason: str = ""  # quoted: why the model's line failed; not_covered: what is missing


def is_heading(s: Sentence) -> bool:
    """A measure's title: its short first sentence (「打造幸福美丽新村升级版。」)."""
    return s.n == 1 and len(s.text) < 20


# 「四大产业」「三个示范区」: a number of things of a kind, which a list of that many names.
_COUNTED = re.compile(r"([两二三四五六七八九十]|\d{1,2})(?:大|个|项|类|种|条)([\u4e00-\u9fff]{2})")
LISTED_WEIGHT = 6.0  # as much as three two-character words of the question in common
_NUMERALS = {c: i for i, c in enumerate("零一二三四五六七八九十")} | {"两": 2}


def counted_in(question: str) -> list[tuple[int, str]]:
    """The things a question counts (「四大产业」 → (4, 产业))."""
    return [(int(n) if n.isdigit() else _NUMERALS[n], noun) for n, noun in _COUNTED.findall(question)]


def lists_of(sentence: str, count: int, noun: str) -> bool:
    """A phrase of `sentence` lists `count` items of the kind `noun` (「…现代能源化工、食品饮料、
    装备制造、先进材料产业」 is four 产业)."""
    return any(noun in p and p.count("、") + 1 == count
               for p in re.split(r"[,，;；。]", sentence))


class SentenceRanker:
    """Ranks the sentences of the retrieved clauses for one part of a question."""

    def __init__(self, clauses: Sequence[Clause], scores: Sequence[float],
                 tokenizer: Callable[[str], list[str]],
                 similarity: Callable[[str, Sequence[Sentence]], Sequence[float]] | None = None,
                 dense_weight: float = 0.0, subject: Collection[str] = ()):
        self.tokenizer = tokenizer
        # The document's own subject (川东北, 经济区): every sentence is about it, named or not;
        # its words, or pieces of them (东北 of 川东北), say nothing about which one answers.
        self.subject = tuple(subject)
        top = max(scores, default=1.0) or 1.0
        self.sentences = [(s, score / top) for c, score in zip(clauses, scores, strict=True)
                          for s in c.sentences]
        # A measure's heading is said of each of its sentences (「推进区域中心城市建设」 of
        # 「支持巴中建设…示范城市」): its words count for them, at half weight.
        self.headings = [c.title for c in clauses for _ in c.sentences]
        self.similarity, self.dense_weight = similarity, dense_weight
        self._words: set[str] | None = None  # the candidate sentences' words (memoised)

    def terms(self, text: str) -> list[str]:
        return [t for t in dict.fromkeys(self._joined(self.tokenizer(text))) if len(t) >= 2]

    def _joined(self, tokens: list[str]) -> list[str]:
        """Characters a question's tokenizer left apart that the candidate sentences write as one
        word (「我是达钢的职工」 is cut 达/钢; 「加快推动达钢集团…」 has 达钢): a name the asker
        shortens, or writes in a context that hides it, is still that word."""
        if self._words is None:
            self._words = {t for s, _ in self.sentences for t in self.tokenizer(s.text)
                           if len(t) >= 2}
        out = list(tokens)
        for i in range(len(tokens) - 1):
            for n in (3, 2):
                run = tokens[i:i + n]
                if len(run) == n and all(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in run) \
                        and "".join(run) in self._words:
                    out.append("".join(run))
                    break
        return out

    def _meaning(self, question: str) -> list[float]:
        """Each sentence's similarity to the part as a z-score among the candidates: everyday
        words share no word with the text (「泥巴墙的老房子」 for 土坯房) but mean the same."""
        if self.similarity is None or not self.dense_weight or len(self.sentences) < 2:
            return [0.0] * len(self.sentences)
        sims = np.asarray(self.similarity(question, [s for s, _ in self.sentences]), float)
        spread = float(sims.std()) or 1.0
        return list(self.dense_weight * (sims - sims.mean()) / spread)

    def phrases(self, question: str) -> list[str]:
        """Two of the question's words with 的 between them, as the text would write them as one
        phrase (「达州的机场」 → 达州机场). Words standing together count as words already."""
        words = [w for w in self.tokenizer(question) if len(w) >= 2]
        return [a + b for a, b in zip(words, words[1:], strict=False)
                if f"{a}的{b}" in question and re.fullmatch(r"[\u4e00-\u9fff]+", a + b)]

    def rank(self, question: str, own: str = "") -> list[Sentence]:
        """`own`: the part as the user wrote it; words only the glossary added to `question`
        (坐飞机 → 航线) count half: they stand for the user's words, they are not them."""
        terms = [t for t in self.terms(question) if not any(t in w for w in self.subject)]
        meaning = self._meaning(question)
        phrases = self.phrases(question)
        share = {t: 1.0 if not own or t in own else 0.5 for t in terms}
        counted = counted_in(question)

        def weight(i: int) -> float:
            s, clause_score = self.sentences[i]
            overlap = sum(len(t) * share[t] for t in terms if t in s.text)
            if not is_heading(s):
                overlap += sum(len(t) * share[t] / 2 for t in terms
                               if t not in s.text and t in self.headings[i])
            # The question's phrase as one (达州机场), not its words apart (达州经济开发区 …
            # 南充机场): a sentence naming the very thing asked about comes first.
            together = sum(len(p) / 2 for p in phrases if p in s.text)
            # 「四大产业是什么」: the list of four 产业, not another list of the same clause.
            listed = sum(LISTED_WEIGHT for n, noun in counted if lists_of(s.text, n, noun))
            heading = 1.0 if is_heading(s) else 0.0  # a measure's title
            return overlap + together + listed + 2.0 * clause_score - heading + meaning[i]

        order = sorted(range(len(self.sentences)), key=weight, reverse=True)
        return [self.sentences[i][0] for i in order]


def align(line: str, candidates: Sequence[Sentence], verifier: Verifier, asked: str = "",
          tries: int = 4) -> Sentence | None:
    """The candidate sentence against which `line` passes every check, or None.

    One sentence, not a pair, and within it a run of adjacent phrases: joining two sentences
    lets a line pair the city of one with the role of the other (measured: 「达州是…北部中心
    城市」 passed against 南充's and 达州's sentences together).
    """
    ranked = sorted((s for s in candidates if not _repetitive(line, s.text)),
                    key=lambda s: support(line, s.text), reverse=True)[:tries]
    def scope(s: Sentence) -> str:
        clause = verifier.given.get(s.clause_id)
        return clause.text if clause is not None else s.text

    return next((s for s in ranked if any(not verifier.check_text(line, w, asked, scope(s))
                                          for w in phrase_windows(s.text))), None)


def phrase_windows(sentence: str, width: int = 3) -> list[str]:
    """Runs of up to `width` adjacent comma phrases of a sentence (the sentence if shorter).

    A long sentence pairs many places with many roles (「…中国西部(广元)绿色家居产业城建设,推动广安
    建设国家装配式建筑示范城市」); a line must be supported by phrases that stand together.
    """
    phrases = re.findall(r"[^,，;；]+[,，;；]?", sentence)
    if len(phrases) <= width:
        return [sentence]
    return ["".join(phrases[i:i + width]) for i in range(len(phrases) - width + 1)]


def up_to_terms(sentence: str, terms: Sequence[str]) -> str:
    """The sentence up to its last phrase with one of the terms (all of it if none has one):
    what comes before may be its subject (「发挥…联席会议制度作用,…,制定年度重点任务清单」 says
    who makes the list), what comes after is another measure."""
    phrases = re.findall(r"[^,，;；:：]+[,，;；:：。]?", sentence)
    hit = [i for i, p in enumerate(phrases) if any(t in p for t in terms)]
    return "".join(phrases[:hit[-1] + 1]) if hit else sentence


def trim(sentence: str, terms: Sequence[str], limit: int = QUOTE_CHARS,
         keep: re.Pattern | None = None, counted: Sequence[tuple[int, str]] = ()) -> str:
    """The exact span of a long sentence from its first to its last phrase with a question term;
    when that is too long, from the first phrase with the most of them (「哪些水库要开工建设」:
    「开工建设江家口水库…」, not the long 「加快建设…水库」 list before it)."""
    if len(sentence) <= limit:
        return sentence
    phrases = re.findall(r"[^,，;；:：]+[,，;；:：。]?", sentence)
    longest = [t for t in terms if not any(t != o and t in o for o in terms)]  # 双核三带, not 双核
    counts = [len({t for t in longest if t in p}) for p in phrases]
    hit = [i for i, p in enumerate(phrases) if any(t in p for t in terms)]
    if not hit:
        return ""
    # The kind of answer asked (a year, an amount) is kept: 「哪一年」 is not answered by
    # 「…力争突破9000亿元」 without its 「到2022年」. The nearest phrase with one is taken.
    given = [i for i, p in enumerate(phrases) if keep is not None and keep.search(p)]
    kept = (min(given, key=lambda i: min(abs(i - h) for h in hit))
            if given and not set(given) & set(hit) else None)
    if kept is not None:
        hit = sorted({*hit, kept})
    # 「三条发展带分别是什么」: the phrase listing three 发展带 is the answer, wherever the
    # question's other words are.
    listing = [i for i, p in enumerate(phrases) if any(lists_of(p, n, noun) for n, noun in counted)]
    if listing:
        hit = sorted({*hit, listing[0]})
    first, last = hit[0], hit[-1]
    if sum(len(p) for p in phrases[first:last + 1]) > limit:  # too long: start where most is
        first = listing[0] if listing else counts.index(max(counts))
        if kept is not None and kept < first:
            first = kept
        # (also when the phrase with the kind asked has a question word itself, but fewer:
        # 「确保到2020年…贫困人口脱贫,贫困县全部摘帽」 for 「贫困县摘帽截止到哪年」)
        elif given and not any(first <= i <= last for i in given):
            near = min(given, key=lambda i: abs(i - first))
            first, last = min(first, near), max(last, near)
    while last > first and sum(len(p) for p in phrases[first:last + 1]) > limit * 2:
        last -= 1
    while sum(len(p) for p in phrases[first:last + 1]) < 16 and last + 1 < len(phrases):
        last += 1  # a bare 「到2022年」 says nothing: take the phrase it introduces too
    return "".join(phrases[first:last + 1]).rstrip(",，;；:：")
