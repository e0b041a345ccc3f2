"""Typed objects from a model: ``get_object`` (Maiar ``getObject``, elizaOS ``OBJECT_SMALL``/``OBJECT_LARGE``).

``AgentRuntime.get_object(schema, prompt, **params)`` runs ``get_object`` here:

1. **Model type.** The OBJECT_* type asked for when some handler serves it, else the text
   type of the same size (``TEXT_SMALL`` for ``OBJECT_SMALL``, ``TEXT_LARGE`` for
   ``OBJECT_LARGE``), so a plugin that serves only text still gives objects. A TEXT_*
   type asked for is used as is.
2. **Structured path.** When that model claims ``"structured_output"``
   (``ModelRegistration.capabilities``), the schema's JSON schema goes in
   ``params["schema"]`` (and its name in ``schema_name``), which the hosted providers turn
   into their native structured output (OpenAI ``json_schema``, Anthropic and Bedrock a
   forced tool call, Ollama ``format``); the prompt is left as it is.
   **Prompted path.** Otherwise the prompt ends with an instruction to answer with one JSON
   object matching the schema (shown to the model).
3. **Validation, either way.** A parsed answer (OBJECT_* handlers return the JSON value)
   is validated as is; a text answer gives the JSON of its first fenced code block that
   parses, else of the first ``{...}`` that parses. An invalid answer gets **one repair
   call**: the same call, with the previous answer and what was wrong with it; if that
   fails too, ``StructuredOutputError``.

Errors of the model call itself (``ModelError``, ``ModelNotFoundError``) are raised as
they are; fallback between providers happens inside each call (``core.model_registry``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import ModelNotFoundError, StructuredOutputError
from core.types import ModelType

if TYPE_CHECKING:
    from core.runtime import AgentRuntime

ObjectT = TypeVar("ObjectT", bound=BaseModel)

STRUCTURED_OUTPUT = "structured_output"
#: OBJECT_* type → the text type that stands in when no handler serves it.
TEXT_FALLBACK = {ModelType.OBJECT_SMALL: ModelType.TEXT_SMALL, ModelType.OBJECT_LARGE: ModelType.TEXT_LARGE}

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
#: How many ``{`` positions to try before giving up on a long, JSON-free answer.
_MAX_OBJECT_STARTS = 64
#: How much of a bad answer is quoted back to the model in the repair call (characters).
_MAX_QUOTED_ANSWER = 4000


async def get_object(
    runtime: AgentRuntime,
    schema: type[ObjectT],
    prompt: str,
    *,
    model_type: ModelType = ModelType.OBJECT_SMALL,
    provider: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> ObjectT:
    """Ask a model for an instance of ``schema`` (see the module docstring for the steps).

    Args:
        runtime: The calling runtime (its ``use_model`` makes the calls).
        schema: The pydantic model to return.
        prompt: What to ask.
        model_type: ``OBJECT_SMALL`` (default), ``OBJECT_LARGE`` or a TEXT_* type.
        provider: Only this provider's handlers.
        params: Other model params (``system``, ``temperature``...); ``prompt``, ``schema``
            and ``schema_name`` are set here.

    Returns:
        The validated instance.

    Raises:
        ModelNotFoundError: neither the type nor its text stand-in has a handler.
        ModelError: a model call failed.
        StructuredOutputError: the answer and the repaired answer were both invalid.
    """
    chosen = choose_model_type(runtime, model_type, provider)
    call = dict(params or {})
    if STRUCTURED_OUTPUT in runtime.model_capabilities(chosen, provider):
        call.update(schema=schema.model_json_schema(), schema_name=schema.__name__)
        asked = prompt
    else:
        for key in ("schema", "schema_name"):
            call.pop(key, None)
        asked = json_instructions(prompt, schema)
    answer = await runtime.use_model(chosen, {**call, "prompt": asked}, provider)
    result, errors = parse_object(schema, answer)
    if result is not None:
        return result
    answer = await runtime.use_model(chosen, {**call, "prompt": repair_prompt(asked, answer, errors)}, provider)
    result, errors = parse_object(schema, answer)
    if result is not None:
        return result
    raise StructuredOutputError(
        f"the model's answer is not a valid {schema.__name__} after one repair attempt: {'; '.join(errors)}",
        schema_name=schema.__name__,
        errors=errors,
        raw=_as_text(answer),
    )


def choose_model_type(runtime: AgentRuntime, model_type: ModelType, provider: str | None = None) -> ModelType:
    """``model_type`` when served, else its text stand-in (``TEXT_FALLBACK``).

    Raises:
        ModelNotFoundError: neither is served; the message names both types.
    """
    registry = runtime.blueprint.models
    if _serves(registry, model_type, provider):
        return model_type
    stand_in = TEXT_FALLBACK.get(model_type)
    if stand_in is not None and _serves(registry, stand_in, provider):
        return stand_in
    named = model_type.value + (f" or {stand_in.value}" if stand_in else "")
    suffix = f" from provider {provider!r}" if provider else ""
    raise ModelNotFoundError(f"no model handler registered for {named}{suffix}")


def _serves(registry: Any, model_type: ModelType, provider: str | None) -> bool:
    try:
        registry.candidates(model_type, provider)
    except ModelNotFoundError:
        return False
    return True


def json_instructions(prompt: str, schema: type[BaseModel]) -> str:
    """``prompt`` with the instruction to answer with one JSON object matching ``schema``."""
    definition = json.dumps(schema.model_json_schema(), ensure_ascii=False)
    return (
        f"{prompt}\n\nRespond with a single JSON object that matches this JSON schema, and nothing "
        f"else (no prose, no comments):\n{definition}"
    )


def repair_prompt(asked: str, answer: Any, errors: list[str]) -> str:
    """The prompt of the repair call: the original, the bad answer, and what is wrong with it."""
    quoted = _as_text(answer)
    if len(quoted) > _MAX_QUOTED_ANSWER:
        quoted = quoted[:_MAX_QUOTED_ANSWER] + "…"
    problems = "\n".join(f"- {e}" for e in errors)
    return (
        f"{asked}\n\nYour previous answer was:\n{quoted}\n\nIt is not valid:\n{problems}\n\n"
        "Answer again with only the corrected JSON object."
    )


def parse_object(schema: type[ObjectT], answer: Any) -> tuple[ObjectT | None, list[str]]:
    """Validate a model's answer against ``schema``.

    Args:
        schema: The pydantic model.
        answer: Text, a parsed JSON value, or a model instance.

    Returns:
        ``(instance, [])``, or ``(None, errors)`` with one line per problem.
    """
    if isinstance(answer, schema):
        return answer, []
    value: Any = answer.model_dump() if isinstance(answer, BaseModel) else answer
    if isinstance(value, str):
        try:
            value = extract_json(value)
        except ValueError as exc:
            return None, [str(exc)]
    try:
        return schema.model_validate(value), []
    except ValidationError as exc:
        return None, [_describe(error) for error in exc.errors(include_url=False)]


def extract_json(text: str) -> Any:
    """The JSON value in a model's text answer.

    The first fenced code block (```json ... ```) that parses, else the first ``{...}``
    that parses (so prose around the object is ignored).

    Raises:
        ValueError: no JSON object in the text.
    """
    for block in _FENCE.findall(text):
        try:
            return json.loads(block)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(_MAX_OBJECT_STARTS):
        if start < 0:
            break
        try:
            return decoder.raw_decode(text, start)[0]
        except ValueError:
            start = text.find("{", start + 1)
    raise ValueError("the answer holds no JSON object")


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "(root)"
    return f"{location}: {error.get('msg', 'invalid')}"


def _as_text(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, BaseModel):
        return answer.model_dump_json()
    return json.dumps(answer, ensure_ascii=False, default=str)
