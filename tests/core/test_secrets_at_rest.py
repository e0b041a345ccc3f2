"""Character secrets are sealed in the agents table and read back in plain text; the server secret
derives separate keys; a changed secret is a clear error, not garbage."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto import mock_aws

from core.db.adapter import AgentRecord
from core.errors import ConfigurationError
from core.secret_box import PREFIX, SecretBox
from core.server_secret import ServerSecret
from core.settings.identity import IdentitySettings

SECRET = "s" * 40


@pytest.fixture
async def sealed(adapter):
    """The adapter sealing with this module's key; the agents it stored are deleted after the test,
    so no other test (or CLI run) meets secrets sealed under a key that is not the session's."""
    adapter.secret_box = SecretBox(ServerSecret(SECRET).key("character_secrets"))
    before = {a.id for a in await adapter.get_agents(include_disabled=True)}
    yield adapter
    adapter.secret_box = None
    for agent in await adapter.get_agents(include_disabled=True):
        if agent.id not in before:
            await adapter.delete_agent(agent.id)


async def _raw_character(adapter, agent_id):
    async with adapter.pool.connection() as conn:
        row = await (await conn.execute("SELECT character FROM agents WHERE id = %s", (agent_id,))).fetchone()
    return row["character"]


async def test_secrets_are_stored_encrypted_and_read_back_in_plain_text(sealed):
    agent_id = uuid.uuid4()
    record = AgentRecord(agent_id, f"a-{agent_id}", {"name": f"a-{agent_id}", "secrets": {"OPENAI_API_KEY": "sk-1"}})
    assert await sealed.create_agent(record)
    stored = await _raw_character(sealed, agent_id)
    assert stored["secrets"]["OPENAI_API_KEY"].startswith(PREFIX)
    assert "sk-1" not in str(stored)
    assert (await sealed.get_agent(agent_id)).character["secrets"] == {"OPENAI_API_KEY": "sk-1"}
    assert [a.character["secrets"] for a in await sealed.get_agents() if a.id == agent_id] == [
        {"OPENAI_API_KEY": "sk-1"}
    ]
    versions = await sealed.get_agent_versions({})
    assert [v.character["secrets"] for v in versions if v.id == agent_id] == [{"OPENAI_API_KEY": "sk-1"}]


async def test_an_update_seals_new_secrets_and_keeps_old_ones_readable(sealed):
    agent_id = uuid.uuid4()
    name = f"a-{agent_id}"
    await sealed.create_agent(AgentRecord(agent_id, name, {"name": name, "secrets": {"A": "one"}}))
    assert await sealed.update_agent(agent_id, {"character": {"secrets": {"B": "two"}}})
    stored = await _raw_character(sealed, agent_id)
    assert all(v.startswith(PREFIX) for v in stored["secrets"].values())
    assert (await sealed.get_agent(agent_id)).character["secrets"] == {"A": "one", "B": "two"}


async def test_upserting_an_unchanged_character_is_no_change(sealed):
    agent_id = uuid.uuid4()
    name = f"a-{agent_id}"
    record = AgentRecord(agent_id, name, {"name": name, "secrets": {"A": "one"}})
    await sealed.upsert_agents([record])
    first = await sealed.get_agent_versions({})
    await sealed.upsert_agents([record])
    second = await sealed.get_agent_versions({})
    assert [v.updated_at for v in first if v.id == agent_id] == [v.updated_at for v in second if v.id == agent_id]


def test_a_value_sealed_for_one_agent_does_not_open_for_another():
    box = SecretBox(ServerSecret(SECRET).key("character_secrets"))
    sealed = box.encrypt(uuid.uuid4(), "sk-1")
    with pytest.raises(ConfigurationError, match="SERVER_SECRET"):
        box.decrypt(uuid.uuid4(), sealed)


def test_a_changed_server_secret_is_named_when_secrets_no_longer_open():
    agent = uuid.uuid4()
    sealed = SecretBox(ServerSecret(SECRET).key("character_secrets")).encrypt(agent, "sk-1")
    with pytest.raises(ConfigurationError, match="SERVER_SECRET"):
        SecretBox(ServerSecret("t" * 40).key("character_secrets")).decrypt(agent, sealed)


def test_plain_text_written_before_encryption_still_reads():
    box = SecretBox(ServerSecret(SECRET).key("character_secrets"))
    assert box.decrypt(uuid.uuid4(), "legacy-plain") == "legacy-plain"


def test_derived_keys_differ_by_label_and_never_show_the_secret():
    secret = ServerSecret(SECRET)
    assert secret.key("dm_room") != secret.key("character_secrets")
    assert len(secret.key("dm_room")) == 32
    assert SECRET not in repr(secret)


def test_a_short_or_missing_server_secret_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigurationError, match="SERVER_SECRET"):
        ServerSecret.load(IdentitySettings.model_construct(server_secret="", server_secret_arn=""))
    with pytest.raises(ConfigurationError, match="SERVER_SECRET"):
        ServerSecret("short")


def test_the_server_secret_is_read_from_secrets_manager_as_the_template_generates_it():
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="server", SecretString='{"secret": "' + "x" * 64 + '"}')["ARN"]
        loaded = ServerSecret.load(IdentitySettings(SERVER_SECRET_ARN=arn), client)
        assert loaded.key("dm_room") == ServerSecret("x" * 64).key("dm_room")
        with pytest.raises(ConfigurationError, match="SERVER_SECRET_ARN"):
            ServerSecret.load(IdentitySettings(SERVER_SECRET_ARN=arn + "-missing"), client)


async def test_an_agent_sealed_under_another_key_loads_without_its_secrets_and_does_not_stop_the_others(sealed, caplog):
    foreign, mine = uuid.uuid4(), uuid.uuid4()
    other_box = SecretBox(ServerSecret("t" * 40).key("character_secrets"))
    sealed.secret_box, box = other_box, sealed.secret_box
    await sealed.create_agent(AgentRecord(foreign, f"a-{foreign}", {"name": f"a-{foreign}", "secrets": {"K": "v"}}))
    sealed.secret_box = box
    await sealed.create_agent(AgentRecord(mine, f"a-{mine}", {"name": f"a-{mine}", "secrets": {"K": "w"}}))
    loaded = {a.id: a.character["secrets"] for a in await sealed.get_agents() if a.id in {foreign, mine}}
    assert loaded == {foreign: {}, mine: {"K": "w"}}
    assert "SERVER_SECRET" in caplog.text and str(foreign) in caplog.text
