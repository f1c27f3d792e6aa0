"""Decide from the evidence whether the document answers a question (or one part of it).

Retrieval always returns *something*, so a question is not answerable merely because clauses
were found. What decides is whether the evidence sentences hold what the question asks for:

- the **kind** of answer asked: a date question needs a date in its evidence, "how often" a
  frequency, "how much money" an amount in 元, "how many / how large" a number, a phone or
  address question a contact detail;
- the question's **constraints**: a year or an economic zone it names must occur in the
  evidence, and so must a place the document spells out (places the document never spells out
  are not checked: it abbreviates, 广深 = 广安–深圳);
- the question must share at least one content word with the document (dense scores alone cannot
  tell chit-chat apart).

These are general forms of questions, not words of particular test questions; each has
answerable near-miss questions in tests/test_near_miss.py that it must let through.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import permutations

from .citations import places_in, said_of
from .corpus import arabic_numbers, normalize
from .evidence import _ASKER, STATES_RE, asks_overview, names_own
from .lexical import abbreviations, initials
from .retrieval import SearchResult

# Kinds of provision a text makes (「有多少办法」 asks for them, not for a number).
_PROVISIONS = r"(?:[^，。？?！!]{0,6}?(?:办法|措施|举措|政策|招|安排|对策))"
# Things that come about (a project built, a target reached, an application approved).
_DONE = r"(?:成功|建成|完成|通车|获批|落地|实现|突破|达到|开通|竣工|投产|批下来|摘帽)"
COMES_ABOUT = re.compile(_DONE)  # the words, for parts: what a date is asked of, not a thing
# What a question asks for, by the form of the question → what the evidence must then contain.
ASKS: tuple[tuple[str, re.Pattern, re.Pattern], ...] = (
    # Whether a thing has come about (「申遗成功了吗」「巴中机场建成了没有」): a policy text sets
    # tasks and targets; it answers only where it reports what has been done (已建成).
    # (「突破9000亿元了吗」 too, with what is reached between; not 「文件提到建成X了吗」, which
    # asks what the text says, nor 「要建成X了吗」.)
    ("实际进展", re.compile(_DONE + r"了(?:吗|没有?)|(?:有没有|是否已经?|是不是已经)" + _DONE + r"(?![性口的])|"
                        r"^(?!.*(?:提到|提及|提出|写到|写了|说到|说了|讲到|涉及|规定|要求))"
                        r".*(?<![要将争])" + _DONE + r"(?:[^，,。？?了吗]{1,10}了(?:吗|没有?)|[^，,。？?了吗]{0,10}"
                        # 「最后到底突破9000亿没有」: 没有 closing the question (not 有没有)
                        r"(?<!有)没有(?=[？?]|$))"),
     re.compile(r"已经|已(?:完成|实现|达到|建成|开通|获批|成功)|(?:完成|实现|达到|建成|开通|获批|成功)了|截至")),
    # Whether a price or fee goes down or up (「天然气价格会不会降」): the text must speak of
    # prices changing (降低收费, 免费), not only of the thing priced.
    ("价格调整", re.compile(r"(?:价格|价钱|票价|电价|气价|水价|油价|物价|收费|费用|学费|运费|资费|网费|电费|水费|气费)"
                      r"[^，,。？?]{0,6}?(?:会不会|能不能|会|能|是否|要)?[^，,。？?]{0,3}?(?:降|涨|便宜|贵|下调|上调)"),
     re.compile(r"降价|涨价|(?:价格|费用|收费|资费|成本)[^，,。；;]{0,6}(?:降低|下降|下调|上涨|上调)|"
                r"(?:降低|下调|减免)[^，,。；;]{0,6}(?:价格|费用|收费|资费|成本)|免费")),
    # Where a thing moves to (「达钢集团要搬迁到哪个具体地点」): the text must say where it goes
    # (迁至, 搬到, 新址, 落户), not only that it moves (搬迁转型发展) beside other places.
    ("迁移去向", re.compile(r"(?:搬迁|迁建|迁移|搬|迁)(?:到|至|往|去)(?:哪|什么地方|何处|何地)|"
                      r"(?:搬迁|迁建|迁移)[^，,。？?]{0,2}(?:目的地|新址|选址|地点)|"
                      # 「搬迁新厂址选在哪里」
                      r"(?:新厂址|新址)[^，,。？?]{0,4}(?:哪|什么地方|何处)|"
                      r"(?:搬迁|迁建|迁移)[^，,。？?]{0,6}(?:厂址|选址)[^，,。？?]{0,4}(?:哪|什么地方|何处)"),
     re.compile(r"迁(?:至|往|到|入)|搬(?:到|至|往|入)|(?:迁建|搬迁|迁移)(?:于|在|至)|新址|选址|落户")),
    ("具体时间", re.compile(r"什么时候|啥时候|何时|什么时间|啥时间|哪个时间|几时|哪一?年|几月|哪天|哪一天|几号|多会儿|具体时间|截止日期|"
                      # 「脱贫攻坚的时间节点是什么」 asks a date as 「什么时候」 does
                      r"时间节点[^，,。？?]{0,3}(?:是什么|是哪|是啥|在哪)|(?:什么|哪个|哪些)时间节点|"
                      r"(?:完成|截止)时间[^，,。？?]{0,3}(?:是什么|是哪|是啥)"),
     re.compile(r"\d{4}年|\d{1,2}月|[一二三四五六七八九十]+月|年底|年内|年前|年末|上半年|下半年")),
    # 「每周开行几趟」 asks how often as 「每年开几次」 does.
    ("会议或工作频次", re.compile(r"多久.{0,4}一次|多长时间.{0,4}一次|一年.{0,3}几次|几年一次|频率|频次|隔多久|"
                         r"(?:每|一)[年季月周天日].{0,4}(?:几|多少)[次趟班回列架场]"),
     re.compile(r"每[年季月周天半]|定期|一次")),
    ("具体比例", re.compile(r"几个点|百分点|比例|百分之|比率|几成|占比"),
     re.compile(r"%|％|百分|[一二三四五六七八九十]成")),
    # (Not a subsidy a thing lives on, which describes it: 「靠贷款和补贴硬撑的企业」.)
    ("补贴标准", re.compile("".join(f"(?<![靠吃赖][^什么哪些多少几]{{{n}}})" for n in range(4))
                        + r"(?:补贴|补助|奖补|奖励|优惠政策|扶持资金)"),
     re.compile(r"补贴|补助|奖补|奖励|优惠|资金|扶持")),
    # 「安排了多少专项资金」: money however it is qualified (not 「多少投资项目」, a count).
    # (Sichuanese 好多钱 is 多少钱: 「一户补好多钱」)
    ("具体金额", re.compile(r"(?:多少|好多)[^，,。？?、]{0,4}?(?:钱|资金|经费|预算|拨款)|多少[^，,。？?、]{0,4}?投资(?!项目|主体|企业)|"
                      r"(?:资金|经费|预算|拨款|投资额)[^，,。？?]{0,4}(?:多少|几)|多少元|多少万|多少亿|金额|投资多少|投入多少|总投资|"
                      r"(补贴|补助|奖励|奖补|报销|资助)(标准|多少|几)|收费标准|"
                      # a price asked for, not one described (「价格实惠的幼儿园」)
                      r"(?:价格|价钱|票价|收费|学费|费用)[^，,。？?]{0,4}(?:多少|几|标准|怎么定|怎么算)|什么价"),
     re.compile(r"\d+(\.\d+)?\s*(亿|万)?元|[一二三四五六七八九十百千万亿]+元")),
    # A count ("几个") can be answered by an enumeration; a measure ("多少", "多大") needs a number
    # that is not a year. 「哪几个」 asks which, not how many.
    # 「有多少办法」 asks for the measures, as 「有几条措施」 does: an enumeration answers it.
    # 「几个市之间会怎么配合」「几个市要联手…」: 几个 names the cities, it does not ask how many.
    ("具体数量", re.compile(r"(?<![哪这那])(?:几个(?![\u4e00-\u9fff]{1,4}?(?:之间|间|会|一起|都|联手|共同|分别|各自|要|在|的))|(?<!第)几条|几所|几家|几项|几座|几大)|多少个|多少条|多少家|多少项|"
                      r"多少" + _PROVISIONS),
     re.compile(r"\d|[一二两三四五六七八九十]+(个|条|所|家|项|类|座|市|大)|[、和及与]|”“")),  # not 一批
    ("具体数字", re.compile(r"多少(?!" + _PROVISIONS + r")|多大|多长|多高|多宽|多远"),
     re.compile(r"\d+(?:\.\d+)?(?!\d*年)|[一二两三四五六七八九十百千万亿]+(个|条|所|家|项|类|座|市|县|区|大|成|倍|万|亿|%)|百分之")),
    # Who holds an office: the text must name the office (policy texts rarely name people).
    ("具体人员", re.compile(r"(院长|校长|局长|市长|省长|县长|书记|主任|负责人|责任人|主席|董事长|总经理|部长|厅长|召集人)"
                      r"[^，,。？?]{0,2}(是谁|叫什么|姓什么|是哪位)|姓名|哪位(?![\u4e00-\u9fff]{0,4}的[\u4e00-\u9fff])|哪个人|"
                      # 「召集人是哪个领导」 (not 哪个领导小组)
                      r"哪个(?:领导|官员|干部)(?=[？?，,。呢吗啊]|$|来|负责|牵头|主持|召集)"),
     # 「由哪位省领导召集」 asks for a person; 「保护哪位伟人的故里」 for a thing of one, which
     # the text may name (朱德故里) as it names no office.
     # An office whose guidance the text follows (「贯彻习近平总书记…重要指示精神」) is not who
     # acts on it: 「由哪位省领导牵头」 is not answered by it.
     re.compile(r"(?:院长|校长|局长|市长|省长|县长|书记|主任|负责人|主席|董事长|总经理|部长|厅长|召集人|同志|"
                r"(?<!组织)领导|官员|专家)(?![^，,。；;]{0,16}(?:指示|讲话|批示|论述|思想|精神))")),
    ("联系方式", re.compile(r"电话|热线|手机号|邮箱|网址|官网|联系方式|联系人|办公地址|在哪办公"),
     re.compile(r"\d{3,}[-\d]{4,}|@|https?://|www\.|[路街道]\d+号")),
    # The document's own issuance (number, issuer, validity) is rarely in its body text.
    ("发文信息", re.compile(r"文号|印发|发文|有效期|废止|失效|生效|施行"),
     re.compile(r"印发|施行|生效|废止|有效期|〔\d{4}〕|\d+号")),
    # 「具体要满足什么条件」 asks for the conditions themselves: a text that only refers to them
    # (鼓励支持符合条件的…) does not state them. Without 具体 the question is answered by who
    # qualifies (「要满足什么条件」 → 符合条件的重点县级职业中专).
    ("具体条件", re.compile(r"具体[^，,。？?]{0,6}条件|条件[^，,。？?]{0,2}具体|(哪些|什么)具体条件"),
     re.compile(r"条件(?:是|为|包括|如下)|(?<!符合)(?<!具备)条件[:：]|(?:须|应|必须|需要?)(?:满足|符合|具备)|门槛")),
    # 「申报省级现代农业园区需要满足什么条件」: conditions, at least referred to (符合条件的…,
    # which says who qualifies); a sentence that only supports the thing states none, nor one
    # improving 生产生活条件.
    ("申请条件", re.compile(r"(?:满足|符合|具备|需要|要|有)(?:什么|哪些|啥)(?:样的)?(?:条件|前提|门槛)|"
                      r"(?:条件|前提|门槛)(?:是什么|是啥|有哪些)"),
     # (条件 as what qualifies, not 生产生活条件 improved)
     re.compile(r"(?:符合|具备|满足|达到)[^，,。；;]{0,4}(?:条件|要求|标准)|条件(?:是|为|包括|如下)|门槛|前提")),
    # 「海关机构设在哪条路上」: an address, which a text that says where in a city gives not.
    ("具体地址", re.compile(r"(?:哪条|什么|啥)(?:路|街|大街|大道|巷)上|门牌|(?:具体|详细)?地址(?:是|在)?(?:哪|什么|啥)|几号楼"),
     re.compile(r"[路街道巷]\d+号|地址|门牌")),
    # Taxes asked about are a provision of their own: a text that never speaks of 税 gives no
    # tax relief (保税, of 保税物流中心, is a customs status; 「免税的海关特殊园区」 describes a
    # thing the text names, it does not ask for tax rules).
    ("税收优惠", re.compile(r"(?<!保)税[^，,。？?；;]{0,5}(优惠|减免|政策|标准|返还|多少|哪些|什么|几)|"
                       r"(哪些|什么|多少|哪种|几种)[^，,。？?；;]{0,3}(?<!保)税"),
     re.compile(r"(?<!保)税")),
    # Which of them ranks first, or is ahead: a text that sets each its tasks compares none
    # (「哪个市发展最好」「和重庆比谁高」); not 「比例」「相比之下要做什么」.
    ("比较或排名", re.compile(r"排名|排第几|排第[一二三四五]|名次|排行|谁更|哪边更|哪[一]?个[^，,。？?]{0,6}更|"
                         r"谁的[^，,。？?]{0,8}更|比谁|比哪|谁(?:的)?(?:大|小|高|低|多|少|强|弱|快|慢|好|差)(?=[？?吗呢]|$)|(?:哪|谁)[^，,。？?]{0,8}最(?![后终新早初先])|"
                         r"(?<![对相])比(?![例重较率])[^，,。？?]{1,8}(?:高|低|快|慢|多|少|强|弱|好|差)吗|"
                         # 「更高还是更低」: which of two, however they are named
                         r"更?(?:高|低|快|慢|多|少|强|弱|好|差|大|小)还是更?(?:高|低|快|慢|多|少|强|弱|好|差|大|小)"),
     re.compile(r"最|第一|首位|之首|排名|位居|位列|高于|低于|超过|领先|优于|不如|[快慢高低强弱]于")),
    # What is new against an earlier or another document (「跟以前老的规划比，新加了哪些内容」):
    # a text states its own provisions, not how they differ from another's.
    ("与其他文件的比较", re.compile(
        r"(?:以前|之前|过去|上一版|上一轮|上一个|老的?|旧的?|原来的?|原先的?|其他|别的)[^，,。？?]{0,14}"
        r"(?:规划|文件|意见|政策|方案|版本)[^，,。？?]{0,8}(?:比|相比|对比|比较)|"
        r"(?:跟|和|与|同)[^，,。？?]{0,16}(?:规划|文件|意见|政策|方案)(?:相比|相较)|"
        r"(?:比|相比|对比|较)(?:以前|之前|过去|原来|原先|老版|旧版|上一版)[^，,。？?]{0,10}"
        r"(?:新|多|变|不同|区别|增加|调整)|新(?:加|增|添)了?(?:哪些|什么|啥)"),
     re.compile(r"相比|相较|新增|不同于|有别于")),
    # What befalls those who fail (处分, 问责): a text that only requires checks and assessment
    # (督促检查和考核) sets no penalty.
    ("处罚或问责规定", re.compile(r"处分|处罚|惩罚|惩处|惩戒|问责|追责|追究[^，,。？?]{0,4}责任|罚款|罚金|奖惩|"
                           # (people or offices dealt with, not a thing: 「僵尸企业会被怎么处理」)
                           r"受到什么处理|(?:单位|部门|干部|官员|领导|个人|负责人|责任人|人员)[^，,。？?]{0,4}"
                           r"(?:会|要)被怎么(?:样|处理)"),
     re.compile(r"处分|处罚|惩罚|惩处|惩戒|问责|追责|追究|罚|奖惩|通报|约谈")),
    # ... and the steps of applying (「需要走什么申请流程」, 「入驻的程序是什么」).
    # (「开民宿要办哪些证」: the licences to obtain are a step of applying.)
    ("办理手续", re.compile(r"(准备|提交|需要|要交)(哪些|什么)?材料|手续|办(?:哪些|什么|啥|哪几)(?:个|种|样)?(?:证|执照|许可)|(?:怎么|咋个?|如何)(?:申请|申报|办理)|去哪办|在哪办|"
                      r"(?:申请|办理|申报|审批|报批|入驻|登记|注册)[^，,。？?]{0,10}(?:流程|程序|步骤)|"
                      r"走(?:什么|哪些|啥)(?:样的)?(?:流程|程序)"),
     re.compile(r"申请|申报|办理|经办|通办|提交|审批|窗口")),
)
_QUESTION_WORDS = re.compile(r"什么|怎么样|怎么|怎样|如何|哪些|哪里|哪儿|哪几|多少|是否|有没有|有哪些|吗|呢|啥|"
                             r"请问|一下|文件|政策|意见|里面|关于|方面|情况|内容|说说|介绍|一共|总共|"
                             r"出现|提到|提及|涉及|写到|说到|讲到|所有|全部|凡是|相关|有关|安排|部署|"
                             r"分别|各自|这份|这个|[一二三四五六七八九十两几]+[个条项所家类座大种]")
# Words that ask (a clause with one is a question, not a statement that opens it).
_ASKING = re.compile(r"什么|怎么|怎样|如何|哪|多少|(?<![好这那十没])几|是否|有没有|能不能|会不会|吗|呢|啥|[？?]")
# A document named by its title in 《》 (「帮我总结《成渝地区双城经济圈建设规划纲要》」).
_TITLED_RE = re.compile(r"《([^《》]{2,60})》")
_HAN2 = re.compile(r"[\u4e00-\u9fff]{2}")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_RELATION_ASKED = r"(?:和|跟|与|同)"
_RELATION_ASKED_END = r"(?:之间)?(?:到底|究竟)?(?:是|有)?(?:什么|啥|怎样的?|哪些)?(?:关系|联系|关联)"
_FUNCTION_CHARS = re.compile(r"[和与及跟同对在的了是有要把将会能可都也还又从向让给被]")
# Kinds whose answer is a quantity: the thing counted or measured must be in the evidence too
# (「城镇化率要达到多少」 is not answered by a sentence holding only the GDP target).
QUANTITIES = ("具体金额", "具体比例", "具体数量", "具体数字")
# Kinds whose answer belongs to something the question names: that thing must be in the
# evidence (「五年行动计划从哪一年执行」 is not answered by another sentence's year, nor
# 「入驻产业园要走什么申请流程」 by another thing's 协同申请设立).
MEASURED = (*QUANTITIES, "具体时间", "办理手续")
# A route "X至Y" / "X经Z至Y": a place named only there is a road's end, nothing more.
_ROUTE_RE = re.compile(r"[\u4e00-\u9fff]{1,4}(?:经[\u4e00-\u9fff]{1,4})?至[\u4e00-\u9fff]{1,4}")
# (「提到」 too: whether or where the text mentions a place is answered by a route through it.)
# (「两市之间要修什么路」 asks for a road by name too.)
_ROUTE_ASK = re.compile(r"至|到|经过|途经|高速|铁路|高铁|公路|城际|航线|航道|通道|线路|路线|连接|连通|提及|"
                        r"修[^，,。？?]{0,4}路|(?:什么|哪条|哪些)路|道路")
_YEAR_RE = re.compile(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)")
# A named economic zone: 「关中经济区」, not 「经济区域」 (a region in general), and not the end of
# 「新区和经济区」 (a named zone has no conjunction or particle in its name).
_ZONE_RE = re.compile(r"([\u4e00-\u9fff]{2,4})经济区(?!域)")
_NOT_IN_NAME = re.compile(r".*[和与及、的等或跟同在对向]")


# 「哪所大学」「哪家企业」「哪个县」: the answer names one of a kind of thing, so the evidence
# must hold a thing of that kind (a word for it, or for a place a gazetteer name not asked about).
# 「哪类城市」「哪种企业」 ask a type (川渝合作示范城市), not for one to be named.
_WHICH_RE = re.compile(r"(?<!文件)(?<!文中)(?<!原文)(?<!意见)哪[一几]?[个所家座位些部]?"
                       r"(法律|法规|条例|车站|站点|站|大学|高校|学校|院校|学院|分校区|分校|校区|医院|公司|企业|车企|运营商|厂商|厂家|酒厂|工厂|品牌|"
                       r"集团|银行|部门|机构|单位|园区|乡镇|城市|地方|县|市|镇|乡|村)"
                       r"(?![际场民区级委政容域长镇村里属内外])")  # not 哪些市际协作机制
# 「哪些航线」「哪几个示范县」: the kind of thing a which-question asks to have named.
_WHICH_NOUN_RE = re.compile(r"哪(?:些|几个|几家|几条|几所|几项|一个|个)"
                            r"((?:(?![是要有在会能可将的吗呢])[\u4e00-\u9fff]){2,8}?)"
                            r"(?=[是要有在会能可将的，,。？?吗呢]|$)")
# A quantity that names nothing (一批, 更多), in the same phrase before the kind, no list between.
_VAGUE_RE = re.compile(r"(?<!等)(?:一批|一大批|更多|若干|一些|多个|一系列|各类|各种)[^、，,；;。和及与]{0,12}$")
# 「哪个乡镇」「哪个村」: the gazetteer stops at counties, so a township or village is a name
# that ends in 镇/乡/村 and is not one of the words for such places in general (城镇, 乡村).
_TOWNSHIP_KINDS = ("乡镇", "镇", "乡", "村")
_TOWNSHIP_RE = re.compile(r"[\u4e00-\u9fff]{2,3}?(?:镇|乡|村)(?![镇乡村级民落庄])")
_GENERIC_TOWNSHIP = frozenset(("城镇", "乡镇", "古镇", "村镇", "小镇", "重镇", "集镇", "城乡", "农村", "山村",
                               "新村", "乡村", "下乡", "返乡", "家乡", "老乡", "城村", "市镇", "县乡", "镇乡"))
_KIND_WORDS = {
    **dict.fromkeys(("大学", "高校"), r"大学|高校"),
    **dict.fromkeys(("学校", "院校", "学院"), r"大学|高校|学校|院校|学院|职业中专"),
    "医院": r"医院|医疗机构|医疗卫生机构",
    **dict.fromkeys(("法律", "法规", "条例"), r"法律|法规|条例|《"),
    **dict.fromkeys(("车站", "站点", "站"), r"站"),
    **dict.fromkeys(("公司", "企业", "车企", "运营商", "厂商", "厂家", "酒厂", "工厂", "集团", "银行"),
                    r"公司|企业|集团|银行|厂|运营商"),
    "品牌": r"品牌|商标",
    **dict.fromkeys(("分校区", "分校", "校区"), r"分校|校区"),
    **dict.fromkeys(("部门", "机构", "单位"), r"部门|机构|单位|厅|局|委员会|政府|联席会议"),
    "园区": r"园区|园|开发区|新区|基地",
}


# Kinds of place a text names without a place name (「城镇热点公共区域」「旅游景区」).
_LOCATION_WORDS = r"区域|场所|片区|街区|社区|景区|口岸|沿线|周边|站点|枢纽"
# A question's wording often spans two phrases of the text (「深化广深合作要推进哪个园区建设」 →
# 「深化广深合作,推进广深产业园建设」): the phrase with the thing asked holds a quarter of it.
KIND_SHARE = 0.25
# The text requiring a time or a responsibility to be stated (明确时间表、路线图、责任单位).
_REQUIRES_STATED = re.compile(r"(明确|写明|确定|规定)[^。；;]{0,12}(时间|时限|期限|节点|进度|责任|分工)")
# Qualifiers that make a measure another measure (人均 GDP is not GDP).
# Money spent (资金, 经费, 投资) is not an economy's output: 「安排了多少专项资金」 is not
# answered by a GDP target in 亿元.
_FUNDS_ASKED = re.compile(r"资金|经费|预算|拨款|投资|投入")
_FUNDS = re.compile(r"资金|经费|预算|拨款|投资|投入|补助|补贴|奖补|基金|资助|财政")
_STEPS_ASKED = re.compile(r"(?:哪些|什么|哪几|几个|啥)(?:样的)?(?:审批|申请|办理|申报|报批)?(?:流程|程序|步骤|手续|环节|材料)")
_STEPS = re.compile(r"流程|程序|步骤|环节|手续|材料|窗口|通办|一站式|一网|时限")
_SAYS_ASKED = re.compile(r"怎么说|怎么写|如何表述|说法|提到|提及|讲了|写了|有什么规定|有没有规定")
_MEASURE_OF = re.compile(r"人均|年均|户均|平均|增速|增长率|增幅|比重|占比")
# 「多少个贫困县」「有几个示范区」: a count of a named thing (not 「几个市之间」, the cities).
_COUNT_OF = re.compile(r"(?:多少|(?:有|是|包括|包含|共|涉及|由)几)个([\u4e00-\u9fff]{1,6}?)"
                       r"(?=[要是在有的将会能，,。？?吗呢]|$)")


def _counted(noun: str, evidence: str) -> bool:
    """The evidence counts `noun` (「5市」「两个示范区」) or lists them (「南充、达州等城市」);
    evidence that never names it must at least count or list something (a bare 和 joining two
    phrases of a sentence on 贫困地区 does not count 贫困县)."""
    head = noun[-2:]
    at = [m.start() for m in re.finditer(re.escape(head), evidence)]
    if not at:
        return bool(re.search(r"\d|[一二两三四五六七八九十]+[个条所家项类座市县区大]|、", evidence))
    return any(re.search(r"[\d一二两三四五六七八九十百]\s*[个座所家条项类大]?$", evidence[max(0, k - 4):k])
                         or "、" in evidence[max(0, k - 24):k] for k in at)


# A quantity asked of each member of a group, and the figures (not years) that could give it.
_EACH = re.compile(r"各自|分别|每个(?:市|县|区|地方)|每(?:市|县)|各(?:市|县|区)(?!之间|间)")
_FIGURE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.]*年)")
_ACTUAL = re.compile(r"实际|最终|已经|目前|现在|当前|去年|前年|上一?年|截至|截止到|至今")
_TARGET = re.compile(r"目标|计划|规划|力争|要求|预期|预计|要达到|要突破|要破")
_OUTCOME = re.compile(r"已经|已(?:完成|实现|达到|建成)|完成了|实现了|达到了|截至|同比")


@dataclass(frozen=True)
class Answerability:
    answerable: bool
    reason: str = ""  # why not, in Chinese, for the refusal text
    missing: str = ""  # the kind of information or term the evidence lacks


ANSWERABLE = Answerability(True)


def _periodic(evidence: str, terms: list[str] | tuple[str, ...]) -> bool:
    """「年度重点任务清单」: the thing the question asks about is yearly (quarterly, monthly) by
    the word right before it; a 年度 before something else says nothing of it."""
    ev = normalize(evidence)
    return any(normalize(t) in m.group(1) or m.group(1).startswith(normalize(t))
               for m in re.finditer(r"(?:年度|季度|月度)([\u4e00-\u9fff]{2,8})", ev)
               for t in terms if len(t) >= 2)


def _zones(question: str) -> list[str]:
    """The named economic zones a question mentions (the words before 经济区)."""
    names = (_NOT_IN_NAME.sub("", z) for z in _ZONE_RE.findall(question))
    return [z for z in names if len(z) >= 2]


def asks_which(question: str) -> bool:
    """「哪个县」「哪家企业」: the question asks to have a thing of a kind named."""
    return bool(_WHICH_RE.search(unicodedata.normalize("NFKC", question)))


# A question opening with the asker's own circumstances (「我在外地上班交社保，回老家办手续很麻烦，
# 政策有没有说能跨地方办？」), or with statements before a question that names its own thing
# (「回来办医保手续很折腾，异地就医能直接结算吗？」): the statements ask nothing, what is asked
# starts with the first clause that asks. Not 「巴中机场的建设资金，是多少？」: its asking clause
# names nothing, it asks of the clause before.
_STORY_RE = re.compile(_ASKER)
_OWN_QUESTION_CHARS = 5
_ASKS_CLAUSE = re.compile(_ASKING.pattern + r"|多久|多长|多大|多高|多远|多宽|何时|谁|为何|为什么|能否|可否")


def asking(question: str) -> str:
    """The question from its first asking clause on, when statements open it (above)."""
    q = unicodedata.normalize("NFKC", question)
    clauses = re.split(r"(?<=[，,；;。！!])", q)
    i = 0
    while i < len(clauses) - 1 and not _ASKS_CLAUSE.search(clauses[i]):
        i += 1
    if i and _ASKS_CLAUSE.search(clauses[i]) and (
            _STORY_RE.match(q) or names_own(clauses[i]) >= _OWN_QUESTION_CHARS):
        return "".join(clauses[i:])
    return q


def asked_kind(question: str) -> str:
    """The kind of information a question asks for ("" for an open question)."""
    q = asking(question)
    for name, asks, _ in ASKS:
        if asks.search(q):
            return name
    return ""


def kind_pattern(question: str) -> re.Pattern | None:
    """What evidence must hold for the kind of answer `question` asks (a year, an amount), or
    None for an open question."""
    q = asking(question)
    return next((holds for _, asks, holds in ASKS if asks.search(q)), None)


def gives_kind(question: str, line: str, evidence: str) -> bool:
    """Whether `line` gives the kind of answer `question` asks for (a date, a number...) when
    its `evidence` has one: 「脱贫的时间节点是哪年」 is not answered by a line without a year taken
    from a sentence that has it."""
    q = asking(question)
    for _, asks, holds in ASKS:
        if asks.search(q):
            return bool(holds.search(unicodedata.normalize("NFKC", line))) or not holds.search(
                unicodedata.normalize("NFKC", evidence))
    return True


def _initial_runs(named: list[str], evidence: str) -> set[str]:
    """The places named that `evidence` writes by their first characters in a run of three or
    more such initials of distinct places the question names (成南达万高铁: 成都, 南充, 达州,
    万州 — 「从成都经南充、达州到万州的高铁」)."""
    first = {p[0]: p for p in named}
    if len(first) < 3:
        return set()
    found: set[str] = set()
    for m in re.finditer(f"[{''.join(first)}]{{3,}}", evidence):
        if len(set(m.group(0))) == len(m.group(0)):
            found |= {first[c] for c in m.group(0)}
    return found


class AnswerabilityJudge:
    """Checks a question, and each part of it, against the document and its evidence."""

    def __init__(self, document_text: str, places: frozenset[str] = frozenset(),
                 titles: tuple[str, ...] = (), counties: frozenset[str] = frozenset()):
        self.document = normalize(document_text)
        self.counties = counties  # county-level names: 「哪个县」 is not answered by a city
        self.titles = tuple(normalize(t.strip("《》")) for t in titles)  # the documents' own
        self._places = frozenset(p for p in places if normalize(p) in self.document)
        # ... nor is one it writes by abbreviation only (川陕甘 for 陕西): that is not absent.
        self.abbreviated = abbreviations(document_text)  # place → the compounds naming it
        self.initials = initials(document_text)  # 广 of 广安: in 广深 it stands for 广安
        self._elsewhere = frozenset(p for p in places if normalize(p) not in self.document
                                    and p not in self.abbreviated)
        self._longest_first = sorted(self._elsewhere | self._places, key=len, reverse=True)

    def judge(self, question: str, result: SearchResult, lexical_matches: int) -> Answerability:
        """Document-level checks before any evidence is chosen (no model involved)."""
        q = unicodedata.normalize("NFKC", question)
        if result.lookup is not None:
            if result.lookup.found:
                return ANSWERABLE
            what = "条" if result.lookup.kind == "clause" else "章"
            return Answerability(False, f"文件中没有您所问编号的{what}", "编号")
        for year in _YEAR_RE.findall(q):
            if year not in self.document:
                return Answerability(False, "文件没有提到所问年份的情况", year)
        for zone in _zones(q):
            names = [zone[-n:] + "经济区" for n in (2, 3, 4) if len(zone) >= n]
            if not any(normalize(name) in self.document for name in names):
                return Answerability(False, f"文件只涉及本经济区，没有“{zone[-2:]}经济区”的内容",
                                     zone[-2:])
            # Another zone's own policy (「川南经济区自己的振兴政策」「川南经济区的实施意见」) is
            # another document's, however this one names that zone (合作 with it).
            own_zone = any(normalize(name) in t for name in names for t in self.titles)
            if not own_zone and re.search(re.escape(zone) + r"经济区(?:(?:自己|自身|本身)的|的?"
                                          r"[\u4e00-\u9fff]{0,4}?(?:实施意见|指导意见|规划纲要))", q):
                return Answerability(False, f"文件是关于本经济区的，没有{zone[-2:]}经济区自己的政策",
                                     zone[-2:])
        for name in _TITLED_RE.findall(q):
            if not self._names_document(normalize(name)):
                return Answerability(False, f"文件没有涉及《{name}》，只能依据本文件回答", name)
        if lexical_matches == 0:
            # Not one content word of the question occurs in the document: chit-chat or off-topic.
            return Answerability(False, "问题与文件内容无关", "相关内容")
        absent = [p for p in self._elsewhere if p in q
                  and not any(p in o and p != o for o in self._elsewhere | self._places if o in q)]
        if absent:  # a place the document never names (陕西汉中: the text has only 汉巴南)
            where = "、".join(sorted(absent, key=q.index))
            return Answerability(False, f"文件没有提到{where}", where)
        return ANSWERABLE

    def without_foreign_preamble(self, question: str) -> str:
        """The question without the statements it opens with about places the document never
        names: 「宜宾泸州有白酒基地，川东北这个文件里有白酒产业吗」 asks about 川东北; 宜宾 and 泸州
        are context. A statement has no asking word and says something beyond the places it
        names (「宜宾和泸州，有什么安排」 opens with no statement: those places are what it asks
        about); one about places the document names (「遇到暴雨洪水…」) is kept: it is the topic."""
        clauses = re.split(r"(?<=[，,。；;：:！!])", question)
        k = 0
        while k < len(clauses) - 1:
            clause = clauses[k]
            foreign = [p for p in self._elsewhere if p in clause]
            bare = clause
            for p in self._longest_first:
                bare = bare.replace(p, "")
            said = "".join(_HAN_RUN.findall(_FUNCTION_CHARS.sub("", bare)))
            if not foreign or _ASKING.search(clause) or len(said) < 3 or "比" in clause:
                # (「川东北和陕西汉中比，哪边…」 compares them: that is what it asks about)
                break
            k += 1
        return "".join(clauses[k:]) if k else question

    def covers(self, terms: list[str], clause_text: str) -> bool:
        """At least one of the question's terms (content words, places, numbers) is in the
        clause. Calibrated on eval/gold.jsonl: 18 of its 26 unanswerable questions share no term
        with any clause their best sentences come from; every answerable one that reaches this
        check shares at least one (tests/test_near_miss.py holds the near misses to it)."""
        text = normalize(clause_text)
        return not terms or any(normalize(t) in text for t in terms)

    def relevant(self, question: str, evidence: str, ignore: frozenset[str] | set[str],
                 words: list[str] | tuple[str, ...] = ()) -> bool:
        """Whether the evidence shares a word with the question beyond the places it names and
        the document's own title words (「今天南充天气怎么样」 shares only 南充 with the text).
        `words`: one-character words of the question that name a thing (港 of 广安港)."""
        q = arabic_numbers(unicodedata.normalize("NFKC", question))
        ev = normalize(evidence)
        if any(normalize(w) in ev for w in words):
            return True
        names = [p for p in self._places if p in q and normalize(p) in ev]
        for word in sorted(ignore | self._places, key=len, reverse=True):
            # 「苍溪县」: a place with its administrative suffix names only the place.
            q = re.sub(re.escape(word) + ("[省市县区镇乡]?" if word in self._places else ""), " ", q)
        q = _QUESTION_WORDS.sub(" ", q)
        grams = {q[i:i + 2] for i in range(len(q) - 1)
                 if _HAN2.fullmatch(q[i:i + 2]) or q[i:i + 2].isdigit()}
        if not grams or any(g in ev for g in grams):
            return True  # nothing is asked beyond the document's own subject, or it is found
        # A question about a named place the evidence names is about that place's part in the
        # text when what else it asks is something the document speaks of at all (「巴中的发展
        # 定位」 yes; 「南充今天天气」 no: the document never says 天气 or 今天).
        rest = _FUNCTION_CHARS.sub("", "".join(_HAN_RUN.findall(q)))
        # How two places stand to each other, asked of nothing else (「达州跟万州到底啥关系」), is
        # what a sentence naming the two together says of them (推动达州与万州协同发展); not a
        # sentence naming them apart, nor 「达州和万州的天气有什么关系」.
        if len(names) >= 2 and any(
                re.search(f"{re.escape(a)}{_RELATION_ASKED}{re.escape(b)}{_RELATION_ASKED_END}",
                          question)
                and re.search(f"{re.escape(a)}.{{0,3}}{re.escape(b)}|{re.escape(b)}.{{0,3}}"
                              f"{re.escape(a)}", ev)
                for a, b in permutations(names, 2)):
            return True
        return bool(names) and (len(rest) <= 2 or any(g in self.document for g in grams))

    def without_own_titles(self, question: str) -> str:
        """The question without the documents' own titles in 《》 (「《…实施意见》里机场怎么安排」
        searches 机场, not the words of the title that every clause shares)."""
        return _TITLED_RE.sub(lambda m: "文件" if self._names_document(normalize(m.group(1)))
                              else m.group(0), question)

    def _names_document(self, name: str) -> bool:
        """《name》 is one of the documents (or an abbreviation of its title: 《实施意见》,
        《川东北经济区振兴发展实施意见》: most of its character pairs are in the title), or a
        document the text itself cites."""
        if name in self.document:
            return True
        pairs = {name[i:i + 2] for i in range(len(name) - 1)}
        # A title of the same pattern about another zone or place is another document
        # (《关于加快推进成都平原经济区一体化发展的实施意见》 shares most pairs with this one's).
        names = [*_zones(name), *(p for p in self._places | self._elsewhere if p in name)]
        return any(name in t or pairs and 2 * sum(p in t for p in pairs) >= len(pairs)
                   and all(normalize(n) in t for n in names)
                   for t in self.titles)

    def check_evidence(self, question: str, evidence: str, context: str = "",
                       terms: list[str] | tuple[str, ...] = ()) -> Answerability:
        """Whether `evidence` (the sentences a part rests on) holds what `question` asks.

        `context` is the text of the clauses those sentences come from: a place or zone the
        question names may sit in a neighbouring sentence of the same clause.
        """
        q = unicodedata.normalize("NFKC", question)
        ev = normalize(evidence)
        around = normalize(context) or ev
        for year in _YEAR_RE.findall(q):
            if year not in ev:
                return Answerability(False, "文件没有给出所问年份的相关内容", year)
        for zone in _zones(q):
            # The zone a document is about (its title's) is the subject of every clause, named
            # or not: 「川东北经济区联席会议议定的事项…」 is answered by 28, which says 联席会议.
            if any(normalize(zone[-n:] + "经济区") in t for t in self.titles for n in (2, 3, 4)
                   if len(zone) >= n):
                continue
            if not any(normalize(zone[-n:] + "经济区") in around for n in (2, 3, 4)
                       if len(zone) >= n):
                return Answerability(False, f"文件没有写{zone[-2:]}经济区的这方面内容", zone)
        named = places_in(q, self._places)
        # A place is named by a two-place compound too, which speaks of the pair (四川 and 重庆:
        # 川渝共建); a longer one names a region or route spanning several (川渝陕甘结合部, 渝新欧).
        if named and any(p in self.abbreviated for p in named):
            runs = abbreviations(evidence, self.initials)  # in the sentence, not its neighbours
        joined = _initial_runs(named, ev)
        absent = [p for p in named if normalize(p) not in around and p not in joined
                  and not any(len(c) == 2 for c in (runs.get(p, ()) if p in self.abbreviated
                                                     else ()))]
        if absent:
            where = "、".join(sorted(absent, key=q.index))
            return Answerability(False, f"文件没有写{where}的这方面内容", where)
        outside_routes = _ROUTE_RE.sub("", ev)
        in_routes = [p for p in named if normalize(p) in ev and normalize(p) not in outside_routes]
        # A question on everything the text says of a place (「…涉及哪些内容」) is answered by
        # the routes through it too.
        if in_routes and not _ROUTE_ASK.search(q) and not asks_overview(q):
            where = "、".join(sorted(in_routes, key=q.index))
            return Answerability(False, f"文件只在交通线路名称中提到{where}", where)
        for m in _WHICH_RE.finditer(q):
            kind = m.group(1)
            if kind in _KIND_WORDS:  # in a phrase that says what the question asks of it
                found = any(said_of(w.group(0), q, ev, (w.group(0), kind), KIND_SHARE)
                            for w in re.finditer(_KIND_WORDS[kind], ev))
            elif kind in _TOWNSHIP_KINDS:  # below the gazetteer's counties: a name of that level
                found = any(m.group(0)[-2:] not in _GENERIC_TOWNSHIP
                            for m in _TOWNSHIP_RE.finditer(ev))
            else:  # a place: one the evidence names beyond those the question names, in
                # what it says of the question's subject (「中法农业科技园建在哪个县」 is not
                # answered by 南充 of the next phrase, 「推动南充建设…」); 「哪个县」 by a county
                # (or a name ending in 县), not by a city
                found = any(p not in named and said_of(p, q, ev, (), KIND_SHARE)
                            and (kind != "县" or not self.counties or p in self.counties
                                 or re.search(re.escape(p) + "县", ev))
                            for p in places_in(ev, self._places))
                # 「哪些地方」 is answered by a kind of place too (城镇热点公共区域, 景区), not
                # 「和哪些地方一体化」: places to go with or to are named.
                preceding = q[m.start() - 1] if m.start() else ""
                found = found or kind == "地方" and preceding not in set("和与同跟向到去从") and any(
                    said_of(w.group(0), q, ev, (w.group(0), kind), KIND_SHARE)
                    for w in re.finditer(_LOCATION_WORDS, ev))
            # ... and it must be a thing of that kind for what the question asks about (a
            # sentence on 「僵尸企业」 does not say which company builds a data centre).
            if not found or not self._about(q, ev, terms, _WHICH_RE):
                return Answerability(False, f"文件没有写明是{m.group(0)}", kind)
        # 「开通哪些航线」 asks for the things by name: evidence that has the kind only after a
        # quantity that names none (开通更多航线, 创建一批…示范县) does not give them.
        if vague := [n for n in self.which(q) if self.names_none(n, evidence)]:
            return Answerability(False, f"文件没有列出具体的{vague[0]}", vague[0])
        asked = asking(q)
        for name, asks, holds in ASKS:
            if asks.search(asked):
                # 「完成时间、责任人，文件要求写明吗」 is answered by the text requiring them
                # stated (明确时间表、…责任人), not by a date it does not give.
                if STATES_RE.search(q) and _REQUIRES_STATED.search(ev):
                    break
                if not holds.search(unicodedata.normalize("NFKC", evidence)) and not (
                        name == "会议或工作频次" and _periodic(evidence, terms)):
                    return Answerability(False, f"文件没有给出{name}", name)
                if name in MEASURED and not self._about(q, ev, terms, asks):
                    return Answerability(False, f"文件没有给出{name}", name)
                # 「申请设立综合保税区要走哪些审批流程」 asks the steps themselves: a text that
                # only says the thing is applied for (协同申请设立) gives none (not when it is
                # asked what the text says of applying: 「申请程序，文件里是怎么说的」).
                if (name == "办理手续" and _STEPS_ASKED.search(asked) and not _SAYS_ASKED.search(q)
                        and not _STEPS.search(ev)):
                    return Answerability(False, "文件没有给出具体的办理流程", "办理流程")
                if name == "具体金额" and _FUNDS_ASKED.search(q) and not _FUNDS.search(ev):
                    return Answerability(False, "文件没有给出资金数额", "资金数额")
                # 「人均地区生产总值要达到多少」 is not answered by the total: a measure qualified
                # per head, per year or as a share needs that qualifier in the evidence.
                if name in QUANTITIES and (other := [m for m in _MEASURE_OF.findall(q)
                                                     if m not in ev]):
                    return Answerability(False, f"文件没有给出{other[0]}的数据", other[0])
                # 「一共有多少个贫困县要摘帽」: a count of a thing the evidence names needs a
                # number before it or a list of them (「贫困县全部摘帽」 gives neither).
                if name == "具体数量" and (m := _COUNT_OF.search(q)) and not _counted(m.group(1), ev):
                    return Answerability(False, f"文件没有给出{m.group(1)}的数量", "数量")
                # 「5市各自的目标分别是多少」 asks for a figure per member: one figure for the
                # whole region does not give them.
                # (Not a count: 「几大产业分别是什么」 is answered by naming them.)
                if (name in QUANTITIES and name != "具体数量" and _EACH.search(q)
                        and len(set(_FIGURE.findall(arabic_numbers(ev)))) < 2):
                    return Answerability(False, f"文件没有分别给出{name[2:]}", "分别的数据")
                # A figure actually reached is not a target: a policy text sets targets
                # (力争突破9000亿元), so 「实际完成多少」 needs the evidence to report an outcome.
                if (name in QUANTITIES and _ACTUAL.search(q) and not _TARGET.search(q)
                        and not _OUTCOME.search(ev)):
                    return Answerability(False, "文件只提出目标，没有给出实际完成的数据", "实际数据")
                break
        return ANSWERABLE

    @staticmethod
    def which(question: str) -> list[str]:
        """The kinds of thing a which-question asks to have named (「开通哪些航线」 → 航线)."""
        q = unicodedata.normalize("NFKC", question)
        return [m.group(1) for m in _WHICH_NOUN_RE.finditer(q)]

    @staticmethod
    def names_none(noun: str, evidence: str) -> bool:
        """`evidence` has the kind `noun` only after a quantity naming none of them (开通更多航线,
        创建一批…示范县; not 「光雾山、巴山大峡谷等一批…景区」)."""
        ev = normalize(evidence)
        at = [k.start() for k in re.finditer(re.escape(normalize(noun)), ev)]
        return bool(at) and all(_VAGUE_RE.search(ev[max(0, k - 16):k]) for k in at)

    @staticmethod
    def _about(question: str, evidence: str, terms: list[str] | tuple[str, ...],
               asks: re.Pattern) -> bool:
        """What is measured (dated, named) must be in the evidence too: a quarter of the
        character pairs of the question's words (pairs, since 川东北地区 may be cut as 北地 +
        东北地区). The asking words themselves (啥时候, 哪家企业, 哪几个) are not looked for."""
        said = [normalize(arabic_numbers(t)) for t in terms
                if not _YEAR_RE.fullmatch(t) and not asks.search(t) and not _ASKING.search(t)]
        grams = {t[i:i + 2] for t in said for i in range(len(t) - 1)}
        return not grams or 4 * sum(g in evidence for g in grams) >= len(grams)
