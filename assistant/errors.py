"""Domain errors. Each message says what went wrong and how to fix it (Chinese, shown to users)."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class for every error this package raises on purpose."""


class CorpusFormatError(AssistantError):
    """The source text has no recognisable 一、/（一） structure, is empty or is not UTF-8."""


class IndexMissingError(AssistantError):
    """No index on disk."""


class IndexStaleError(AssistantError):
    """The index was built from another document, embedder or chunker version."""


class IndexCorruptError(AssistantError):
    """An index file is missing, truncated or unreadable."""


class EmbedderError(AssistantError):
    """The configured embedding backend cannot be loaded."""


class MissingDependencyError(AssistantError):
    """An optional dependency is not installed; the message names the extra."""


class GoldFormatError(AssistantError):
    """A gold-set file line is not in the expected format."""


class QuestionError(AssistantError):
    """The user's question cannot be processed (empty, too long, wrong type)."""


class ModelFileError(AssistantError):
    """A bundled model part is missing, or the assembled model file fails its checksum."""


class GeneratorError(AssistantError):
    """The configured LLM backend cannot be loaded, reached, or fails while generating."""


class ServiceNotReadyError(AssistantError):
    """A model the request needs is still loading; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 10):
        super().__init__(message)
        self.retry_after = retry_after


class BusyError(ServiceNotReadyError):
    """Every answer slot is taken (one answer generating, the bounded queue full): 503 + Retry-After."""

    def __init__(self, message: str = "当前咨询人数较多，请稍后再试。", retry_after: int = 5):
        super().__init__(message, retry_after)


class FeedbackError(AssistantError):
    """A feedback item is malformed, or the feedback database cannot be written."""


class FeedbackBusyError(FeedbackError):
    """Another connection held the database's write lock for the whole busy timeout: retry soon."""

    retry_after = 2


class FeedbackStorageError(FeedbackError):
    """The database cannot be opened or written: read-only or full disk, unwritable data dir."""


# What users see instead of errors whose text is for operators (file paths, server addresses,
# upstream replies that may echo the prompt); the full text goes to the service log.
_PUBLIC = (
    ((GeneratorError, ModelFileError), "语言模型暂时无法作答，请稍后重试（原因已记入服务日志）。"),
    (FeedbackStorageError, "反馈暂时无法保存，请稍后重试（原因已记入服务日志）。"),
)


def public_message(exc: AssistantError) -> str:
    """The message for a user or API client: operator-only details replaced by a safe text."""
    return next((text for kinds, text in _PUBLIC if isinstance(exc, kinds)), str(exc))
