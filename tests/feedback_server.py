"""The real HTTP app on fake parts, served until killed: the subject of the SIGKILL test.

    python tests/feedback_server.py PORT WORK_DIR

WORK_DIR gets a copy of the corpus, and the feedback database at WORK_DIR/data/feedback.sqlite3.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import ScriptedGenerator, fake_parts

REPLY = "到2022年,川东北经济区地区生产总值力争突破9000亿元【一-2】。"


def main(argv: list[str]) -> None:
    import uvicorn

    from assistant.api import create_app
    from assistant.pipeline import Pipeline
    from assistant.service import Service

    port, work = int(argv[1]), Path(argv[2])
    settings, _, retriever = fake_parts(work)
    service = Service(settings, pipeline=Pipeline(settings, retriever, ScriptedGenerator(REPLY)),
                      ready=True)
    uvicorn.run(create_app(service, ui=False), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv)
