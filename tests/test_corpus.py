"""The parser: exact offsets, ids, labels, boilerplate and duplicate removal, clear errors."""

from __future__ import annotations

import pytest
from conftest import DATA, SOURCE

from assistant.corpus import cn_to_int, int_to_cn, load_corpus, load_document, parse_document
from assistant.errors import CorpusFormatError

DOC = load_document(SOURCE)
BOILERPLATE = ["责任编辑", "扫一扫", "主办单位", "运行维护单位", "微信", "微博", "客户端", "头条号",
               "手机版", "电脑版", "Baidu", "来源", "字体", "08时40分"]
EXPECTED_IDS = ["一-1", "一-2"] + [str(n) for n in range(1, 29)]


def test_thirty_clauses_with_stable_ids():
    assert [c.id for c in DOC.clauses] == EXPECTED_IDS


def test_metadata():
    assert DOC.title == "《关于加快推进川东北经济区振兴发展的实施意见》主要内容"
    assert (DOC.source, DOC.date) == ("四川日报", "2019-01-02")
    assert len(DOC.sha256) == 64


@pytest.mark.parametrize("clause", DOC.clauses, ids=lambda c: c.id)
def test_offsets_reproduce_clause(clause):
    assert DOC.text[clause.start:clause.end] == clause.text
    assert clause.text == clause.text.strip()


@pytest.mark.parametrize("clause", DOC.clauses, ids=lambda c: c.id)
def test_no_boilerplate_in_clause(clause):
    for junk in BOILERPLATE:
        assert junk not in clause.text
    assert "•" not in clause.text


def test_no_duplicate_clauses_and_only_first_copy():
    texts = [c.text for c in DOC.clauses]
    assert len(set(texts)) == len(texts)
    assert DOC.clauses[-1].end < DOC.text.index("责任编辑")


def test_labels_chapters_titles():
    c3 = DOC.clause("3")
    assert c3.label == "第（三）条"
    assert c3.chapter == "二、推进基础设施互联互通"
    assert c3.title == "加快推进水利工程建设"
    assert DOC.clause("28").label == "第（二十八）条"
    assert DOC.clause("一-1").label == "一、总体要求 第1段"
    assert DOC.clause("一-2").text.startswith("到2022年")
    assert [ch.num for ch in DOC.chapters] == list(range(1, 10))
    assert DOC.chapters[8].clause_ids == ("25", "26", "27", "28")


def test_inline_parentheses_are_not_measures():
    # "(社区)" and "(B型)" sit inside clause text and must not start new clauses.
    assert "(社区)" in DOC.clause("20").text
    assert "(B型)" in DOC.clause("23").text


def test_duplicate_copy_detected_without_footer():
    # Drop the 责任编辑 / 扫一扫 lines so only content-based detection can stop the second copy.
    text = "\n".join(line for line in DOC.text.splitlines()
                     if "责任编辑" not in line and "扫一扫" not in line)
    doc = parse_document(text, "dup")
    assert [c.id for c in doc.clauses] == EXPECTED_IDS
    assert all(doc.text[c.start:c.end] == c.text for c in doc.clauses)


def test_fullwidth_brackets_and_second_document():
    doc = load_document(DATA / "second_policy.txt")
    assert doc.title == "关于支持县域商业体系建设的若干措施"
    assert (doc.source, doc.date) == ("示例日报", "2021-06-15")
    assert [c.id for c in doc.clauses] == ["一-1", "1", "2", "3", "4"]
    assert doc.clause("2").label == "第（二）条"
    # The unnumbered continuation line belongs to measure (二).
    assert doc.clause("2").text.endswith("冷链设施。")
    assert doc.clause("3").chapter == "三、保障措施"
    for c in doc.clauses:
        assert doc.text[c.start:c.end] == c.text


def test_halfwidth_and_fullwidth_mixed():
    text = "标题\n\n一、任务\n\n（一）第一项措施的内容写在这里。\n\n(二)第二项措施的内容写在这里。\n"
    doc = parse_document(text)
    assert [c.id for c in doc.clauses] == ["1", "2"]


@pytest.mark.parametrize("text", ["", "   \n\n", "这是一段没有任何章节结构的普通文字，讲的是天气和心情。" * 5])
def test_unstructured_text_is_refused(text):
    with pytest.raises(CorpusFormatError):
        parse_document(text)


def test_wrong_encoding_is_refused(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes(DOC.text[:2000].encode("gbk", errors="ignore"))
    with pytest.raises(CorpusFormatError, match="UTF-8"):
        load_document(path)


def test_numbering_gap_is_refused():
    text = "标题\n一、任务\n(一)第一项措施的内容写在这里。\n(三)第三项措施的内容写在这里。\n"
    with pytest.raises(CorpusFormatError, match="不连续"):
        parse_document(text)


def test_several_documents_get_qualified_ids(tmp_path):
    for p in (SOURCE, DATA / "second_policy.txt"):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    docs = load_corpus(tmp_path)
    assert len(docs) == 2
    ids = [c.id for d in docs for c in d.clauses]
    assert len(ids) == len(set(ids)) == 35
    assert "second_policy:2" in ids and "000_b054fd59894d34d3:28" in ids
    assert all(c.doc_id == d.doc_id for d in docs for c in d.clauses)


def test_empty_source_dir_is_refused(tmp_path):
    with pytest.raises(CorpusFormatError):
        load_corpus(tmp_path)


@pytest.mark.parametrize("n", [1, 9, 10, 11, 19, 20, 28, 99, 100, 101, 110, 999])
def test_chinese_numerals_round_trip(n):
    assert cn_to_int(int_to_cn(n)) == n
