"""Knowledge: documents split into fragments, embedded off the request path, retrieved per turn.

Modules: ``chunking`` (splitting text), ``documents`` (add/replace/get/list/delete),
``importer`` (bulk import of a folder), ``character`` (a character's ``knowledge`` entries),
``provider`` (the KNOWLEDGE provider and ``knowledge_plugin``). Storage is
``core.db.postgres.knowledge``.

Settings, read with ``runtime.get_setting`` (character secrets, character settings, runtime
settings, environment), units in the names:

| setting | default | meaning |
|---|---|---|
| ``KNOWLEDGE_CHUNK_CHARS`` | ``400`` | longest fragment, characters (~90 tokens of English) |
| ``KNOWLEDGE_CHUNK_OVERLAP_CHARS`` | ``80`` | characters a fragment repeats from the end of the one |
| | | before (whole sentences when they fit); at most half a fragment |
| ``KNOWLEDGE_MATCH_THRESHOLD`` | ``0.25`` | least cosine similarity (-1 to 1) of a fragment put in the prompt |
| ``KNOWLEDGE_MATCH_COUNT`` | ``5`` | most fragments put in the prompt (1 to 50) |
| ``KNOWLEDGE_MAX_DOCUMENT_BYTES`` | ``2097152`` | largest document, bytes of UTF-8 (2 MiB); larger ones |
| | | are refused (HTTP 413, or "rejected" by an import) |
| ``KNOWLEDGE_PATH`` | current directory | folder that a character's relative ``knowledge`` paths |
| | | are resolved against |

Defaults measured with the default embedding model (all-MiniLM-L6-v2) through the KNOWLEDGE
provider (``tests/core/knowledge/test_retrieval_quality.py``): 12 questions whose answer is in
one place, over a design document and two real corpus files. With an earlier design document
(no longer in the repo) the answering fragment came first for 10/12 questions with
400-character fragments, against 8/12 with 300, 5/12 with 500, 6/12 with 600 and 5/12 with
800. With ``docs/architecture.md``, which the test reads now: 7/12 with 300, 8/12 with 400,
7/12 with 500, 9/12 with 600 and 9/12 with 800. The answer was among the 5 retrieved for 11
or 12 of 12 at every size on the earlier document; on ``docs/architecture.md`` for 12/12 with
400 and 600, 11/12 with the others. 400 is kept (the model was trained on sentence-length
text, and long fragments dilute it), but 12 questions are too few to rank the sizes with
confidence, and an edit of the document moves these counts by one or two. Answering
fragments scored 0.36 to 0.83 with 400 characters (character knowledge: 0.50 to 0.83); the
best fragment for small talk ("hello, how are you?", "tell me a joke") scored at most 0.22 on
both documents, hence the 0.25 threshold. Another embedding model may want other values.

Characters (not tokens) are the unit of splitting: counting tokens needs the embedding
model's tokenizer, which the Lambda package does not ship, and the split must not change
when the embedding provider does (that would re-split and re-embed every document).

Shared knowledge is owned by ``SHARED_KNOWLEDGE_ID``: one well-known owner row per
deployment (database), a disabled agent named ``SHARED_KNOWLEDGE_NAME``. A shared document
is stored and embedded once, whichever agent added it, and every query still names the
``agent_id`` values it reads (the agent's own and this one). Copying shared documents to every
agent was the alternative: it multiplies storage and embedding calls by the number of agents,
needs every agent to be known when the document is added, and leaves copies to reconcile
when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from core.errors import ConfigurationError
from core.uuid import string_to_uuid

#: Owner of the deployment's shared knowledge (an agents row created on first use, disabled).
SHARED_KNOWLEDGE_ID: UUID = string_to_uuid("elizaos:knowledge:shared")
SHARED_KNOWLEDGE_NAME = "__shared_knowledge__"
#: elizaOS plugin-knowledge's table names (``memories.type``).
DOCUMENTS_TABLE = "documents"
FRAGMENTS_TABLE = "knowledge"

DEFAULT_CHUNK_CHARS = 400
DEFAULT_OVERLAP_CHARS = 80
DEFAULT_MATCH_THRESHOLD = 0.25
DEFAULT_MATCH_COUNT = 5
DEFAULT_MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: Bounds that keep a setting from making a turn or an import absurd.
MIN_CHUNK_CHARS = 50
MAX_MATCH_COUNT = 50


class SettingsSource(Protocol):
    def get_setting(self, key: str) -> Any: ...


@dataclass(frozen=True)
class KnowledgeSettings:
    """The knowledge settings of one agent (see the module docstring).

    Attributes:
        chunk_chars: Longest fragment, characters.
        overlap_chars: Overlap between consecutive fragments, characters.
        match_threshold: Least cosine similarity of a retrieved fragment.
        match_count: Most fragments retrieved.
        max_document_bytes: Largest document, bytes of UTF-8.
    """

    chunk_chars: int = DEFAULT_CHUNK_CHARS
    overlap_chars: int = DEFAULT_OVERLAP_CHARS
    match_threshold: float = DEFAULT_MATCH_THRESHOLD
    match_count: int = DEFAULT_MATCH_COUNT
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES

    def __post_init__(self) -> None:
        if self.chunk_chars < MIN_CHUNK_CHARS:
            raise ConfigurationError(f"KNOWLEDGE_CHUNK_CHARS must be at least {MIN_CHUNK_CHARS}")
        if not 0 <= self.overlap_chars <= self.chunk_chars // 2:
            raise ConfigurationError("KNOWLEDGE_CHUNK_OVERLAP_CHARS must be from 0 to half of KNOWLEDGE_CHUNK_CHARS")
        if not -1.0 <= self.match_threshold <= 1.0:
            raise ConfigurationError("KNOWLEDGE_MATCH_THRESHOLD must be from -1 to 1")
        if not 1 <= self.match_count <= MAX_MATCH_COUNT:
            raise ConfigurationError(f"KNOWLEDGE_MATCH_COUNT must be from 1 to {MAX_MATCH_COUNT}")
        if self.max_document_bytes < 1:
            raise ConfigurationError("KNOWLEDGE_MAX_DOCUMENT_BYTES must be positive")

    @classmethod
    def from_runtime(cls, runtime: SettingsSource) -> KnowledgeSettings:
        """The settings as ``runtime.get_setting`` sees them, defaults for unset ones.

        Raises:
            ConfigurationError: a setting is not a number or is out of range.
        """
        return cls(
            chunk_chars=_number(runtime, "KNOWLEDGE_CHUNK_CHARS", DEFAULT_CHUNK_CHARS, int),
            overlap_chars=_number(runtime, "KNOWLEDGE_CHUNK_OVERLAP_CHARS", DEFAULT_OVERLAP_CHARS, int),
            match_threshold=_number(runtime, "KNOWLEDGE_MATCH_THRESHOLD", DEFAULT_MATCH_THRESHOLD, float),
            match_count=_number(runtime, "KNOWLEDGE_MATCH_COUNT", DEFAULT_MATCH_COUNT, int),
            max_document_bytes=_number(runtime, "KNOWLEDGE_MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES, int),
        )


def _number(runtime: SettingsSource, key: str, default: float, kind: type) -> Any:
    value = runtime.get_setting(key)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a{'n integer' if kind is int else ' number'}, got {value!r}") from None


def owner_ids(agent_id: UUID) -> list[UUID]:
    """The owners whose knowledge ``agent_id`` sees: its own, then the shared owner's."""
    return [agent_id, SHARED_KNOWLEDGE_ID]
