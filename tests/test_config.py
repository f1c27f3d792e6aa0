"""Where the settings put things: the bundled document inside the package, the index, feedback
and model cache in per-user directories, all moved at once by ASSISTANT_HOME."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT
from platformdirs import user_cache_dir, user_data_dir

from assistant.config import APP_NAME, Settings, bundled_documents
from assistant.corpus import load_corpus

PACKAGE = ROOT / "assistant"
DIRS = ("ASSISTANT_HOME", "ASSISTANT_INDEX_DIR", "ASSISTANT_DATA_DIR", "ASSISTANT_CACHE_DIR")


@pytest.fixture
def clean_env(monkeypatch):
    """No directory variables at all (the autouse fixture sets them), as for a new user."""
    for name in DIRS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_per_user_directories_not_the_checkout(clean_env):
    s = Settings()
    assert s.index_dir == Path(user_data_dir(APP_NAME, appauthor=False)) / "index"
    assert s.data_dir == Path(user_data_dir(APP_NAME, appauthor=False)) / "data"
    assert s.cache_dir == Path(user_cache_dir(APP_NAME, appauthor=False))
    for path in (s.index_dir, s.data_dir, s.cache_dir):
        assert not path.is_relative_to(ROOT), path


def test_assistant_home_moves_index_feedback_and_model_cache(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "h"))
    s = Settings()
    assert (s.index_dir, s.data_dir, s.cache_dir) == (
        tmp_path / "h" / "index", tmp_path / "h" / "data", tmp_path / "h" / "cache")
    assert s.source_dir == bundled_documents()  # the document is not data the user owns


def test_one_directory_variable_still_wins_over_home(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "models"))
    s = Settings()
    assert s.cache_dir == tmp_path / "models" and s.index_dir == tmp_path / "h" / "index"
    assert Settings(index_dir=tmp_path / "i").index_dir == tmp_path / "i"


def test_default_source_is_the_bundled_document_inside_the_package(clean_env):
    source = Settings().source_dir
    assert source == PACKAGE / "documents"
    assert (ROOT / "index" / "source").resolve() == source.resolve()  # the repo's view of it
    [doc] = load_corpus(source)
    assert len(doc.clauses) == 30


def _package_data_patterns() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return pyproject["tool"]["setuptools"]["package-data"]["assistant"]


def test_every_data_file_the_package_reads_is_package_data():
    """A file under assistant/ that is not code must ship in the wheel (the wheel test builds
    one for real; this names the missing file at once)."""
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts]
    assert {"places.txt", "glossary_en_zh.tsv", "prompts/system.j2"} <= set(data)
    assert any(d.startswith("documents/") for d in data)
    patterns = _package_data_patterns()
    missing = [d for d in data if not any(fnmatch.fnmatch(d, pat) and d.count("/") == pat.count("/")
                                          for pat in patterns)]
    assert missing == []
