"""The built-in actions ported from elizaOS plugin-bootstrap, with the scripted model answering their prompts."""

from __future__ import annotations

from core.plugin import TargetInfo
from core.tasks.worker import TaskWorker
from core.types import ChannelType, Component, ModelType, State, Task
from core.uuid import create_unique_uuid


def _collect():
    said = []

    async def callback(content):
        said.append(content)
        return []

    return said, callback


async def _run(runtime, name, message, state=None):
    said, callback = _collect()
    action = runtime.find_action(name)
    state = state or await runtime.compose_state(message)
    result = await action.handler(runtime, message, state, {}, callback, [])
    return result, said


async def test_mute_room_asks_the_model_then_mutes_and_unmute_undoes_it(runtime, say, scripted):
    message = await say("please be quiet in here")
    mute, unmute = runtime.find_action("MUTE_ROOM"), runtime.find_action("UNMUTE_ROOM")
    assert await mute.validate(runtime, message, None) and not await unmute.validate(runtime, message, None)
    scripted.script(ModelType.TEXT_SMALL, "YES")
    result, _ = await _run(runtime, "MUTE_ROOM", message)
    assert result.success and result.values["roomMuted"] is True
    prompt = scripted.calls[-1][1]["prompt"]
    assert prompt.startswith("# Task: Decide if Ada should mute this room") and "please be quiet" in prompt
    assert await runtime.get_participant_user_state(message.room_id, runtime.agent_id) == "MUTED"
    scripted.script(ModelType.TEXT_SMALL, "yes")
    await _run(runtime, "UNMUTE_ROOM", message)
    assert await runtime.get_participant_user_state(message.room_id, runtime.agent_id) is None


async def test_follow_room_is_offered_only_when_asked_and_a_no_changes_nothing(runtime, say, scripted):
    follow = runtime.find_action("FOLLOW_ROOM")
    assert not await follow.validate(runtime, await say("what a day"), None)
    message = await say("please follow this chat")
    assert await follow.validate(runtime, message, None)
    scripted.script(ModelType.TEXT_SMALL, "NO")
    result, _ = await _run(runtime, "FOLLOW_ROOM", message)
    assert result.success and result.values["roomFollowed"] is False
    assert await runtime.get_participant_user_state(message.room_id, runtime.agent_id) is None


async def test_update_role_lets_an_owner_make_someone_admin(runtime, say, scripted):
    owner = await say("make carol an ADMIN", channel_type=ChannelType.GROUP, server_id="guild")
    carol = await say("hi", channel_type=ChannelType.GROUP, server_id="guild", room_id=owner.room_id)
    person = await runtime.get_entity_by_id(carol.entity_id)
    await runtime.update_entity(person.model_copy(update={"names": ["carol"]}))
    world = await runtime.get_world(create_unique_uuid(runtime.agent_id, "guild"))
    await runtime.update_world(world.model_copy(update={"metadata": {"roles": {str(owner.entity_id): "OWNER"}}}))
    assert await runtime.find_action("UPDATE_ROLE").validate(runtime, owner, None)
    scripted.script(
        ModelType.TEXT_SMALL,
        "<response><assignments><assignment><entityId>carol</entityId><newRole>ADMIN</newRole>"
        "</assignment></assignments></response>",
    )
    result, said = await _run(runtime, "UPDATE_ROLE", owner, State())
    assert result.values["successfulUpdates"] == 1 and said[0].text == "Updated carol's role to ADMIN."
    world = await runtime.get_world(world.id)
    assert world.metadata["roles"][str(carol.entity_id)] == "ADMIN"


async def test_update_settings_saves_a_value_the_owner_gives_in_a_dm(runtime, say, scripted):
    message = await say("my greeting is hello there")
    assert not await runtime.find_action("UPDATE_SETTINGS").validate(runtime, message, None)
    world_id = create_unique_uuid(runtime.agent_id, "owned")
    from core.types import World

    settings = {"GREETING": {"name": "Greeting", "description": "How to greet", "value": None, "required": True}}
    meta = {"ownership": {"ownerId": str(message.entity_id)}, "settings": settings}
    await runtime.ensure_world_exists(World(id=world_id, agent_id=runtime.agent_id, server_id="owned", metadata=meta))
    assert await runtime.find_action("UPDATE_SETTINGS").validate(runtime, message, None)
    scripted.script(ModelType.TEXT_LARGE, '{"updates": [{"key": "GREETING", "value": "hello there"}]}')
    scripted.script(
        ModelType.TEXT_LARGE, "<response><text>Saved your greeting.</text><actions>SETTING_UPDATED</actions></response>"
    )
    result, said = await _run(runtime, "UPDATE_SETTINGS", message, State(text="my greeting is hello there"))
    assert result.success and said[0].text == "Saved your greeting."
    stored = await runtime.get_world(world_id)
    assert stored.metadata["settings"]["GREETING"]["value"] == "hello there"


async def test_choose_option_runs_the_task_worker_with_the_chosen_option(runtime, say, scripted):
    message = await say("post", channel_type=ChannelType.GROUP, server_id="g2")
    world = await runtime.get_world(create_unique_uuid(runtime.agent_id, "g2"))
    await runtime.update_world(world.model_copy(update={"metadata": {"roles": {str(message.entity_id): "ADMIN"}}}))
    chosen = []

    async def execute(rt, options, task):
        chosen.append(options["option"])

    runtime.register_task_worker(TaskWorker(name="Confirm post", execute=execute))
    task_id = await runtime.create_task(
        Task(
            agent_id=runtime.agent_id,
            name="Confirm post",
            room_id=message.room_id,
            tags=["AWAITING_CHOICE"],
            metadata={"options": [{"name": "post", "description": "Post it"}]},
        )
    )
    assert await runtime.find_action("CHOOSE_OPTION").validate(runtime, message, None)
    scripted.script(
        ModelType.TEXT_SMALL,
        f"<response><taskId>{str(task_id)[:8]}</taskId><selectedOption>post</selectedOption></response>",
    )
    result, said = await _run(runtime, "CHOOSE_OPTION", message, State())
    assert chosen == ["post"] and said[0].text == "Selected option: post for task: Confirm post"


async def test_update_entity_stores_the_platform_details_as_a_component(runtime, say, scripted):
    message = await say("my telegram username is @dev_guru")
    scripted.script(
        ModelType.TEXT_LARGE,
        "<response><source>telegram</source><data><username>dev_guru</username></data></response>",
    )
    result, said = await _run(runtime, "UPDATE_ENTITY", message)
    assert result.success and said[0].text == "I've added new telegram information for Bob."
    component = await runtime.get_component(message.entity_id, "telegram", None, message.entity_id)
    assert component.data == {"username": "dev_guru"}


async def test_send_message_delivers_through_the_sources_send_handler(runtime, say, scripted):
    message = await say("tell bob on discord that lunch is ready")
    assert not await runtime.find_action("SEND_MESSAGE").validate(runtime, message, None)
    await runtime.create_component(Component(entity_id=message.room_id, agent_id=runtime.agent_id, type="discord"))
    sent = []

    async def deliver(rt, target: TargetInfo, content):
        sent.append((target.entity_id, content.text))

    runtime.register_send_handler("discord", deliver)
    scripted.script(
        ModelType.TEXT_SMALL,
        "<response><targetType>user</targetType><source>discord</source>"
        "<identifiers><username>bob</username></identifiers></response>",
    )
    result, _ = await _run(runtime, "SEND_MESSAGE", message)
    assert result.success and sent == [(message.entity_id, message.text)]
