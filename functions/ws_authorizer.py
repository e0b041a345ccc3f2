"""Lambda REQUEST authorizer of the WebSocket API's ``$connect``: the HTTP API's JWTs, checked the same way.

API Gateway calls it once per connection (``template.yaml``: ``StreamAuthorizer``), with the token in
the query string, ``wss://.../live?token=<JWT>`` (``functions.jwt_verifier.TOKEN_PARAMETER``;
``docs/deploy.md``, "Streamed replies", says why not the ``Sec-WebSocket-Protocol`` header).
``functions.jwt_verifier`` checks it against ``JWT_ISSUER`` and ``JWT_AUDIENCE`` (comma-separated),
the template's ``JwtIssuer`` and ``JwtAudience``, the very parameters of the HTTP API's JWT authorizer.

Answer (API Gateway's Lambda authorizer output):

- a valid token: ``Allow`` ``execute-api:Invoke`` on the event's ``methodArn`` (this API, stage and
  ``$connect`` only), ``principalId`` the token's ``sub``, and a ``context`` of strings, the only
  kind of value a context may hold: ``claims`` (every claim, as JSON) and ``scopes``
  (space-separated). API Gateway hands that context to every event of the connection, flattened
  into ``requestContext.authorizer`` (``{"principalId", "claims", "scopes"}``), where
  ``functions.api.streaming.websocket_to_http`` reads ``claims`` and ``functions.api.identity``
  maps the caller exactly as for the HTTP API (its roles read the scopes from the ``scope``/``scp``
  claims, as API Gateway's ``scopes`` come from them too);
- any refused token: ``Deny`` (API Gateway answers 403 and opens no connection); the reason is
  logged, never the token;
- the issuer unreachable: an error, so API Gateway answers 500 and the function's errors show it.

The logic is ``functions.jwt_verifier`` (``authorize``); this module is the init phase and the entry
point. Settings are read once, in the init phase: a missing ``JWT_ISSUER`` or ``JWT_AUDIENCE`` fails the
init (the deploy sets both).
"""

from __future__ import annotations

from typing import Any

from functions import end_init_phase
from functions.jwt_verifier import authorize, verifier_from_env

verifier = verifier_from_env()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: the API Gateway WebSocket ``REQUEST`` authorizer event → its policy (``authorize``)."""
    return authorize(event, verifier)


end_init_phase()  # last: resumes the collector paused by functions/__init__.py
