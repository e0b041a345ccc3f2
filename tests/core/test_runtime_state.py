"""compose_state and the bounded state cache."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.blueprint import AgentBlueprint
from core.character import load_character_dict
from core.errors import ConfigurationError
from core.plugin import Plugin, Provider, ProviderResult
from core.runtime import AgentRuntime
from core.state_cache import StateCache
from core.types import Content, Memory


def _provider(name, position=0, *, dynamic=False, private=False, calls=None, delay=0.0, fail=False):
    async def get(runtime, message, state):
        if calls is not None:
            calls.append(name)
        if delay:
            await asyncio.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} broke")
        return ProviderResult(text=f"[{name}]", values={name: True})

    return Provider(name=name, get=get, position=position, dynamic=dynamic, private=private)


def _runtime(*providers, settings=None):
    blueprint = AgentBlueprint.build(load_character_dict({"name": "S"}), [Plugin(name="p", providers=providers)])
    return AgentRuntime(blueprint, adapter=None, settings=settings)  # type: ignore[arg-type]  # no SQL here


def _message():
    return Memory(entity_id=uuid.uuid4(), agent_id=uuid.uuid4(), room_id=uuid.uuid4(), content=Content(text="hi"))


async def test_default_set_excludes_dynamic_and_private_and_orders_by_position():
    runtime = _runtime(
        _provider("LATE", 10), _provider("EARLY", -5), _provider("DYN", dynamic=True), _provider("SECRET", private=True)
    )
    state = await runtime.compose_state(_message())
    assert state.text == "[EARLY]\n\n[LATE]"
    assert set(state.data["providers"]) == {"EARLY", "LATE"}
    assert state.values["EARLY"] and "DYN" not in state.values


async def test_include_list_and_only_include():
    runtime = _runtime(_provider("A", 1), _provider("DYN", 0, dynamic=True), _provider("SECRET", 2, private=True))
    message = _message()
    both = await runtime.compose_state(message, include_list=["DYN", "SECRET"], skip_cache=True)
    assert both.text == "[DYN]\n\n[A]\n\n[SECRET]"
    only = await runtime.compose_state(_message(), include_list=["SECRET"], only_include=True)
    assert only.text == "[SECRET]"


async def test_slow_or_failing_provider_yields_nothing_and_never_fails_the_turn():
    runtime = _runtime(
        _provider("OK"),
        _provider("SLOW", delay=1.0),
        _provider("BROKEN", fail=True),
        settings={"PROVIDER_TIMEOUT_S": "0.05"},
    )
    state = await runtime.compose_state(_message())
    assert state.text == "[OK]"
    assert state.data["providers"]["SLOW"] == ProviderResult()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "PROVIDER_TIMEOUT_S: must be a number, got 'soon'"),
        ("0", "PROVIDER_TIMEOUT_S: must be at least 0.01, got 0.0"),
    ],
)
async def test_a_malformed_provider_timeout_fails_the_turn_naming_it(value, message):
    # Read once before the providers' isolation: a typo is not every provider "timing out".
    runtime = _runtime(_provider("OK"), settings={"PROVIDER_TIMEOUT_S": value})
    with pytest.raises(ConfigurationError, match=message):
        await runtime.compose_state(_message())


async def test_a_malformed_conversation_length_empties_only_the_recent_messages(caplog):
    from core.bootstrap import plugin as bootstrap_plugin

    blueprint = AgentBlueprint.build(load_character_dict({"name": "S"}), [bootstrap_plugin])
    runtime = AgentRuntime(blueprint, adapter=None, settings={"CONVERSATION_LENGTH": "many"})  # type: ignore[arg-type]
    state = await runtime.compose_state(_message())
    assert state.data["providers"]["RECENT_MESSAGES"] == ProviderResult()
    assert "CONVERSATION_LENGTH: must be an integer, got 'many'" in caplog.text


async def test_cached_results_are_kept_for_the_same_message_unless_skip_cache():
    calls: list[str] = []
    runtime = _runtime(_provider("A", 0, calls=calls), _provider("B", 1, dynamic=True, calls=calls))
    message = _message()
    await runtime.compose_state(message)
    later = await runtime.compose_state(message, include_list=["B"], only_include=True)
    assert later.text == "[A]\n\n[B]" and calls == ["A", "B"]  # A came from the cache
    fresh = await runtime.compose_state(message, include_list=["B"], only_include=True, skip_cache=True)
    assert fresh.text == "[B]"


def test_state_cache_is_bounded_in_size_and_age():
    now = [0.0]
    cache = StateCache(max_size=2, ttl_s=10, clock=lambda: now[0])
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    cache.put(a, {"x": 1})
    cache.put(b, {"x": 2})
    assert cache.get(a) == {"x": 1}  # a is now the most recently used
    cache.put(c, {"x": 3})
    assert len(cache) == 2 and cache.get(b) == {} and cache.get(a) == {"x": 1}
    now[0] = 11
    assert cache.get(c) == {} and len(cache) == 1


def test_state_cache_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        StateCache(max_size=0)
    with pytest.raises(ValueError):
        StateCache(ttl_s=0)


async def test_state_cache_stays_bounded_over_many_messages():
    runtime = _runtime(_provider("A"))
    runtime.blueprint.state_cache = StateCache(max_size=50)
    for _ in range(500):
        await runtime.compose_state(_message())
    assert len(runtime.blueprint.state_cache) == 50
