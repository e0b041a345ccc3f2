"""The HTTP function (API Gateway HTTP API, payload 2.0) as Powertools routers.

- ``app``: the init phase (container, orchestrator), the resolver with every router included,
  the error handlers (registered once) and the Lambda ``handler``.
- ``context``: what a route needs (container, orchestrator, observability), per request.
- ``events``: the API Gateway event before the resolver sees it (body size, base64, agent).
- ``screening``: input no route can store (NUL, lone surrogates, NaN, deep nesting), refused with a 4xx.
- ``responses``: JSON responses and the one error shape, ``{"error", "message", "fields"?}``.
- One router per resource: ``health``, ``agents``, ``messages``, ``rooms``, ``memories``,
  ``tasks``, ``documents``, ``facts``, ``plugins`` (plugins' own routes), ``openapi``.
"""
