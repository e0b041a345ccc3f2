"""``get_object`` through the runtime: structured and prompted paths, extraction, repair, failure."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.errors import ModelError, ModelNotFoundError, StructuredOutputError
from core.model_providers.scripted import ScriptedModels
from core.plugin import ModelRegistration, Plugin
from core.runtime import AgentRuntime
from core.structured_output import extract_json, parse_object
from core.types import ModelType


class Weather(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str] = Field(default_factory=list)


@pytest.fixture
def build(adapter, agent_id):
    def _build(*plugins):
        character = load_character_dict({"id": str(agent_id), "name": f"agent-{agent_id}"})
        return AgentRuntime(AgentBlueprint.build(character, plugins), adapter)

    return _build


def _plugin(model_type: ModelType, *answers, structured: bool = False, name: str = "m") -> tuple[Plugin, list]:
    """A plugin whose ``model_type`` handler gives ``answers`` in order and records its params."""
    calls: list[dict] = []
    queue = list(answers)

    async def handler(runtime, params):
        calls.append(dict(params))
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    caps = frozenset({"structured_output"}) if structured else frozenset()
    return Plugin(name=name, models=(ModelRegistration(model_type, handler, capabilities=caps),)), calls


# -- structured path ----------------------------------------------------------------------------


async def test_structured_output_gets_the_schema_and_an_unchanged_prompt(build):
    plugin, calls = _plugin(ModelType.OBJECT_SMALL, {"city": "Paris", "temperature_c": 21.5}, structured=True)
    runtime = build(plugin)
    weather = await runtime.get_object(Weather, "Weather in Paris?", system="Be terse.")
    assert weather == Weather(city="Paris", temperature_c=21.5)
    (sent,) = calls
    assert sent["prompt"] == "Weather in Paris?" and sent["system"] == "Be terse."
    assert sent["schema"] == Weather.model_json_schema() and sent["schema_name"] == "Weather"


async def test_object_large_is_used_when_asked(build):
    small, small_calls = _plugin(
        ModelType.OBJECT_SMALL, {"city": "x", "temperature_c": 0}, structured=True, name="small"
    )
    large, large_calls = _plugin(
        ModelType.OBJECT_LARGE, {"city": "Oslo", "temperature_c": -3}, structured=True, name="large"
    )
    runtime = build(small, large)
    assert (await runtime.get_object(Weather, "?", model_type=ModelType.OBJECT_LARGE)).city == "Oslo"
    assert small_calls == [] and len(large_calls) == 1


# -- prompted path ------------------------------------------------------------------------------


async def test_without_structured_output_the_prompt_asks_for_json_and_fenced_json_is_read(build):
    answer = 'Sure! Here it is:\n```json\n{"city": "Lima", "temperature_c": "18", "conditions": ["fog"]}\n```\nBye.'
    plugin, calls = _plugin(ModelType.OBJECT_SMALL, answer)
    runtime = build(plugin)
    assert await runtime.get_object(Weather, "Weather in Lima?") == Weather(
        city="Lima", temperature_c=18, conditions=["fog"]
    )
    (sent,) = calls
    assert sent["prompt"].startswith("Weather in Lima?\n\nRespond with a single JSON object")
    assert json.dumps(Weather.model_json_schema(), ensure_ascii=False) in sent["prompt"]
    assert "schema" not in sent and "schema_name" not in sent  # a model without the capability gets none


async def test_with_no_object_handler_the_text_model_of_the_same_size_answers(build):
    scripted = ScriptedModels()  # serves TEXT_SMALL / TEXT_LARGE only
    scripted.script(ModelType.TEXT_SMALL, 'The object: {"city": "Rome", "temperature_c": 30} as asked.')
    scripted.script(ModelType.TEXT_LARGE, '{"city": "Cairo", "temperature_c": 35}')
    runtime = build(scripted.plugin())
    assert (await runtime.get_object(Weather, "Rome?")).city == "Rome"
    assert (await runtime.get_object(Weather, "Cairo?", model_type=ModelType.OBJECT_LARGE)).city == "Cairo"
    assert [t for t, _ in scripted.calls] == [ModelType.TEXT_SMALL, ModelType.TEXT_LARGE]
    # The scripted text models claim structured output, so the schema went along.
    assert scripted.calls[0][1]["schema_name"] == "Weather"


async def test_no_handler_at_all_names_both_types(build):
    runtime = build()
    with pytest.raises(ModelNotFoundError, match="OBJECT_LARGE or TEXT_LARGE"):
        await runtime.get_object(Weather, "?", model_type=ModelType.OBJECT_LARGE)
    plugin, _ = _plugin(ModelType.OBJECT_SMALL, {})
    with pytest.raises(ModelNotFoundError, match="OBJECT_SMALL or TEXT_SMALL from provider 'other'"):
        await build(plugin).get_object(Weather, "?", provider="other")


# -- repair and failure -------------------------------------------------------------------------


async def test_an_invalid_answer_gets_one_repair_call_with_the_errors(build):
    plugin, calls = _plugin(ModelType.OBJECT_SMALL, '{"city": "Quito"}', '{"city": "Quito", "temperature_c": 14}')
    runtime = build(plugin)
    assert await runtime.get_object(Weather, "Quito?") == Weather(city="Quito", temperature_c=14)
    first, repair = calls
    assert repair["prompt"].startswith(first["prompt"])
    assert 'Your previous answer was:\n{"city": "Quito"}' in repair["prompt"]
    assert "- temperature_c: Field required" in repair["prompt"]


async def test_an_answer_without_json_is_repaired_too(build):
    plugin, calls = _plugin(
        ModelType.OBJECT_SMALL,
        "I think it is sunny.",
        {"city": "Nice", "temperature_c": 25, "conditions": ["sun"]},
        structured=True,
    )
    runtime = build(plugin)
    assert (await runtime.get_object(Weather, "Nice?")).conditions == ["sun"]
    assert "the answer holds no JSON object" in calls[1]["prompt"]
    assert calls[1]["schema_name"] == "Weather"  # the repair call is the same kind of call


async def test_two_invalid_answers_raise_a_typed_error(build):
    plugin, calls = _plugin(
        ModelType.OBJECT_SMALL, {"city": 3}, {"city": "Bern", "temperature_c": "cold"}, structured=True
    )
    runtime = build(plugin)
    with pytest.raises(StructuredOutputError) as caught:
        await runtime.get_object(Weather, "Bern?")
    error = caught.value
    assert isinstance(error, ModelError) and error.retryable is False
    assert error.schema_name == "Weather"
    assert error.errors == ["temperature_c: Input should be a valid number, unable to parse string as a number"]
    assert json.loads(error.raw) == {"city": "Bern", "temperature_c": "cold"}
    assert "not a valid Weather after one repair attempt" in str(error)
    assert len(calls) == 2


async def test_a_failing_model_call_is_raised_as_it_is(build):
    plugin, calls = _plugin(ModelType.OBJECT_SMALL, ModelError("HTTP 400 bad schema", provider="m"))
    runtime = build(plugin)
    with pytest.raises(ModelError, match="bad schema") as caught:
        await runtime.get_object(Weather, "?")
    assert not isinstance(caught.value, StructuredOutputError) and len(calls) == 1


# -- extraction and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('```json\n{"a": "}"}\n```', {"a": "}"}),
        ('text {not json} then {"a": {"b": [1, 2]}} and {"c": 3}', {"a": {"b": [1, 2]}}),
        ('```python\nprint(1)\n```\n```json\n{"a": 2}\n```', {"a": 2}),
    ],
)
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "no braces here", "{broken", "{" * 200])
def test_extract_json_without_an_object(text):
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json(text)


def test_parse_object_accepts_instances_dicts_and_other_models():
    instance = Weather(city="a", temperature_c=1)
    assert parse_object(Weather, instance) == (instance, [])

    class Other(BaseModel):
        city: str
        temperature_c: float

    assert parse_object(Weather, Other(city="b", temperature_c=2))[0] == Weather(city="b", temperature_c=2)
    result, errors = parse_object(Weather, ["not", "an", "object"])
    assert result is None and errors and errors[0].startswith("(root): ")
