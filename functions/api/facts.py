"""Facts over HTTP: ``POST /agents/{agent}/facts`` and ``GET /agents/{agent}/facts`` (a Powertools router).

Errors follow the app's handlers (``functions.api.app``): ``NotFoundError`` → 404, validation → 422.

* ``POST`` stores a fact in a room, de-duplicated (``core.memory.facts``): 201 with the new
  fact, or 200 with the existing one when the same fact was known (its confidence raised).
  New facts are queued for embedding at low priority.
* ``GET`` lists a room's facts (the caller's DM room without ``roomId``; every room's for an
  admin) newest first, in pages (``cursor``); with
  ``query``, it returns the facts nearest to the query instead (vector search re-ranked by
  words), each with its ``similarity``. A fact is found by ``query`` once its embedding is
  stored.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ConfigDict, Field, field_validator, model_validator

from core.errors import NotFoundError
from core.memory.facts import store_facts
from core.types import ModelType
from core.types.fact import FACTS_TABLE, MAX_FACT_TERM, MAX_FACT_TEXT, Fact, FactKind
from core.types.wire import ApiModel, StrictFloat
from functions.api.access import check_room, readable_room
from functions.api.context import caller, current
from functions.api.responses import invalid_field, json_response

router = APIGatewayHttpRouter()


class FactBody(ApiModel):
    """``POST /agents/{agent}/facts``: a fact for one room.

    ``text`` may be left out when ``subject``, ``predicate`` and ``object`` are all given
    (it is then ``"subject predicate object"``). ``confidence`` defaults to 1.0: a fact an
    operator states is taken as known. ``entityId`` is who the fact is about (a participant
    of the agent's), ``objectEntityId`` whom its object names.
    """

    room_id: UUID
    text: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_TEXT, pattern=r"^[^\x00]*$")
    subject: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_TERM, pattern=r"^[^\x00]*$")
    predicate: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_TERM, pattern=r"^[^\x00]*$")
    object: str | None = Field(default=None, min_length=1, max_length=MAX_FACT_TERM, pattern=r"^[^\x00]*$")
    confidence: StrictFloat = Field(default=1.0, gt=0.0, le=1.0)
    kind: FactKind | None = None
    entity_id: UUID | None = None
    object_entity_id: UUID | None = None
    source_message_id: UUID | None = None

    # The validator below, said in the OpenAPI document.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {
                    "required": ["subject", "predicate", "object"],
                    "properties": {k: {"type": "string"} for k in ("subject", "predicate", "object")},
                },
            ]
        }
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("text must not be blank")
        return value

    @model_validator(mode="after")
    def _text_or_triple(self) -> FactBody:
        if self.text is None:
            if not (self.subject and self.predicate and self.object):
                raise ValueError("give text, or subject, predicate and object")
            self.text = f"{self.subject} {self.predicate} {self.object}"
        return self


def fact_json(fact: Fact) -> dict[str, Any]:
    """A fact as the API returns it (camelCase, unset fields left out)."""
    return fact.model_dump(mode="json", by_alias=True, exclude_none=True)


@router.post(
    "/agents/<agent>/facts",
    status_code=201,
    responses={201: {"description": "A new fact"}, 200: {"description": "A known fact, confirmed"}},
)
def create_fact(agent: str, body: FactBody) -> Response[dict[str, Any]]:
    """Store a fact in a room the caller may use; 201 when new, 200 when it confirmed a known fact."""
    api, who = current(), caller()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)

    async def store() -> Any:
        adapter = runtime.adapter
        await check_room(runtime, who, who.entity_key, body.room_id, may_create=False)
        wanted = [e for e in (body.entity_id, body.object_entity_id) if e is not None]
        if wanted and len(await adapter.get_entities_by_ids(runtime.agent_id, wanted)) < len(set(wanted)):
            raise NotFoundError(f"entity not found for agent {agent}")
        fact = Fact(agent_id=runtime.agent_id, source="api", **body.model_dump(exclude_none=True))
        (write,) = await store_facts(runtime, [fact], priority="low")
        await runtime.flush_embeddings()
        return write

    write = container.run(store())
    return Response(
        status_code=201 if write.created else 200, content_type="application/json", body=fact_json(write.fact)
    )


@router.get("/agents/<agent>/facts")
def list_facts(
    agent: str,
    roomId: Annotated[UUID | None, Query()] = None,  # noqa: N803 - the query parameter's wire name
    entityId: Annotated[UUID | None, Query()] = None,  # noqa: N803
    query: Annotated[str | None, Query(min_length=1, max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response[dict[str, Any]]:
    """A room's facts, newest first and paged; with ``query``, the nearest facts.

    The room is ``roomId`` (one the caller may read) or the caller's DM room; an admin without
    ``roomId`` lists every room's.
    """
    api, who = current(), caller()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)
    adapter = runtime.adapter
    roomId = container.run(readable_room(runtime, who, roomId))  # noqa: N806 - the query parameter's wire name

    if query is not None:
        if cursor is not None:
            return invalid_field(
                "cursor",
                "value_error",
                "cursor pages a listing; a query returns the best matches at once",
                location="query",
            )

        async def search() -> list[Any]:
            vector = await runtime.use_model(ModelType.TEXT_EMBEDDING, {"text": query})
            return await adapter.search_memories(
                runtime.agent_id,
                vector,
                table=FACTS_TABLE,
                room_id=roomId,
                entity_id=entityId,
                count=limit,
                query_text=query,
            )

        return json_response(200, {"facts": [fact_json(Fact.from_memory(m)) for m in container.run(search())]})

    try:
        page = container.run(
            adapter.list_memories(
                runtime.agent_id, table=FACTS_TABLE, room_id=roomId, entity_id=entityId, limit=limit, cursor=cursor
            )
        )
    except ValueError:
        return invalid_field(
            "cursor", "value_error", "invalid cursor: pass nextCursor of the previous page", location="query"
        )
    return json_response(
        200, {"facts": [fact_json(Fact.from_memory(m)) for m in page.memories], "nextCursor": page.next_cursor}
    )
