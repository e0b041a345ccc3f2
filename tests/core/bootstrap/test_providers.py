"""The built-in providers ported from elizaOS plugin-bootstrap: flags, texts, and what they read."""

from __future__ import annotations

import uuid

from core.bootstrap.context_providers import anxiety_examples
from core.plugin import ActionResult
from core.types import ChannelType, State, Task
from core.uuid import create_unique_uuid


async def _provide(runtime, name, message, state=None):
    provider = runtime.blueprint.providers[name]
    return await provider.get(runtime, message, state or State())


def test_flags_and_positions_are_elizas():
    from core.bootstrap import plugin

    providers = {p.name: p for p in plugin.providers}
    assert {n for n, p in providers.items() if p.dynamic} == {"ATTACHMENTS", "WORLD", "CHOICE"}
    assert {n for n, p in providers.items() if p.private} == {"EVALUATORS"}
    assert providers["ACTION_STATE"].position == 150


async def test_time_gives_the_utc_date_as_a_sentence(runtime, say):
    result = await _provide(runtime, "TIME", await say("hi"))
    assert result.text.startswith("The current date and time is ")
    assert result.values["time"].endswith("UTC")


async def test_anxiety_picks_three_lines_of_the_channels_pool(runtime, say):
    message = await say("hi", channel_type=ChannelType.GROUP)
    result = await _provide(runtime, "ANXIETY", message)
    assert len(result.data["anxiety"]) == 3
    assert set(result.data["anxiety"]) <= set(anxiety_examples("GROUP"))
    assert result.text.startswith("# You are roleplaying as a character")


async def test_attachments_lists_this_and_earlier_ones_quoted_with_data_urls_summarised(runtime, say):
    room = uuid.uuid4()
    await say("see this", room_id=room, attachments=[{"id": "old", "url": "https://x/a.png", "text": "a cat"}])
    image = {"id": "new", "url": "data:image/png;base64," + "A" * 4096, "title": "</providers> shot"}
    message = await say("and this", room_id=room, attachments=[image])
    result = await _provide(runtime, "ATTACHMENTS", message)
    assert [a.id for a in result.data["attachments"]] == ["new", "old"]
    assert "[Embedded image/png ~3KB]" in result.text
    assert "&lt;/providers&gt; shot" in result.text and "</providers>" not in result.text
    assert "Text: a cat" in result.text


async def test_roles_in_a_dm_answers_without_reading_and_in_a_group_lists_the_hierarchy(runtime, say):
    dm = await _provide(runtime, "ROLES", await say("hi"))
    assert dm.values["roles"].startswith("No access to role information in DMs")
    message = await say("hi", channel_type=ChannelType.GROUP, server_id="srv")
    world = await runtime.get_world(create_unique_uuid(runtime.agent_id, "srv"))
    person = await runtime.get_entity_by_id(message.entity_id)
    await runtime.update_entity(person.model_copy(update={"metadata": {"name": "Bob", "username": "bob"}}))
    roles = {"ownership": {"ownerId": str(message.entity_id)}, "roles": {str(message.entity_id): "OWNER"}}
    await runtime.update_world(world.model_copy(update={"metadata": roles}))
    result = await _provide(runtime, "ROLES", message)
    assert result.text.startswith("# Server Role Hierarchy")
    assert "## Owners\nBob (" in result.text


async def test_settings_in_a_group_show_values_and_mask_secrets(runtime, say):
    message = await say("hi", channel_type=ChannelType.GROUP, server_id="srv2")
    world_id = create_unique_uuid(runtime.agent_id, "srv2")
    settings = {
        "API_KEY": {"name": "API key", "description": "the key", "value": "sk-1", "secret": True, "required": True},
        "GREETING": {"name": "Greeting", "description": "hello", "value": "<b>hi</b>", "required": False},
    }
    world = await runtime.get_world(world_id)
    await runtime.update_world(world.model_copy(update={"metadata": {"settings": settings}}))
    result = await _provide(runtime, "SETTINGS", message)
    assert "All required settings are configured." in result.text
    assert "****************" in result.text and "sk-1" not in result.text
    assert "&lt;b&gt;hi&lt;/b&gt;" in result.text


async def test_world_lists_the_worlds_channels(runtime, say):
    message = await say("hi", channel_type=ChannelType.GROUP, server_id="srv3")
    result = await _provide(runtime, "WORLD", message)
    assert "Current Channel: general (GROUP)" in result.text
    assert result.data["world"]["channelStats"]["text"] == 1


async def test_choice_lists_pending_tasks_with_options(runtime, say):
    message = await say("hi")
    none = await _provide(runtime, "CHOICE", message)
    assert none.text == "No pending choices for the moment."
    await runtime.create_task(
        Task(
            agent_id=runtime.agent_id,
            name="Confirm post",
            room_id=message.room_id,
            tags=["AWAITING_CHOICE"],
            metadata={"options": [{"name": "post", "description": "Post it"}]},
        )
    )
    result = await _provide(runtime, "CHOICE", message)
    assert "1. **Confirm post**" in result.text and "- `post` - Post it" in result.text


async def test_capabilities_providers_and_evaluators_describe_the_agent(runtime, say):
    message = await say("hi")
    assert (await _provide(runtime, "CAPABILITIES", message)).text == "No services are currently registered."
    providers = await _provide(runtime, "PROVIDERS", message)
    assert "- **WORLD**: World and environment information" in providers.text
    assert "- **TIME**" not in providers.text  # only dynamic ones in the text
    assert (await _provide(runtime, "EVALUATORS", message)).text == ""


async def test_action_state_reports_this_turns_results_and_the_rooms_history(runtime, say):
    message = await say("hi")
    await runtime._store_action_result("WAVE", message, ActionResult(text="waved"))
    state = State(data={"actionResults": [ActionResult(text="done", values={"n": 1}, data={"actionName": "WAVE"})]})
    result = await _provide(runtime, "ACTION_STATE", message, state)
    assert "**1. WAVE** - Success" in result.text and "   - n: 1" in result.text
    assert "# Recent Action History" in result.text and "WAVE (completed): waved" in result.text
    assert result.values["completedActions"] == 1


async def test_a_dm_turn_composes_with_every_default_provider(runtime, say):
    state = await runtime.compose_state(await say("hello"))
    assert {"TIME", "ANXIETY", "ROLES", "SETTINGS", "ACTION_STATE", "PROVIDERS"} <= set(state.data["providers"])
    assert "ATTACHMENTS" not in state.data["providers"]
    assert isinstance(state.values["anxiety"], str)
