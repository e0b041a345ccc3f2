"""JWT verification as API Gateway's HTTP API JWT authorizer does it, for the WebSocket API's ``$connect``.

The HTTP API checks every token itself (``template.yaml``: ``HttpApi`` → ``Jwt``); a WebSocket API
has no JWT authorizer, only Lambda ones, so ``functions.ws_authorizer`` calls this module to accept
exactly the same tokens:

- the keys are the issuer's: ``{issuer}/.well-known/openid-configuration`` names the ``jwks_uri``
  (its ``issuer`` must be the configured one, as OpenID Connect Discovery requires); both are
  fetched on first use and kept for the container's life (the key set by PyJWT's ``PyJWKClient``,
  refreshed every ``jwks_lifespan_s``);
- the token's ``kid`` must name one of them; an unknown ``kid`` fetches the key set again (key
  rotation), at most once per ``jwks_cooldown_s`` so a stream of forged ``kid`` values cannot turn
  into a stream of requests to the issuer;
- signed with RS256 or ES256 only, by a key of that type (``alg: none``, HS256 and any algorithm the
  key was not made for are refused before the signature is checked);
- ``exp`` required and in the future, ``nbf`` and ``iat`` (when present) not in the future, ``iss``
  the configured issuer, no leeway;
- ``aud`` one of the configured audiences; a token without ``aud`` (a Cognito access token) must
  carry one of them as ``client_id`` instead. API Gateway reads ``client_id`` only when ``aud`` is
  absent, and so does this module;
- ``sub`` required: the caller is ``iss`` + ``sub`` (``functions.api.identity``), and the HTTP API
  answers 401 to a token without one.

Why here rather than in ``core``: the rules are API Gateway's (a deployment concern ``core`` knows
nothing of), only a Lambda entry point uses them (``authorize`` below builds the authorizer's answer),
and the authorizer imports PyJWT and this module alone, so its cold start does not pay for ``core``'s
imports.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

#: Signature algorithms accepted (asymmetric only: a symmetric one would let a public key sign).
ALGORITHMS = ("RS256", "ES256")
#: The path of the issuer's OpenID Connect discovery document.
DISCOVERY_PATH = "/.well-known/openid-configuration"


class InvalidToken(Exception):
    """The token is refused; the message says why (never the token itself)."""


class IssuerUnavailable(Exception):
    """The issuer's discovery document or key set could not be read (a server-side failure, not the caller's)."""


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims were checked.

    Attributes:
        claims: Every claim of the token, as signed.
        scopes: The OAuth scopes it carries (``scope``, space-separated, or ``scp``), as API Gateway lists them.
    """

    claims: dict[str, Any]
    scopes: list[str]


class JwtVerifier:
    """Verifies JWTs of one issuer for a set of audiences (module docstring).

    Args:
        issuer: The ``iss`` every token must carry, and where its discovery document lives.
        audiences: Accepted ``aud`` (or ``client_id``) values; at least one.
        timeout_s: Seconds to wait for the issuer's discovery document and key set, each.
        jwks_lifespan_s: Seconds a fetched key set is used before it is fetched again.
        jwks_cooldown_s: Seconds after a fetch during which an unknown ``kid`` is refused without a new fetch.

    Raises:
        ValueError: no issuer or no audience.
    """

    def __init__(
        self,
        issuer: str,
        audiences: Iterable[str],
        *,
        timeout_s: float = 5.0,
        jwks_lifespan_s: float = 300.0,
        jwks_cooldown_s: float = 30.0,
    ) -> None:
        self.issuer = issuer  # compared with iss as it is, trailing slash and all (as API Gateway does)
        self.audiences = frozenset(a for a in audiences if a)
        if not issuer or not self.audiences:
            raise ValueError("a JWT verifier needs an issuer and at least one audience")
        self.timeout_s = timeout_s
        self.jwks_lifespan_s = jwks_lifespan_s
        self.jwks_cooldown_s = jwks_cooldown_s
        self._jwks: jwt.PyJWKClient | None = None

    def verify(self, token: str | None) -> VerifiedToken:
        """The token's claims and scopes, once every check of the module docstring passed.

        Raises:
            InvalidToken: missing, malformed, wrongly signed, expired, not yet valid, another issuer or audience,
                an algorithm other than RS256/ES256, an unknown ``kid``, no ``sub``.
            IssuerUnavailable: the issuer's discovery document or key set could not be fetched or read.
        """
        if not token:
            raise InvalidToken("no token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(f"algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid in the token's header")
        key = self._signing_key(kid)
        if key.algorithm_name != algorithm:
            raise InvalidToken(f"key {kid!r} is for {key.algorithm_name}, the token says {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        self._check_audience(claims)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("sub is not a non-empty string")
        return VerifiedToken(claims=claims, scopes=_scopes(claims))

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        """API Gateway's rule: ``aud`` when present (a string or a list), else ``client_id``."""
        if "aud" in claims:
            aud = claims["aud"]
            values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not self.audiences.intersection(v for v in values if isinstance(v, str)):
                raise InvalidToken("aud is not an accepted audience")
        elif claims.get("client_id") not in self.audiences:
            raise InvalidToken("no aud, and client_id is not an accepted audience")

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._client().get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise IssuerUnavailable(f"the issuer's key set could not be fetched: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            if "matches" in str(exc):  # PyJWT: 'Unable to find a signing key that matches: "<kid>"'
                raise InvalidToken(f"no key {kid!r} in the issuer's key set") from None
            raise IssuerUnavailable(f"the issuer's key set is unusable: {exc}") from exc
        except jwt.PyJWTError as exc:  # a malformed key set (PyJWKSetError)
            raise IssuerUnavailable(f"the issuer's key set is unusable: {exc}") from exc

    def _client(self) -> jwt.PyJWKClient:
        """The key set's client, made on first use from the issuer's discovery document (kept per container)."""
        if self._jwks is None:
            jwks_uri = self._discover()
            self._jwks = jwt.PyJWKClient(
                jwks_uri,
                cache_jwk_set=True,
                lifespan=self.jwks_lifespan_s,
                timeout=self.timeout_s,
                cooldown_duration=self.jwks_cooldown_s,
            )
        return self._jwks

    def _discover(self) -> str:
        """``jwks_uri`` of the issuer's discovery document.

        Raises:
            IssuerUnavailable: unreachable, not JSON, another ``issuer``, or no http(s) ``jwks_uri``.
        """
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310 (the configured issuer)
                document = json.load(response)
        except (OSError, ValueError) as exc:
            raise IssuerUnavailable(f"{url} could not be read: {exc}") from exc
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"{url} is not a JSON object")
        if document.get("issuer") != self.issuer:
            raise IssuerUnavailable(f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise IssuerUnavailable(f"{url} has no http(s) jwks_uri")
        return jwks_uri


def _scopes(claims: Mapping[str, Any]) -> list[str]:
    """The token's scopes: ``scope`` (space-separated, RFC 8693) or ``scp`` (a list or a string)."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


# -- the Lambda authorizer's answer (functions.ws_authorizer) ------------------------------------

#: The query string parameter that carries the JWT (the template's identity source).
TOKEN_PARAMETER = "token"


def verifier_from_env(environ: Mapping[str, str] = os.environ) -> JwtVerifier:
    """The verifier of ``JWT_ISSUER`` and ``JWT_AUDIENCE`` (comma-separated).

    Raises:
        ValueError: either is missing or empty (the message names it).
    """
    issuer = environ.get("JWT_ISSUER", "").strip()
    audiences = [a.strip() for a in environ.get("JWT_AUDIENCE", "").split(",") if a.strip()]
    if not issuer:
        raise ValueError("JWT_ISSUER: the issuer of the accepted JWTs is required")
    if not audiences:
        raise ValueError("JWT_AUDIENCE: at least one accepted audience is required")
    return JwtVerifier(issuer, audiences)


def authorize(event: Mapping[str, Any], verifier: JwtVerifier) -> dict[str, Any]:
    """The authorizer's answer to one ``$connect``: Allow with the claims as context, or Deny.

    ``functions.ws_authorizer``'s docstring has the answer's shape and how the stream's events use it.

    Args:
        event: API Gateway's WebSocket ``REQUEST`` authorizer input (``methodArn``, ``queryStringParameters``).
        verifier: The issuer's verifier, kept for the container's life.

    Raises:
        functions.jwt_verifier.IssuerUnavailable: the issuer's keys could not be read (API Gateway answers 500).
    """
    method_arn = str(event.get("methodArn") or "")
    token = (event.get("queryStringParameters") or {}).get(TOKEN_PARAMETER)
    try:
        verified = verifier.verify(token)
    except InvalidToken as exc:
        logger.info("connection refused: %s", exc)
        return _policy("anonymous", "Deny", method_arn)
    answer = _policy(verified.claims["sub"], "Allow", method_arn)
    answer["context"] = {"claims": json.dumps(verified.claims), "scopes": " ".join(verified.scopes)}
    return answer


def _policy(principal: str, effect: str, method_arn: str) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
    return {"principalId": principal, "policyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
