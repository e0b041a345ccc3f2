"""The WebSocket ``$connect`` authorizer (functions/ws_authorizer.py, functions/jwt_verifier.py).

Real keys (RSA and P-256, generated with ``cryptography``), real tokens signed with them, and a real
issuer: an ``http.server`` on 127.0.0.1 serving the OpenID Connect discovery document and the JWKS,
counting its requests. Events are AWS's documented WebSocket REQUEST authorizer input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from core.settings.identity import IdentitySettings
from functions.api.identity import caller_from_event
from functions.api.streaming import websocket_to_http
from functions.jwt_verifier import InvalidToken, IssuerUnavailable, JwtVerifier, authorize, verifier_from_env

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/live/$connect"
USERS_CLIENT = "users-client-id"
CONNECTOR_CLIENT = "discord-client-id"


class Issuer:
    """An OpenID Connect issuer on 127.0.0.1: discovery document and JWKS, with request counts."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests: dict[str, int] = {}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                issuer.requests[self.path] = issuer.requests.get(self.path, 0) + 1
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    body = {"keys": issuer.keys}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def publish(self, kid: str, private_key: Any) -> None:
        """Add the public half of ``private_key`` to the JWKS under ``kid``."""
        public = private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True) | {"alg": "RS256"}
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True) | {"alg": "ES256"}
        self.keys.append(jwk | {"kid": kid, "use": "sig"})

    @property
    def jwks_fetches(self) -> int:
        return self.requests.get("/jwks.json", 0)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer(rsa_key, ec_key) -> Iterator[Issuer]:
    server = Issuer()
    server.publish("rsa-1", rsa_key)
    server.publish("ec-1", ec_key)
    yield server
    server.stop()


@pytest.fixture
def verifier(issuer) -> JwtVerifier:
    return JwtVerifier(issuer.url, [USERS_CLIENT, CONNECTOR_CLIENT], timeout_s=2)


def claims_for(issuer: Issuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": "user-1", "aud": USERS_CLIENT, "iat": now, "exp": now + 300}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: Any, kid: str = "rsa-1", algorithm: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def connect_event(token: str | None) -> dict[str, Any]:
    """AWS's documented WebSocket REQUEST authorizer input, the token in the query string."""
    query = {} if token is None else {"token": token}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Host": "abcdef123.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13"},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "stage": "live",
            "connectionId": "L8xbTdw1IAMCKDQ=",
            "requestId": "L8xbTG3hIAMFqQQ=",
            "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abcdef123",
            "identity": {"sourceIp": "203.0.113.7"},
        },
    }


def assert_denied(answer: dict[str, Any]) -> None:
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": METHOD_ARN}
    ]
    assert "context" not in answer


# -- accepted -------------------------------------------------------------------------------------


def test_a_valid_rs256_token_is_allowed_on_this_connect_only_with_its_claims_and_scopes_as_context(
    issuer, verifier, rsa_key
):
    claims = claims_for(issuer, scope="openid agents/connector.discord", name="Ada")
    answer = authorize(connect_event(sign(claims, rsa_key)), verifier)
    assert answer["principalId"] == "user-1"
    assert answer["policyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}],
    }
    # A context holds strings, numbers and booleans only: the claims travel as JSON.
    assert json.loads(answer["context"]["claims"]) == claims
    assert answer["context"]["scopes"] == "openid agents/connector.discord"
    assert all(isinstance(v, str) for v in answer["context"].values())


def test_a_valid_es256_token_is_allowed(issuer, verifier, ec_key):
    answer = authorize(connect_event(sign(claims_for(issuer), ec_key, "ec-1", "ES256")), verifier)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_a_cognito_access_token_without_aud_is_accepted_for_its_client_id(issuer, verifier, rsa_key):
    claims = claims_for(issuer, aud=None, client_id=CONNECTOR_CLIENT, token_use="access")
    assert verifier.verify(sign(claims, rsa_key)).claims["client_id"] == CONNECTOR_CLIENT
    with pytest.raises(InvalidToken, match="client_id"):
        verifier.verify(sign(claims_for(issuer, aud=None, client_id="someone-else"), rsa_key))


def test_aud_wins_over_client_id_as_at_api_gateway(issuer, verifier, rsa_key):
    token = sign(claims_for(issuer, aud="another-api", client_id=USERS_CLIENT), rsa_key)
    with pytest.raises(InvalidToken, match="aud"):
        verifier.verify(token)
    listed = sign(claims_for(issuer, aud=["another-api", USERS_CLIENT]), rsa_key)
    assert verifier.verify(listed).claims["sub"] == "user-1"


# -- refused ---------------------------------------------------------------------------------------


def test_an_expired_token_is_denied(issuer, verifier, rsa_key):
    token = sign(claims_for(issuer, exp=int(time.time()) - 1), rsa_key)
    assert_denied(authorize(connect_event(token), verifier))
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_a_token_not_yet_valid_is_denied(issuer, verifier, rsa_key):
    with pytest.raises(InvalidToken, match="not yet valid"):
        verifier.verify(sign(claims_for(issuer, nbf=int(time.time()) + 60), rsa_key))


def test_a_token_without_exp_is_denied(issuer, verifier, rsa_key):
    with pytest.raises(InvalidToken, match="exp"):
        verifier.verify(sign(claims_for(issuer, exp=None), rsa_key))


def test_a_token_of_another_issuer_is_denied(issuer, verifier, rsa_key):
    token = sign(claims_for(issuer, iss="https://evil.example.com"), rsa_key)
    assert_denied(authorize(connect_event(token), verifier))
    with pytest.raises(InvalidToken, match="issuer"):
        verifier.verify(token)


def test_a_token_for_another_audience_is_denied(issuer, verifier, rsa_key):
    token = sign(claims_for(issuer, aud="another-api"), rsa_key)
    assert_denied(authorize(connect_event(token), verifier))


def test_a_token_without_sub_is_denied(issuer, verifier, rsa_key):
    with pytest.raises(InvalidToken, match="sub"):
        verifier.verify(sign(claims_for(issuer, sub=None), rsa_key))


def test_an_unsigned_alg_none_token_is_denied_without_fetching_keys(issuer, verifier):
    token = jwt.encode(claims_for(issuer), None, algorithm="none", headers={"kid": "rsa-1"})
    assert_denied(authorize(connect_event(token), verifier))
    with pytest.raises(InvalidToken, match="'none'"):
        verifier.verify(token)
    assert issuer.jwks_fetches == 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_hs256_token_keyed_with_the_issuers_public_key_is_denied(issuer, verifier, rsa_key):
    """The algorithm-confusion attack: HMAC with the published RSA key as the secret."""
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(json.dumps(claims_for(issuer)).encode())
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    token = f"{head}.{body}.{_b64(mac)}"
    assert_denied(authorize(connect_event(token), verifier))
    with pytest.raises(InvalidToken, match="HS256"):
        verifier.verify(token)


def test_a_token_whose_algorithm_is_not_its_keys_is_denied(issuer, verifier, ec_key):
    """ES256 claimed, with the kid of the RSA key: refused before any signature check."""
    with pytest.raises(InvalidToken, match="is for RS256"):
        verifier.verify(sign(claims_for(issuer), ec_key, "rsa-1", "ES256"))


def test_a_token_signed_by_another_key_under_a_known_kid_is_denied(issuer, verifier):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken, match="Signature verification failed"):
        verifier.verify(sign(claims_for(issuer), forger, "rsa-1"))


def test_a_malformed_or_missing_token_is_denied_without_fetching_keys(issuer, verifier):
    assert_denied(authorize(connect_event(None), verifier))
    assert_denied(authorize(connect_event("not.a.jwt"), verifier))
    assert issuer.requests == {}


def test_an_unknown_kid_is_denied_and_refetches_the_keys_at_most_once_per_cooldown(issuer, verifier, rsa_key):
    assert verifier.verify(sign(claims_for(issuer), rsa_key)).claims["sub"] == "user-1"
    assert issuer.jwks_fetches == 1
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for n in range(3):
        token = sign(claims_for(issuer), stranger, f"unknown-{n}")
        assert_denied(authorize(connect_event(token), verifier))
    assert issuer.jwks_fetches == 1  # within the 30 s cooldown: forged kids cost the issuer nothing
    assert issuer.requests["/.well-known/openid-configuration"] == 1  # discovered once per container


def test_a_rotated_key_is_fetched_once_then_served_from_the_cache(issuer, rsa_key):
    verifier = JwtVerifier(issuer.url, [USERS_CLIENT], timeout_s=2, jwks_cooldown_s=0)
    assert verifier.verify(sign(claims_for(issuer), rsa_key)).claims["sub"] == "user-1"
    assert issuer.jwks_fetches == 1
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.keys = []  # the issuer replaces its key set: rsa-1 retired, rsa-2 in
    issuer.publish("rsa-2", rotated)
    for _ in range(3):
        assert verifier.verify(sign(claims_for(issuer, sub="user-2"), rotated, "rsa-2")).claims["sub"] == "user-2"
    assert issuer.jwks_fetches == 2  # the new kid was fetched once, then cached
    assert issuer.requests["/.well-known/openid-configuration"] == 1


# -- the issuer -----------------------------------------------------------------------------------


def test_an_unreachable_issuer_is_an_error_not_a_denial(rsa_key):
    server = Issuer()
    url = server.url
    server.stop()
    verifier = JwtVerifier(url, [USERS_CLIENT], timeout_s=1)
    token = sign({"iss": url, "sub": "u", "aud": USERS_CLIENT, "exp": int(time.time()) + 60}, rsa_key)
    with pytest.raises(IssuerUnavailable, match="could not be read"):
        authorize(connect_event(token), verifier)


def test_a_discovery_document_naming_another_issuer_is_refused(issuer, rsa_key):
    verifier = JwtVerifier(issuer.url + "/", [USERS_CLIENT], timeout_s=2)  # not the issuer the document names
    with pytest.raises(IssuerUnavailable, match="names issuer"):
        verifier.verify(sign(claims_for(issuer), rsa_key))


# -- the Lambda handler's settings -----------------------------------------------------------------


def test_the_handler_reads_the_issuer_and_audiences_from_its_environment(issuer, rsa_key, monkeypatch):
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.setenv("JWT_AUDIENCE", f"{CONNECTOR_CLIENT},{USERS_CLIENT}")
    monkeypatch.delitem(sys.modules, "functions.ws_authorizer", raising=False)
    module = importlib.import_module("functions.ws_authorizer")  # its init phase reads the settings
    assert module.verifier.audiences == {USERS_CLIENT, CONNECTOR_CLIENT}
    answer = module.handler(connect_event(sign(claims_for(issuer), rsa_key)), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"JWT_AUDIENCE": "a"}, "JWT_ISSUER"),
        ({"JWT_ISSUER": "https://i.example.com", "JWT_AUDIENCE": " , "}, "JWT_AUDIENCE"),
    ],
)
def test_a_missing_setting_fails_the_init_naming_it(environ, named):
    with pytest.raises(ValueError, match=named):
        verifier_from_env(environ)


# -- the stream's events carry the caller the HTTP API would see ----------------------------------


def http_event(claims: dict[str, Any], scopes: list[str] | None) -> dict[str, Any]:
    """The HTTP API's JWT authorizer output (payload 2.0): claims as strings, arrays as "[a b]"."""
    flat = {k: f"[{' '.join(map(str, v))}]" if isinstance(v, list) else str(v) for k, v in claims.items()}
    return {"version": "2.0", "requestContext": {"authorizer": {"jwt": {"claims": flat, "scopes": scopes}}}}


def websocket_message_after(answer: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket MESSAGE event of a connection the authorizer admitted: its context flattened into
    ``requestContext.authorizer`` beside ``principalId``, as API Gateway documents for Lambda authorizers."""
    return {
        "requestContext": {
            "routeKey": "sendMessage",
            "eventType": "MESSAGE",
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": 1767225600000,
            "requestTimeEpoch": 1767225600100,
            "requestId": "abc=",
            "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
            "connectionId": "L8xbTdw1IAMCKDQ=",
            "apiId": "abcdef123",
            "identity": {"sourceIp": "203.0.113.7"},
            "authorizer": {"principalId": answer["principalId"], **answer["context"], "integrationLatency": 41},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("extra", "role"),
    [
        ({"name": "Ada"}, "user"),
        ({"cognito:groups": ["admin", "ops"]}, "admin"),
        ({"scope": "agents/admin"}, "admin"),
        ({"aud": None, "client_id": CONNECTOR_CLIENT, "scope": "agents/connector.discord"}, "connector"),
    ],
)
def test_a_websocket_message_yields_the_same_caller_as_the_http_api_for_the_same_token(
    issuer, verifier, rsa_key, extra, role
):
    settings = IdentitySettings()
    claims = claims_for(issuer, **extra)
    answer = authorize(connect_event(sign(claims, rsa_key)), verifier)
    message = websocket_to_http(
        websocket_message_after(answer, {"action": "sendMessage", "agent": "eliza", "text": "hi"})
    )
    over_websocket = caller_from_event(message, settings)
    scopes = claims["scope"].split() if "scope" in claims else None
    over_http = caller_from_event(http_event(claims, scopes), settings)
    assert over_websocket is not None and over_websocket == over_http
    assert over_websocket.role == role and over_websocket.subject == f"{issuer.url}|user-1"
