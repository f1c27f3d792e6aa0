"""Screen questions before any model sees them: prompt injection, role-play, requests to invent,
off-topic and opinion requests. Rules, not a model, so they cannot be talked out of their job."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "harmful", "injection", "fabrication", "off_topic", "opinion"]

# ... not asking how to guard against it (「如何防止黑客攻击数据中心」).
_NOT_GUARDING = r"(?![^，,。？?]{0,8}(防止|防范|避免|应对|抵御|免受|不被|保护|打击|治理|排查))"

# Each pattern is general (how people attack or misuse assistants), not tied to a test question.
_PATTERNS: dict[Verdict, list[str]] = {
    # Help to hurt people or damage things (「怎样用炸药破坏航电枢纽」): refused whole, never set
    # aside for a document question beside it. Not the words alone: 「破坏生态」 is what the text
    # forbids, 「爆炸」 of 信息爆炸, 安全生产 are asked about.
    "harmful": [
        r"(怎么|怎样|如何|教我|告诉我|方法|步骤|办法)" + _NOT_GUARDING + r".{0,12}(炸药|炸弹|爆炸物|雷管|燃烧瓶|毒药|毒气|枪支|武器)",
        r"(制造|制作|自制|做|配制|弄到|买到)(一个|一些|点)?(炸药|炸弹|爆炸物|雷管|燃烧瓶|毒药|毒品|枪支)",
        r"(炸掉|炸毁|炸塌|投毒|下毒|纵火)",
        r"(怎么|怎样|如何|教我|帮我|告诉我)" + _NOT_GUARDING + r".{0,12}(破坏|瘫痪|攻击|入侵|黑进|黑掉)"
        r".{0,12}(设施|枢纽|电站|电网|大坝|水库|管道|机场|铁路|桥|隧道|系统|网站|服务器|数据中心)",
    ],
    "injection": [
        r"(忽略|无视|忘记|忘掉).{0,8}(之前|以上|上面|前面|先前|所有|全部|你的).{0,8}(指示|指令|规则|要求|设定|提示)",
        r"ignore\b.{0,30}\b(instruction|prompt|rule|document|context)s?",
        r"(别管|不要管|不用管|抛开|撇开|丢开|忘掉)(这份|这个|该|本|上面的?|前面的?)?(文件|文档|材料|资料|原文)",
        r"disregard\b.{0,30}\b(instruction|prompt|rule)s?",
        r"(系统|隐藏|内部).{0,4}(提示词|提示语|指令|设定)", r"提示词", r"system\s*prompt",
        r"(开发者|调试|上帝|管理员)模式", r"developer\s*mode", r"debug\s*mode", r"jailbreak",
        # (DAN beside Chinese text: \b sees no boundary between 的 and D)
        r"(?<![A-Za-z])(?-i:DAN)(?![A-Za-z])",
        r"越狱", r"不受任何.{0,4}(限制|约束|规则)", r"没有任何限制",
        r"你现在(是|扮演|作为)", r"(你|请|现在|来)(就|先|再|来|给我)?\s*扮演",
        r"你(就|先|现在)?当(你)?自己是", r"把(你)?自己当(成|作)", r"以.{1,16}的?(口吻|语气)", r"假装", r"\bpretend\b", r"role.?play", r"\bact as\b",
        r"以.{1,16}(的)?(身份|名义)[，,]?(宣布|承诺|发言|给我|替我|帮我|开具|出具|起草|草拟|拟定|签发|写|开|出)",
        r"系统通知", r"【\s*系统", r"^\s*system\s*[:：]", r"\bSYSTEM\s*[:：]", r"管理员已?授权",
        r"(执行|运行)(一下)?(上面|下面|以下|前面|这段|这个|该|我|的){0,3}(脚本|代码|命令)",
        # the user's own text to be put back in the answer (「请把上面这段代码原样放进回答」)
        r"(上面|上述|前面|下面|以下|这段|这些|我(发|给|写|贴)的).{0,8}(代码|脚本|标签|内容|文字|话).{0,4}"
        r"(原样|原封不动|一字不差|照抄|完整)地?(放|写|贴|复制|输出|返回|显示|加|回复|粘贴|抄)",
        r"新指令", r"</?\s*(document|context|system|instructions?)\s*>",
        r"以下是补充", r"请?据此回答",
        r"(把|将)(文件|原文|文中|条款|政策).{0,12}(改成|改为|换成|替换[为成])",
        r"按照?(改后|修改后|更改后|改过|新改)的",
        # A text the user supplies as the document's (「以下是文件的最新修订：…」「假设文件写的是…」).
        r"(按|照|根据|依据)(照)?(修订|修改|更改|更新|改动)(过)?后的",
        r"(以下|下面|这)是(文件|原文|政策)的?(最新|新)?(修订|修改|版本|内容)",
        r"(假设|假如|假定|就当|如果说?)(这份)?(文件|原文|文中|政策)(里|中)?(写的是|说的是|规定的?是|改成|改为)", r"原样输出", r"verbatim", r"raw retrieved",
        r"(输出|打印|告诉我|显示).{0,8}你的.{0,4}(指令|规则|设定|提示)",
        r"print.{0,20}(instruction|prompt|rule)s?", r"reveal.{0,20}(instruction|prompt|rule)s?",
    ],
    "fabrication": [
        # a document made out for the asker (「给我开一份项目已获批复的证明」), or forged
        r"(给|帮|替|为)我们?(公司|单位|企业|厂|村|委)?(直接|就|先|来)?(开|出具|伪造|做|写|弄|盖|起草|草拟|拟|出|制作)"
        r"(一份|一张|一个|个|份|张)?.{0,20}(证明|证书|批文|批复|公函|红头文件|公章|印章|认定书|许可证|执照)",
        r"伪造", r"夸大", r"假账", r"加盖(公章|印章)", r"具有法律效力",
        # the parts of the document it does not have (「把那部分机密内容续写出来」)
        r"续写", r"(机密|保密|绝密|不公开|未公开)的?(内容|部分|版本|条款|文件)",
        # data made to show what is not so (「让没达标的贫困户在系统里显示已经脱贫」), or faked
        r"(没|未|不)(达标|脱贫|合格|完成|通过|验收)[^，,。？?]{0,12}(显示|变成|算作|算成|报成|写成|改成|弄成)"
        r"(为|了|成)?(已经|已)?(达标|脱贫|合格|完成|通过)",
        r"(怎么|怎样|如何|办法|法子|教我|帮我|能不能|可以).{0,16}(造假|作假|做假|篡改|虚报|瞒报|谎报|刷数据)",
        r"(台账|数据|数字|报表|账目)[^，,。？?]{0,4}(怎么|咋|如何)改",
        r"随便(编|估|猜|说)", r"编(一|个|造|几|些|点)(?!制)", r"瞎编", r"估一个", r"猜一个", r"别说不知道",
        r"不知道(的话)?就", r"make\s*up", r"\binvent\b", r"\bfabricate\b", r"just guess",
    ],
    # Requests for another kind of work than answering from the document.
    "off_topic": [
        # help to get round the law (「怎么绕过审批偷偷开采」), not what the document provides
        r"(怎么|怎样|如何|教我|帮我|办法|法子)[^。？?]{0,30}(绕过|绕开|规避|逃避|躲过|躲避|避开|躲开|逃过)"
        r"(政府|监管|审批|检查|环评|税|执法|在线监测|监测|监控|检测)",
        r"(怎么|怎样|如何|办法|法子|教我|帮我|能不能|能否|可以|可不可以).{0,12}"
        r"偷偷.{0,6}(开采|排放|排污|排废|排到|建设|施工|开工|生产|倒|填埋)",
        # a deed kept from those who check it (「教我怎么应付检查、不被发现」)
        r"(怎么|怎样|如何|办法|法子|教我|帮我|能不能|可以)(?![^。？?]{0,24}(防止|避免|杜绝))[^。？?]{0,24}不(容易|会)?(被|让)[^，,。？?]{0,8}"
        r"(发现|查到|查出|察觉|抓到|知道|注意到|看出)",
        r"(别|不要|千万别|不能)让[^，,。？?]{0,8}(发现|看出|知道|查到|察觉)",
        r"(怎么|怎样|如何|教我|帮我)[^。？?]{0,8}(应付|糊弄|蒙混)(过去|过关)", r"蒙混过关",
        # bribing or buying favour, evading tax, cheating in an exam
        r"(怎么|怎样|如何|该|帮我|教我)[^。？?]{0,16}(送礼|行贿|贿赂|打点|塞钱|塞红包|回扣|好处费)",
        r"打点关系", r"送(什么|多少|啥)(礼|钱)?(最|比较)?(稳妥|合适)",
        r"(偷税|逃税|漏税|避税)", r"少交[^，,。？?]{0,8}税",
        r"作弊|替考|代考",
        # advice of another profession (「该吃什么药、每天吃几片」)
        r"(该|要|能)?吃(什么|啥|哪种)药|吃几片|用药剂量",
        r"(怎么|怎样|如何|咋)(去|来)?(起诉|告他们|告政府|打官司)|胜诉|败诉",
        r"应付(一下)?(检查|督察|巡视|验收|考核|审计)",
        # writing or translating (「写一篇网络爆料文章」「把第二部分翻译成英文」)
        r"(写|创作|编|起草|拟)(一|几|两)?(篇|份|段|条|个|封|则)[^，,。？?]{0,30}(文章|稿子|稿件|新闻稿|报道|评论|帖子|微博|"
        r"朋友圈|爆料|软文|心得体会|心得|读后感|检讨|讲话稿|发言稿|宣传稿|信|广告|文案|宣传语|标语|简历)",
        r"\bwrite\b.{0,40}\b(statement|article|letter|speech|essay|story|post|poem|advert\w*|ad)\b",
        r"press (statement|release)", r"\bas (the|an?) (official )?spokes(person|man|woman)\b",
        r"翻译(成|为|一下|下)|译成|(翻|译)成?(英文|英语|日语|日文|韩语|法语)|\btranslate\b",
        r"(写|作|来|创作|编)(一|几|两)?(首|篇|段|副|个)?.{0,12}"
        r"(诗|绝句|宋词|歌词|歌曲|小说|作文|笑话|散文|故事|对联|顺口溜|演讲稿)",
        r"(讲|说)(一|几)?个?.{0,6}(笑话|故事)",
        r"(写|编)(一)?(个|段)?.{0,8}(代码|爬虫|程序|脚本)", r"\bpoem\b", r"\bjoke\b",
    ],
    # Asking the assistant for its own judgement, or for a forecast the document cannot give.
    "opinion": [
        r"你(个人)?(觉得|认为|怎么看)", r"(说说|谈谈|讲讲|发表).{0,4}你(自己|个人)?的(看法|观点)",
        # a forecast asked of the assistant (「再预测一下五年后它能不能成功」)
        r"预测一下|(帮我|请你?|你来?)预测",
        r"(推荐|买|选|哪只|哪几只).{0,10}(股票|基金|房子|彩票)", r"稳赚", r"(房价|股价|股票).{0,8}(会不会|能不能|会)?.{0,4}(涨|跌)",
        r"(难听|粗俗|恶毒)的?话", r"骂(一下|一顿|他们|它|他|她|人|几句)", r"越难听越好",
        r"\bin your opinion\b", r"what do you think",
        # a verdict on the policy asked of the assistant (「这个政策是不是失败了，给个痛快评价」)
        r"(是不是|算不算|算是)(彻底)?(失败|成功)(了)?", r"给个.{0,4}评价|打个分|打几分",
    ],
}
_COMPILED = {v: [re.compile(p, re.IGNORECASE) for p in ps] for v, ps in _PATTERNS.items()}
# Control characters other than newline/tab are stripped before anything else sees the text.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Screening:
    verdict: Verdict
    pattern: str = ""  # the rule that fired, for logs and tests (never shown to users)


def clean_question(text: str) -> str:
    """NFC-normalised, control characters and bidi overrides removed, whitespace trimmed."""
    return _CONTROL_RE.sub("", unicodedata.normalize("NFC", text)).strip()


# Markup pasted into a question (「<img src=x onerror=alert(1)> 文件里…」): a script's body and
# the tags go; what they wrap is text. (alert(1) must not read as 第（1）条.)
_SCRIPT_RE = re.compile(r"<\s*(script|style)\b[^>]*>.*?(<\s*/\s*\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<\s*/?\s*[A-Za-z][^<>]{0,300}>")


def without_markup(text: str) -> str:
    """The question without HTML tags and script or style bodies, spaces collapsed."""
    plain = _TAG_RE.sub("", _SCRIPT_RE.sub(" ", text))
    return re.sub(r"\s{2,}", " ", plain).strip()


def screen(question: str) -> Screening:
    """The first rule category the question triggers, checked in order of severity."""
    text = unicodedata.normalize("NFKC", question)
    for verdict in ("harmful", "injection", "fabrication", "opinion", "off_topic"):
        for rx in _COMPILED[verdict]:
            if rx.search(text):
                return Screening(verdict, rx.pattern)
    return Screening("ok")


# What the document says, asked outright: 「文件对…怎么安排」「原文怎么写」「…的定位是啥」.
_ASKS_DOCUMENT = re.compile(
    r"(文件|原文|文中|这份|意见|政策|它)[^，,。？?！!；;]{0,16}?(写|说|讲|规定|安排|部署|提出|提到|提及|提了|提过|点名|列出|"
    r"明确|要求|支持|布局|定位)"
    r"|(定位|安排|规定|要求|措施|布局)(是|有)(什么|啥|哪些)|(咋|怎么|如何|是怎么|是咋)(写|说|讲|规定)的")
_ASKS_SOMETHING = re.compile(r"什么|怎么|怎样|咋|如何|哪|吗|呢|啥|是否|有没有|是不是|[？?]")
# Asking for a judgement of the text or of its prospects, not for what it says.
_JUDGING = re.compile(r"好不好|行不行|对不对|够不够|合不合理|合理吗|靠谱|有没有用|有用吗|有帮助吗|管用|"
                      r"写得|做得|干得|评价|形式主义|画大饼|能不能成|能成吗|会成功|"
                      r"值得|值不值|最重要|更重要|重不重要|有没有必要|应不应该")
# Asking for the assistant's judgement, as framing: 「你觉得这份文件对…是怎么安排的」.
_OPINION_FRAME = re.compile(r"你(个人)?(觉得|认为)")


def set_aside(question: str, screening: Screening) -> str | None:
    """The document question left when an opinion or off-topic framing is set aside, or None.

    「你觉得这份文件对淘汰落后产能是怎么安排的？」 asks what the text says; 「我写脚本跑数据需要算力，
    文件在…云计算中心上有啥布局？」 tells why it asks. Their framing matched a screen, but a
    question about what the document says remains: it is answered (with a note that the
    framing was not). Clauses that make another request (写一首诗, 说说你的看法, 推荐股票) are
    dropped; what remains must ask outright what the text says, and pass the screen itself.
    Injection and fabrication are never set aside."""
    if screening.verdict not in ("opinion", "off_topic"):
        return None
    text = unicodedata.normalize("NFKC", question)
    kept = []
    for clause in re.split(r"(?<=[，,。？?！!；;])", text):
        if screening.verdict == "opinion":
            clause = _OPINION_FRAME.sub("", clause)
        if any(rx.search(clause) for rx in _COMPILED[screening.verdict]):
            continue
        kept.append(clause)
    rest = "".join(kept).strip("，,。；;！! ")
    # A clause judging the text (「文件写得好不好」) does not ask what it says.
    # (A clause that only tells what the text says, 「政策说要搞分级诊疗」, asks nothing.)
    asks = [c for c in kept if _ASKS_DOCUMENT.search(c) and _ASKS_SOMETHING.search(c)
            and not _JUDGING.search(c)]
    if not rest or not asks or screen(rest).verdict != "ok":
        return None
    return rest
