"""Decide whether the document can answer a question before asking the model to.

Retrieval always returns *something*: a question about a subsidy amount retrieves the clause that
mentions the programme, with a high score. What makes such a question unanswerable is the kind
of information it asks for (an amount, a phone number, a procedure, a date, a statistic, the
document's own metadata) being absent from the clauses retrieved for it. So the check is:
an information slot the question asks for must be present in the top clauses; a year or another
economic zone the question names must occur in the document (another zone only for questions
about cooperation with it), a place the document names only in a route only for transport
questions; and the question must share at least one content word with the document (dense scores
alone cannot tell chit-chat apart). Calibrated on the `unanswerable` items of eval/gold.jsonl and
checked on eval/gold_holdout.jsonl (a rule that refused places absent from the document was
dropped: it refused two answerable held-out questions, the text writes 广深 for 广安–深圳).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .corpus import normalize
from .retrieval import SearchResult

# Information a policy summary usually does not carry, and the words that ask for it.
SLOTS: dict[str, tuple[str, ...]] = {
    "金额": ("补贴", "补助", "奖补", "奖励", "资金", "拨款", "拨了", "投资", "多少钱", "报销比例",
             "所得税", "税收", "减税", "减免", "收费", "费用", "价格", "房价", "工资", "薪资",
             "贷款", "利率", "预算"),
    "联系方式": ("电话", "热线", "地址", "邮箱", "网址", "联系方式", "联系人", "办公地点", "在哪办公",
             "办公室", "官网", "二维码"),
    "办理流程": ("材料", "流程", "手续", "怎么申请", "如何申请", "怎么申报", "如何申报", "申报条件",
             "申请条件", "报名", "审批", "需要准备", "办理时限", "满足什么条件", "具体条件"),
    "具体时间": ("通车", "通航", "竣工", "完工", "投用", "投运", "开通时间", "建成时间", "开工时间",
             "哪天", "几月"),
    "统计数据": ("面积", "人口", "跑道", "长度", "时速", "覆盖率", "城镇化率", "比例", "百分之",
             "增速", "增长率", "排名", "优良天数", "人均", "平方公里", "公里数", "基站", "选址"),
    "文件信息": ("文号", "印发", "发文", "有效期", "废止", "失效", "生效", "起草", "解读", "哪个部门"),
}
_YEAR_RE = re.compile(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)")
_ZONE_RE = re.compile(r"([\u4e00-\u9fff]{2,4})经济区")
HOME_ZONE = "川东北"
# Other zones appear in the document only as partners: a question about them is answerable
# only when it asks about that cooperation.
COOPERATION = ("合作", "协同", "协作", "交流", "对接", "联动", "一体化", "衔接", "融合", "关系",
               "配合", "联系", "互动", "共建", "携手")
# A place the document names only as the end of a road or railway ("绵阳至西充") is answerable
# only for transport questions: the document says nothing else about it.
TRANSPORT = ("交通", "公路", "高速", "铁路", "高铁", "城际", "轨道", "航道", "航运", "港", "机场",
             "通道", "线路", "路线", "连接", "连通", "互联", "直达", "至", "到", "经过", "途经",
             "修", "建设", "路", "线")
_ROUTE_RE = re.compile(r"[\u4e00-\u9fff]{1,4}(?:经[\u4e00-\u9fff]{1,4})?至[\u4e00-\u9fff]{1,4}")


@dataclass(frozen=True)
class Answerability:
    answerable: bool
    reason: str = ""  # why not, in Chinese, for the refusal text
    missing: str = ""  # the slot or term the document lacks


class AnswerabilityJudge:
    """Rule-based, calibrated judge; see the module docstring for the reasoning."""

    def __init__(self, document_text: str, top_n: int = 3, places: frozenset[str] = frozenset()):
        self.document = normalize(document_text)
        self.top_n = top_n
        # Places the document spells out, and those of them it names only in routes
        # ("X至Y", "X经Z至Y"); fixed per document, so worked out once here.
        self._places = frozenset(p for p in places if normalize(p) in self.document)
        outside_routes = _ROUTE_RE.sub("", self.document)
        self._route_only = frozenset(p for p in self._places
                                     if normalize(p) not in outside_routes)

    def judge(self, question: str, result: SearchResult, lexical_matches: int) -> Answerability:
        """`lexical_matches`: clauses sharing at least one content word with the question (BM25)."""
        q = unicodedata.normalize("NFKC", question)
        if result.lookup is not None:
            if result.lookup.found:
                return Answerability(True)
            what = "条" if result.lookup.kind == "clause" else "章"
            return Answerability(False, f"文件中没有您所问编号的{what}", "编号")
        for year in _YEAR_RE.findall(q):
            if year not in self.document:
                return Answerability(False, "文件没有提到问题所问年份的情况", year)
        for zone in _ZONE_RE.findall(q):
            names = [zone[-n:] + "经济区" for n in (2, 3, 4) if len(zone) >= n]
            if not any(normalize(name) in self.document for name in names):
                zone = zone[-2:]
                return Answerability(False, f"文件只涉及川东北经济区，没有“{zone}经济区”的内容", zone)
            if HOME_ZONE not in zone and not any(w in q for w in COOPERATION):
                name = max((n for n in names if normalize(n) in self.document), key=len)
                return Answerability(False, f"文件只在合作部分提到{name}，没有它自身的安排", name)
        # A place absent from the document is not a reason to refuse: the text abbreviates
        # (广深 = 广安–深圳, 汉巴南 = 汉中–巴中–南充), so only places it spells out are checked.
        named = [p for p in self._places if p in q]
        route_only = [p for p in named if p in self._route_only
                      and not any(p in other for other in named if other != p)]
        if route_only and not any(w in q for w in TRANSPORT):
            where = "、".join(sorted(route_only, key=q.index))
            return Answerability(False, f"文件只在交通线路名称中提到{where}，没有关于它的其他内容",
                                 where)
        top_text = normalize(" ".join(h.clause.text for h in result.hits[: self.top_n]))
        for slot, triggers in SLOTS.items():
            for word in triggers:
                if word in q and word not in top_text:
                    return Answerability(False, f"文件没有提供相关的{slot}（“{word}”）", slot)
        if lexical_matches == 0:
            # Not one content word of the question occurs in the document: chit-chat or off-topic.
            # (Dense similarity cannot tell: e5-small scores 今天吃什么 as high as real questions.)
            return Answerability(False, "问题与文件内容无关", "相关内容")
        return Answerability(True)
