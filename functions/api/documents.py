"""Knowledge documents over HTTP: ``/agents/{agent}/documents`` (a Powertools router).

Routes:

- ``POST /agents/{agent}/documents``: body ``{"text": str}`` or ``{"file": base64}``, plus
  ``name`` (identifies the document: adding the same name again replaces it), ``shared``
  (every agent sees it), ``contentType`` and ``metadata`` (kept as given). 201 when added,
  200 when replaced or unchanged; 413 over ``KNOWLEDGE_MAX_DOCUMENT_BYTES``; 422 for an empty
  document, a file that is not base64 or not UTF-8 text, naming the field.
- ``GET /agents/{agent}/documents?limit=&cursor=``: the agent's and the shared documents,
  newest first, without text; ``nextCursor`` pages on.
- ``GET /agents/{agent}/documents/status``: the agent's fragments and the shared ones by
  embedding state: ``fragments``, ``embedded``, ``queued``, ``failed`` (see
  ``core.knowledge.status``), ``searchable`` (embedded / fragments), and the same per
  ``private`` and ``shared``.
- ``GET /agents/{agent}/documents/{documentId}?fragments=true``: one document with its text
  (and its fragments); 404 for another agent's private document.
- ``DELETE /agents/{agent}/documents/{documentId}``: 204; a shared document is deleted for
  every agent; 404 when the agent sees no such document.

Errors not handled here (unknown agent, bad body) use the app's handlers (``functions.api.app``):
``NotFoundError`` gives 404, ``RequestValidationError`` 422. The Lambda handler's
``MAX_BODY_BYTES`` (64 KiB) applies before this router: a larger body gets 413 there, whatever
``KNOWLEDGE_MAX_DOCUMENT_BYTES`` says; bigger documents go through the CLI's folder import.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ConfigDict, Field, StrictBool, model_validator

from core.errors import NotFoundError
from core.knowledge import KnowledgeSettings
from core.knowledge.documents import (
    MAX_NAME_CHARS,
    DocumentError,
    DocumentResult,
    DocumentStatus,
    DocumentTooLargeError,
    add_document,
    decode_document,
    delete_document,
    document_json,
    get_document,
    get_fragments,
    list_documents,
)
from core.knowledge.status import knowledge_status
from core.types import Memory
from core.types.wire import ApiModel
from functions.api.access import ADMIN_ONLY
from functions.api.context import current
from functions.api.responses import error_response, invalid_field

router = APIGatewayHttpRouter()


class DocumentBody(ApiModel):
    """``POST /agents/{agent}/documents``: exactly one of ``text`` and ``file``."""

    # The validator below, said in the OpenAPI document (clients and schemathesis read it).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}, "not": {"required": ["file"]}},
                {"required": ["file"], "properties": {"file": {"type": "string"}}, "not": {"required": ["text"]}},
            ]
        }
    )

    text: str | None = Field(default=None, min_length=1)
    file: str | None = Field(default=None, min_length=1, description="The file's bytes, base64-encoded.")
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS, pattern=r"^[^\x00]*\S[^\x00]*$")
    shared: StrictBool = False  # JSON true/false only: "yes" or 1 is a 422, not a shared document
    content_type: str = Field(default="text/plain", max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DocumentBody:
        if (self.text is None) == (self.file is None):
            raise ValueError("give exactly one of text and file")
        return self


@router.post(
    "/agents/<agent>/documents",
    middlewares=ADMIN_ONLY,
    status_code=201,
    responses={201: {"description": "Added"}, 200: {"description": "Unchanged, or replaced (same name)"}},
)
def post_document(agent: str, body: DocumentBody) -> Response[dict[str, Any]]:
    """Add (or replace) a document; its fragments are queued for embedding at low priority."""
    api = current()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)
    settings = KnowledgeSettings.from_runtime(runtime)
    field = "file" if body.file is not None else "text"
    try:
        text = _file_text(body.file, settings) if body.file is not None else (body.text or "")
        result = container.run(
            add_document(
                runtime,
                text,
                name=body.name,
                shared=body.shared,
                content_type=body.content_type,
                origin="api",
                metadata=body.metadata,
                settings=settings,
            )
        )
    except DocumentTooLargeError as exc:
        return error_response(413, "payload_too_large", exc.reason)
    except DocumentError as exc:
        return invalid_field(field, "invalid_document", exc.reason)
    status = 201 if result.status is DocumentStatus.ADDED else 200
    return Response(status_code=status, content_type="application/json", body=_result_json(result))


@router.get("/agents/<agent>/documents", middlewares=ADMIN_ONLY)
def get_documents(
    agent: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[dict[str, Any]]:
    """The agent's documents and the shared ones, newest first, without their text."""
    api = current()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)
    try:
        page = container.run(list_documents(runtime, limit=limit, cursor=cursor))
    except ValueError as exc:
        return invalid_field("cursor", "invalid_cursor", str(exc), location="query")
    return Response(
        status_code=200,
        content_type="application/json",
        body={"documents": [document_json(d) for d in page.memories], "nextCursor": page.next_cursor},
    )


# Registered before ``/documents/<document_id>``: routes are tried in order, and "status" is no UUID.
@router.get("/agents/<agent>/documents/status", middlewares=ADMIN_ONLY)
def get_documents_status(agent: str) -> dict[str, Any]:
    """How far the agent's knowledge is searchable: its fragments (and the shared ones) embedded,
    queued and failed (``core.knowledge.status``), with ``searchable`` the embedded share."""
    api = current()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)
    status = container.run(knowledge_status(runtime.adapter, runtime.agent_id))
    return {"agentId": str(runtime.agent_id), **status.as_json()}


@router.get("/agents/<agent>/documents/<document_id>", middlewares=ADMIN_ONLY)
def get_one_document(agent: str, document_id: UUID, fragments: bool = False) -> dict[str, Any]:
    """One document with its text; ``fragments=true`` adds its fragments in order."""
    api = current()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)

    async def read() -> tuple[Memory | None, list[Memory]]:
        document = await get_document(runtime, document_id)
        parts = await get_fragments(runtime, document) if document is not None and fragments else []
        return document, parts

    document, parts = container.run(read())
    if document is None:
        raise NotFoundError(f"document {document_id} not found for agent {agent}")
    answer = document_json(document, text=True)
    if fragments:
        answer["fragments"] = [_fragment_json(f) for f in parts]
    return answer


@router.delete(
    "/agents/<agent>/documents/<document_id>",
    middlewares=ADMIN_ONLY,
    status_code=204,
    responses={204: {"description": "Deleted, with its fragments"}},
)
def delete_one_document(agent: str, document_id: UUID) -> Response[None]:
    """Delete a document and its fragments (a shared one for every agent)."""
    api = current()
    orchestrator, container = api.orchestrator, api.container
    runtime = orchestrator.runtime(agent)
    if not container.run(delete_document(runtime, document_id)):
        raise NotFoundError(f"document {document_id} not found for agent {agent}")
    return Response(status_code=204, content_type="application/json", body=None)


# -- JSON shapes -----------------------------------------------------------------------------


def _fragment_json(fragment: Memory) -> dict[str, Any]:
    meta = fragment.metadata.model_extra or {}
    return {
        "id": str(fragment.id),
        "position": meta.get("position"),
        "start": meta.get("start"),
        "end": meta.get("end"),
        "text": fragment.text,
    }


def _result_json(result: DocumentResult) -> dict[str, Any]:
    return {
        "id": str(result.document_id),
        "status": result.status.value,
        "name": result.name,
        "shared": result.shared,
        "fragmentCount": result.fragment_count,
        "queued": result.queued,
        "contentHash": result.content_hash,
        "size": result.size,
    }


# -- helpers ---------------------------------------------------------------------------------


def _file_text(encoded: str, settings: KnowledgeSettings) -> str:
    # Cheap bound before decoding: base64 is 4 characters per 3 bytes.
    if len(encoded) // 4 * 3 > settings.max_document_bytes + 2:
        raise DocumentTooLargeError(len(encoded) // 4 * 3, settings.max_document_bytes)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DocumentError("not base64") from None
    return decode_document(data, max_bytes=settings.max_document_bytes)
