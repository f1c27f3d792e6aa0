"""Retrieval: lookup parsing, fusion, query rewriting (fast tier) and the real embedder (real tier)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from assistant.config import Settings
from assistant.corpus import load_corpus
from assistant.index import build_index
from assistant.lexical import Glossary, Speller, Tokenizer
from assistant.retrieval import Retriever, parse_lookup, rrf, zscore_fusion


@pytest.mark.parametrize("question,expected", [
    ("第十二条", ("clause", 12)),
    ("第十二条讲什么", ("clause", 12)),
    ("（十二）讲什么", ("clause", 12)),
    ("(三)是什么内容", ("clause", 3)),
    ("二十八条", ("clause", 28)),
    ("28条讲的啥", ("clause", 28)),
    ("第 5 条", ("clause", 5)),
    ("第三章有哪些措施", ("chapter", 3)),
    ("第九部分讲什么", ("chapter", 9)),
    ("南充的城市定位是什么", None),
    ("要推动几条蜀道申遗", None),
    ("三条发展带分别是", None),
])
def test_parse_lookup(question, expected):
    assert parse_lookup(question) == expected


def test_rrf_prefers_agreement():
    fused = rrf([(["a", "b", "c"], 1.0), (["b", "a", "c"], 1.0)], k=60)
    assert fused["a"] == fused["b"] > fused["c"]


def test_zscore_fusion_keeps_confidence():
    # bm25 is very sure of "x"; dense slightly prefers "y": the confident signal wins.
    fused = zscore_fusion([({"x": 0.80, "y": 0.82, "z": 0.79}, 1.0), ({"x": 12.0, "y": 1.0}, 1.0)])
    assert max(fused, key=fused.get) == "x"
    assert zscore_fusion([({}, 1.0)]) == {}


@pytest.fixture(scope="module")
def docs():
    return load_corpus(ROOT / "index" / "source")


@pytest.mark.parametrize("typo,fixed", [
    ("南冲的城市定位是什么", "南充的城市定位是什么"),
    ("达洲机场迁建", "达州机场迁建"),
    ("家陵江航电枢纽", "嘉陵江航电枢纽"),
    ("有几个经开区要争取升国家级", "有几个经开区要争取升国家级"),  # 有|几个 is not 有机
    ("几级以上的医疗机构检验结果互认", "几级以上的医疗机构检验结果互认"),
    ("在新兴产业上又要建哪些基地", "在新兴产业上又要建哪些基地"),  # 上|又 is not 上游
])
def test_speller(docs, typo, fixed):
    assert Speller(docs).correct(typo) == fixed


def test_glossary_expands_english_and_everyday_words():
    g = Glossary.bundled()
    assert "地区生产总值" in g.expand("川东北 GDP 目标")
    assert "大数据" in g.expand("big data 有啥规划")
    assert "新能源汽车" in g.expand("EV产业基地")
    assert g.expand("南充的城市定位") == "南充的城市定位"
    assert "人工智能" not in g.expand("maintain")  # whole words only
    assert "社会保险" in g.expand("社保能异地办吗")
    assert "学前教育" in g.expand("上幼儿园难不难")
    assert g.expand("社会保险异地协同经办") == "社会保险异地协同经办"  # 保险 is no entry
    assert "白酒产业" in g.expand("酿酒这块有啥打算")
    assert "村级医疗卫生" in g.expand("村医留不住怎么办")


def test_an_english_key_typed_with_two_letters_swapped_is_read_as_the_key():
    g = Glossary.bundled()
    assert "地区生产总值" in g.expand("川东北的GPD目标是多少")
    assert "地区生产总值" in g.expand("gpd 目标")
    # Near misses: a word that is a key itself, one letter wrong (no swap), or too short.
    assert g.expand("PDG是什么") == "PDG是什么"
    assert g.expand("GXP目标") == "GXP目标"
    assert "地区生产总值" not in g.expand("DG目标")


def test_a_word_the_document_uses_is_searched_as_it_is(docs):
    g = Glossary.bundled().without_words_in("".join(d.text for d in docs))
    assert g.expand("民宿相关内容在第几条") == "民宿相关内容在第几条"  # the text says 巴山民宿
    assert "社会保险" in g.expand("社保能异地办吗")  # the text never says 社保
    assert "地区生产总值" in g.expand("GDP 目标")  # English is always translated
    # a policy term the text never uses is not searched: it adds only 城市 and 交通
    assert g.expand("地铁有哪些安排") == "地铁有哪些安排"


def test_tokenizers(docs):
    jieba_tok = Tokenizer.for_documents("jieba", docs)
    assert "宽带中国" in jieba_tok.terms
    toks = jieba_tok("川东北的宽带中国战略是什么？")
    assert "宽带中国" in toks and "的" not in toks and "？" not in toks
    assert Tokenizer("bigram")("天然气开发") == ["天然", "然气", "气开", "开发"]


@pytest.fixture
def fake_retriever(settings, fake_embedder):
    return Retriever(build_index(settings, fake_embedder), fake_embedder, settings)


def test_direct_lookup_puts_named_clauses_first(fake_retriever):
    res = fake_retriever.search("第十二条讲什么", k=5)
    assert res.hits[0].clause.id == "12" and res.hits[0].sources == ("lookup",)
    assert res.lookup.kind == "clause" and res.lookup.found
    res = fake_retriever.search("第三章有哪些措施", k=3)
    assert [h.clause.id for h in res.hits[:4]] == ["5", "6", "7", "8"]


def test_lookup_of_missing_clause(fake_retriever):
    res = fake_retriever.search("第四十条讲什么", k=3)
    assert res.lookup is not None and not res.lookup.found
    assert all("lookup" not in h.sources for h in res.hits)


@pytest.mark.parametrize("mode", ["dense", "bm25", "fused"])
def test_modes_return_k_distinct_clauses(fake_retriever, mode):
    res = fake_retriever.search("天然气勘探开发", k=5, mode=mode, use_lookup=False)
    ids = [h.clause.id for h in res.hits]
    assert len(ids) == len(set(ids)) == 5
    assert all(0.0 <= h.score <= 1.0 for h in res.hits)
    assert set(res.timings_ms) >= {"total"}


def test_bm25_finds_exact_terms(fake_retriever):
    assert fake_retriever.search("升钟水库灌区", k=1, mode="bm25").hits[0].clause.id == "3"


# ---------------------------------------------------------------- real embedder


@pytest.fixture(scope="module")
def real_retriever(tmp_path_factory, real_embedder):
    settings = Settings(source_dir=ROOT / "index" / "source",
                        index_dir=tmp_path_factory.mktemp("real") / "index")
    return Retriever(build_index(settings, real_embedder), real_embedder, settings)


@pytest.mark.real
@pytest.mark.parametrize("question,clause_id", [
    ("到2022年川东北地区生产总值要达到多少", "一-2"),
    ("哪一条讲医疗卫生", "20"),
    ("大熊猫国家公园", "16"),
    ("南冲机场要开通更多航线吗", "23"),
    ("升钟水库灌区二期", "3"),
    ("教育方面有什么打算", "19"),
])
def test_real_retrieval_top1(real_retriever, question, clause_id):
    assert real_retriever.search(question, k=3).hits[0].clause.id == clause_id


@pytest.mark.real
def test_real_gold_set_meets_targets(real_retriever):
    from assistant.evaluation import evaluate_retrieval
    from assistant.gold import load_gold

    metrics, _ = evaluate_retrieval(load_gold(ROOT / "eval" / "gold.jsonl"), real_retriever)
    ab = metrics["ablation"]
    fused = ab["fused+lookup"]["overall"]
    assert fused["hit@1"] >= 0.95 and fused["hit@3"] >= 0.99
    assert fused["hit@1"] > ab["dense"]["overall"]["hit@1"]
    assert fused["hit@1"] > ab["bm25"]["overall"]["hit@1"]


def test_places_named_by_abbreviation_are_found_in_their_compounds():
    from assistant.lexical import abbreviations

    text = "加强川陕甘结合部合作，建设中法农业科技园，开通“渝新欧”班列。四川日报报道。"
    found = abbreviations(text)
    assert found["陕西"] == ["川陕甘"] and found["甘肃"] == ["川陕甘"]
    assert found["法国"] == ["中法"] and found["欧洲"] == ["渝新欧"]
    assert found["重庆"] == ["渝新欧"] and found["新疆"] == ["渝新欧"]
    assert "日本" not in found  # 「四川日报」: 川日 overlaps the full name 四川
    assert "贵州" not in found and "中国" not in found


def test_a_city_initial_next_to_an_abbreviation_stands_for_a_place_named_in_full():
    from assistant.lexical import abbreviations

    text = "加快广安示范区建设。深化广深合作，推进广深产业园建设。承接成渝地区产业转移，去成都、重庆。"
    found = abbreviations(text)
    assert found["深圳"] == ["广深"]  # 广 of 广安, named in full
    assert "重庆" not in found  # 成渝: 重庆 is named in full
    # Near misses: no initial of a place the text names; a full name; no abbreviation at all.
    assert "深圳" not in abbreviations("深化广深合作。")
    assert "北京" not in abbreviations("去南京和成都。") and "南京" not in abbreviations("去南京和成都。")
    assert abbreviations("广安、南充、成都的平台。") == {}
    # a region named by abbreviations only is a compound of them, not a full name
    region = abbreviations("对接京津冀、长三角、粤港澳大湾区。")
    assert region["广东"] == ["粤港澳"] and region["北京"] == ["京津冀"]


def test_the_glossary_searches_a_place_with_the_compounds_naming_it():
    from assistant.lexical import Glossary

    text = "深化川渝合作。加强与重庆长江上游航运中心合作。"
    g = Glossary({}).with_abbreviations(text)
    assert g.expand("和重庆的合作有哪些") == "和重庆的合作有哪些（川渝）"  # also named in full
    assert g.expand("贵州有什么安排") == "贵州有什么安排"


def test_two_places_named_together_are_searched_by_the_compound_naming_both():
    from assistant.lexical import Glossary

    text = "推动川渝共建产业园区。建设川陕甘结合部区域中心城市。对接渝新欧国际联运大通道。"
    g = Glossary({}).with_abbreviations(text)
    assert g.expand("四川和重庆会一起建工业园吗") == "四川和重庆会一起建工业园吗（川渝）"
    # one place alone keeps every compound naming it
    assert g.expand("重庆有什么合作") == "重庆有什么合作（川渝 渝新欧）"
