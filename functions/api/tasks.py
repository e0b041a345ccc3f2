"""``GET|POST /agents/{agent}/tasks``: an agent's scheduled tasks and their scheduler state."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from core.types import Task
from core.types.wire import TAGS_QUERY_PATTERN, TaskBody, query_tags, task_json
from functions.api.access import ADMIN_ONLY
from functions.api.context import current
from functions.api.responses import error_response, json_response

router = APIGatewayHttpRouter()


@router.get("/agents/<agent>/tasks", middlewares=ADMIN_ONLY)
def list_tasks(
    agent: str,
    tags: Annotated[str | None, Query(max_length=1400, pattern=TAGS_QUERY_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The agent's tasks with their scheduler state (``status``, ``attempts``, ``lastError``, ``nextRunAt``).

    ``tags`` (comma-separated) keeps tasks having all of them.
    """
    api = current()
    runtime = api.orchestrator.runtime(agent)
    tasks = api.container.run(runtime.get_tasks(tags=query_tags(tags), limit=limit))
    return {"tasks": [task_json(t) for t in tasks]}


@router.post(
    "/agents/<agent>/tasks", middlewares=ADMIN_ONLY, status_code=201, responses={201: {"description": "Created"}}
)
def create_task(agent: str, body: TaskBody) -> Response[dict[str, Any]]:
    """Create a task for the agent; 201 with the stored task. A ``queue`` task needs a worker here."""
    api = current()
    runtime = api.orchestrator.runtime(agent)
    if "queue" in body.tags and runtime.get_task_worker(body.name) is None:
        known = ", ".join(sorted(runtime.blueprint.task_workers)) or "none"
        return error_response(
            422,
            "validation_error",
            f"invalid request: name: no task worker {body.name!r} for this agent (registered: {known})",
            fields=[
                {
                    "field": "name",
                    "location": "body",
                    "type": "unknown_task_worker",
                    "message": f"no task worker named {body.name!r} is registered for this agent",
                }
            ],
        )
    task = Task(agent_id=runtime.agent_id, **body.model_dump(exclude_unset=True))

    async def create() -> Task | None:
        await runtime.create_task(task)
        return await runtime.get_task(task.id)

    stored = api.container.run(create())
    return json_response(201, task_json(stored or task))
