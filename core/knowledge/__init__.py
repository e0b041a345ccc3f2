"""Knowledge: documents split into fragments, embedded off the request path, retrieved per turn.

Modules: ``chunking`` (splitting text), ``documents`` (add/replace/get/list/delete),
``importer`` (bulk import of a folder), ``character`` (a character's ``knowledge`` entries),
``provider`` (the KNOWLEDGE provider and ``knowledge_plugin``). Storage is
``core.db.postgres.knowledge``.

Settings (``KNOWLEDGE_CHUNK_CHARS``, ``KNOWLEDGE_CHUNK_OVERLAP_CHARS``, ``KNOWLEDGE_MATCH_THRESHOLD``,
``KNOWLEDGE_MATCH_COUNT``, ``KNOWLEDGE_MAX_DOCUMENT_BYTES``, ``KNOWLEDGE_PATH``): their table and
bounds are in ``core.settings.knowledge``; ``KnowledgeSettings.from_runtime(runtime)`` reads them.

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

from uuid import UUID

from core.settings.knowledge import KnowledgeSettings
from core.uuid import string_to_uuid

__all__ = [
    "DOCUMENTS_TABLE",
    "FRAGMENTS_TABLE",
    "SHARED_KNOWLEDGE_ID",
    "SHARED_KNOWLEDGE_NAME",
    "KnowledgeSettings",
    "owner_ids",
]

#: Owner of the deployment's shared knowledge (an agents row created on first use, disabled).
SHARED_KNOWLEDGE_ID: UUID = string_to_uuid("elizaos:knowledge:shared")
SHARED_KNOWLEDGE_NAME = "__shared_knowledge__"
#: elizaOS plugin-knowledge's table names (``memories.type``).
DOCUMENTS_TABLE = "documents"
FRAGMENTS_TABLE = "knowledge"


def owner_ids(agent_id: UUID) -> list[UUID]:
    """The owners whose knowledge ``agent_id`` sees: its own, then the shared owner's."""
    return [agent_id, SHARED_KNOWLEDGE_ID]
