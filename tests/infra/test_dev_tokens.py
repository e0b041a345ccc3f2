"""The local stack's tokens are verified as API Gateway's JWT authorizer verifies them, and map to
the same callers as deployed tokens."""

from __future__ import annotations

import io
import os
import stat
import time

import jwt
import pytest

from core.settings.identity import IdentitySettings
from functions.api.identity import Role, caller_from_event
from infra.cli import main
from infra.local.dev_tokens import AUDIENCE, ISSUER, DevTokens, local_server_secret


@pytest.fixture
def tokens(tmp_path):
    return DevTokens(tmp_path)


def _caller(authorizer):
    return caller_from_event({"requestContext": {"authorizer": authorizer}}, IdentitySettings())


def test_a_minted_token_becomes_the_same_caller_a_deployed_token_would(tokens):
    authorizer = tokens.authorize({"authorization": f"Bearer {tokens.mint('local-ann', name='ann')}"})
    caller = _caller(authorizer)
    assert (caller.role, caller.name, caller.subject) == (Role.USER, "ann", f"{ISSUER}|local-ann")


def test_admin_and_connector_scopes_survive_the_round_trip(tokens):
    admin = _caller(tokens.authorize({"authorization": "Bearer " + tokens.mint("a", scopes=("agents/admin",))}))
    bridge = _caller(
        tokens.authorize({"authorization": "Bearer " + tokens.mint("b", scopes=("agents/connector.irc",))})
    )
    assert admin.role is Role.ADMIN
    assert (bridge.role, bridge.source) == (Role.CONNECTOR, "irc")


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt"],
)
def test_missing_or_malformed_tokens_are_refused(tokens, header):
    assert tokens.authorize({"authorization": header} if header else {}) is None


def test_expired_forged_and_foreign_tokens_are_refused(tokens, tmp_path):
    expired = tokens.mint("x", ttl_s=-10)
    other_key = DevTokens(tmp_path / "elsewhere").mint("x")
    now = int(time.time())
    foreign = jwt.encode({"sub": "x", "iss": "evil", "aud": AUDIENCE, "exp": now + 60}, "k" * 32, algorithm="HS256")
    unsigned = jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}, key=None, algorithm="none")
    for token in (expired, other_key, foreign, unsigned):
        assert tokens.authorize({"authorization": f"Bearer {token}"}) is None


def test_the_keys_are_made_once_and_readable_only_by_their_owner(tmp_path):
    first = local_server_secret(tmp_path)
    assert local_server_secret(tmp_path) == first and len(first) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "server-secret").st_mode) == 0o600


def test_agent_token_prints_a_token_the_stack_accepts(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    out = io.StringIO()
    assert main(["token", "--connector", "discord", "--user", "bridge"], out=out) == 0
    caller = _caller(DevTokens(tmp_path).authorize({"authorization": "Bearer " + out.getvalue().strip()}))
    assert (caller.role, caller.source, caller.name) == (Role.CONNECTOR, "discord", "bridge")
