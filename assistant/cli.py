"""Command line: `assistant index build | search | eval`. Parses input, calls the library, prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config import Settings
from .errors import AssistantError


def cmd_index_build(args, settings: Settings) -> int:
    from .embedding import make_embedder
    from .index import build_index, save_index

    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    index = build_index(settings, embedder, progress=True)
    save_index(index, settings.index_dir)
    m = index.manifest
    print(f"索引已写入 {settings.index_dir}：{len(m['documents'])} 篇文档，{m['n_clauses']} 条，"
          f"{m['n_chunks']} 个向量块（{m['embedder']}，{m['index_kind']}）")
    return 0


def cmd_search(args, settings: Settings) -> int:
    from .answer import validate_question
    from .retrieval import load_retriever

    query = validate_question(args.query, settings.max_question_chars)  # before loading models
    retriever = load_retriever(settings, progress=True)
    result = retriever.search(query, k=args.k)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        for i, h in enumerate(result.hits, start=1):
            print(f"{i}. {h.clause.label}（{h.clause.chapter}）{h.clause.title}  [{h.score:.3f}]")
    return 0


def _top_k(text: str) -> int:
    """-k for `assistant search`: an integer from 1 to 30, with a message users can act on."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"K 必须是 1 到 30 之间的整数，收到 {text[:20]!r}。") from None
    if not 1 <= k <= 30:
        raise argparse.ArgumentTypeError(f"K 必须是 1 到 30 之间的整数，收到 {k}。")
    return k


def cmd_ask(args, settings: Settings) -> int:
    from .answer import Answer, validate_question
    from .pipeline import Pipeline

    validate_question(args.question, settings.max_question_chars)  # before loading models
    pipeline = Pipeline.from_settings(settings, progress=not args.json)
    pipeline.warm_up()
    answer = None
    for event in pipeline.stream(args.question, style=args.style):
        if isinstance(event, Answer):
            answer = event
        elif not args.json:
            print(event, end="", flush=True)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print()
    return 0


def cmd_eval(args, settings: Settings) -> int:
    from .evaluation import PRODUCT, run_eval
    from .gold import load_gold
    from .retrieval import load_retriever

    load_gold(Path(args.gold))  # fail fast on a bad gold file, before loading any model
    retriever = load_retriever(settings, progress=True)
    pipeline = baseline = None
    if not args.retrieval_only:
        from .pipeline import Pipeline
        from .scoring import NaiveBaseline

        pipeline = Pipeline.from_settings(settings, retriever=retriever)
        pipeline.warm_up()
        if args.baseline > 0:
            baseline = NaiveBaseline(retriever, pipeline.generator, settings.llm_max_tokens)
    metrics = run_eval(Path(args.gold), Path(args.out), retriever, pipeline, baseline,
                       args.baseline, progress=True)
    for name, m in metrics["ablation"].items():
        o = m["overall"]
        mark = " *" if name == PRODUCT else ""
        print(f"{name:14s} hit@1={o['hit@1']:.3f} hit@3={o['hit@3']:.3f} mrr={o['mrr']:.3f}{mark}")
    if pipeline is not None:
        m = metrics["pipeline"]
        print("回答：" + "  ".join(f"{k}={m[k]}" for k in (
            "key_phrase_recall", "citation_precision", "refusal_accuracy", "false_refusal_rate",
            "invented_numbers", "first_answer_text_ms_p50", "total_ms_p50")))
    print(f"报告已写入 {args.out}/report.md")
    return 0


def cmd_serve(args, settings: Settings) -> int:
    import uvicorn

    from .api import create_app
    from .service import Service

    logging.getLogger("assistant").setLevel(logging.INFO)  # one line per loading stage
    service = Service(settings)
    service.start()  # index and embedder now (errors print cleanly); the LLM warms up behind
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_feedback_export(args, settings: Settings) -> int:
    from .feedback import DB_NAME, FeedbackStore

    path = Path(settings.data_dir) / DB_NAME
    if not path.exists():
        raise AssistantError(f"还没有任何反馈（{path} 不存在）。")
    store = FeedbackStore(path)
    try:
        n = store.export_gold(Path(args.out))
    finally:
        store.close()
    print(f"已把 {n} 条“没帮助”的反馈导出到 {args.out}（评测集格式）。"
          "请人工核对 gold_clauses，并补全 must_include 与 answer 后再并入评测集。")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assistant", description="川东北经济区政策问答助手（本地运行）")
    sub = p.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="索引管理").add_subparsers(dest="index_command", required=True)
    build = idx.add_parser("build", help="解析原文、嵌入并写入索引")
    build.add_argument("--kind", choices=["flat", "hnsw", "ivf"], help="FAISS 索引类型")
    build.set_defaults(func=cmd_index_build)
    s = sub.add_parser("search", help="检索最相关的条款")
    s.add_argument("query")
    s.add_argument("-k", type=_top_k, default=5, metavar="K(1-30)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)
    a = sub.add_parser("ask", help="提问，回答逐句核验后流式输出")
    a.add_argument("question")
    a.add_argument("--style", choices=["public", "official"], default="public",
                   help="public：通俗简明；official：正式、写明条款与责任主体")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_ask)
    e = sub.add_parser("eval", help="在评测集上打分")
    e.add_argument("--gold", default="eval/gold.jsonl")
    e.add_argument("--out", default="eval/results/latest")
    e.add_argument("--retrieval-only", action="store_true")
    e.add_argument("--baseline", type=int, default=40, metavar="N",
                   help="也在 N 条分层抽样上运行朴素基线（0 = 不运行）")
    e.set_defaults(func=cmd_eval)
    sv = sub.add_parser("serve", help="启动网页与 HTTP API（同 python app.py）")
    sv.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    sv.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7860")))
    sv.set_defaults(func=cmd_serve)
    fb = sub.add_parser("feedback", help="用户反馈").add_subparsers(dest="feedback_command",
                                                                required=True)
    ex = fb.add_parser("export", help="把“没帮助”的反馈导出为评测集候选（JSONL）")
    ex.add_argument("--out", required=True, help="输出文件，格式同 eval/gold.jsonl")
    ex.set_defaults(func=cmd_feedback_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = {"index_kind": args.kind} if getattr(args, "kind", None) else {}
    try:
        settings = Settings(**overrides)
        return args.func(args, settings)
    except AssistantError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
