"""The KNOWLEDGE provider: the fragments most similar to the message, with their sources.

Runs on every turn (not dynamic): one embedding call for the message text (shared with FACTS
through ``core.embeddings.query``), then one search
(``search_knowledge``) over the agent's fragments and the shared ones, in one round trip,
re-ranked by the message's words as well (reciprocal-rank fusion, as ``search_memories``).
Fragments below ``KNOWLEDGE_MATCH_THRESHOLD`` are left out; at most ``KNOWLEDGE_MATCH_COUNT``
go into the prompt, best first, each with the name of the document it comes from. A
message without text costs nothing. Fragments not yet embedded are not found (they are
queued at low priority when their document is added).

The text follows elizaOS plugin-knowledge's provider (a ``# Knowledge`` section); values
``knowledge`` (the section) and data ``knowledge`` (the fragments, with ``similarity``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.embeddings.query import embed_query, prefetch_query
from core.knowledge import KnowledgeSettings, owner_ids
from core.messaging.prompt_data import clean_name, quote_block
from core.plugin import Plugin, Provider, ProviderResult
from core.types import Memory, State

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

#: Longest message text embedded for the search, characters (the model truncates anyway).
MAX_QUERY_CHARS = 2_000
#: Where the section goes in the prompt: after CHARACTER (-10) and ACTIONS (-1), before
#: RECENT_MESSAGES (100).
POSITION = 10


async def get_knowledge(runtime: AgentRuntime, message: Memory, state: State | None = None) -> list[Memory]:
    """The fragments the KNOWLEDGE provider would show for ``message``, best first.

    Raises:
        ConfigurationError: invalid knowledge settings.
        ModelError: the embedding call failed.
    """
    query = message.text.strip()[:MAX_QUERY_CHARS]
    if not query:
        return []
    settings = KnowledgeSettings.from_runtime(runtime)
    vector = await embed_query(runtime, query)  # FACTS embeds the same text this turn
    return await runtime.adapter.search_knowledge(
        owner_ids(runtime.agent_id),
        vector,
        count=settings.match_count,
        match_threshold=settings.match_threshold,
        query_text=query,
    )


def format_knowledge(fragments: list[Memory]) -> str:
    """The prompt section: one numbered item per fragment, naming its source."""
    if not fragments:
        return ""
    # Document names and text are whoever uploaded them's data: quoted, continuation lines indented.
    items = [
        f"[{i}] (source: {clean_name(f.metadata.source, default='knowledge', max_chars=120)}) {quote_block(f.text)}"
        for i, f in enumerate(fragments, 1)
    ]
    return "# Knowledge\n" + "\n\n".join(items)


async def _knowledge(runtime: AgentRuntime, message: Memory, state: State) -> ProviderResult:
    fragments = await get_knowledge(runtime, message, state)
    text = format_knowledge(fragments)
    return ProviderResult(text=text, values={"knowledge": text}, data={"knowledge": fragments})


KNOWLEDGE = Provider(
    name="KNOWLEDGE",
    get=_knowledge,
    position=POSITION,
    dynamic=False,
    description="Fragments of the agent's documents most relevant to the message, with their sources.",
)


async def _embed_ahead(runtime: AgentRuntime, message: Memory) -> None:
    """Start the search's embedding as the message arrives: it runs while the message is stored
    (``core.embeddings.query``), so the search joins the state's other reads."""
    query = message.text.strip()[:MAX_QUERY_CHARS]
    if query:
        prefetch_query(runtime, query)


knowledge_plugin = Plugin(
    name="knowledge",
    description="Documents split into fragments and retrieved by similarity (elizaOS plugin-knowledge).",
    providers=(KNOWLEDGE,),
    before_message=_embed_ahead,
)
