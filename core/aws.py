"""The process's AWS SDK clients, made from one shared botocore session.

Each new session starts from nothing: it parses botocore's ``endpoints.json`` (1.2 MB, about
20 ms on this machine) before its first client exists. The SQS, Secrets Manager, SSM and
Bedrock clients a function needs are all made from one session instead, so that work is done
once per container.

The session is botocore's (``botocore.session.Session``), not boto3's: a boto3 client *is* a
botocore client (boto3 only adds resources and S3/DynamoDB conveniences, none used here), and
``import boto3`` adds to botocore its own modules and s3transfer (82 ms of its 119 ms import,
for S3 alone): 2.4-3 MiB of resident memory in the messages function (``bench/memory_rss.py``).
Region, credentials, ``AWS_ENDPOINT_URL_*`` and the other ``AWS_*`` settings are resolved by
botocore either way. Everything used is botocore's public
API (``bench/cold_start.py`` counts the clients' creation in the floor, as the SDK's own cost).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import botocore.session


class AwsClients:
    """AWS SDK clients from one botocore session, made when the first client is asked for.

    The process has one (``PROCESS``), used by default by the container, the database
    credentials and the model providers; tests make their own instead of resetting it.
    """

    def __init__(self) -> None:
        self._session: botocore.session.Session | None = None
        self._lock = threading.Lock()  # a botocore Session may not make clients on two threads at once

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A new client for ``service_name`` from this object's session.

        Args:
            service_name: The botocore service name (``"sqs"``, ``"secretsmanager"``...).
            **kwargs: Passed to ``botocore.session.Session.create_client`` (``region_name``,
                ``endpoint_url``, ``config``...). Region, credentials and ``AWS_ENDPOINT_URL_*``
                come from the environment as for ``boto3.client``.

        Returns:
            The client, the same class a boto3 session would make (thread-safe once made).

        Raises:
            botocore.exceptions.UnknownServiceError: ``service_name`` is not a botocore service.
            botocore.exceptions.NoRegionError: no region is configured.
        """
        with self._lock:
            if self._session is None:
                import botocore.session  # imported here: not every function talks to AWS

                self._session = botocore.session.get_session()
            return self._session.create_client(service_name, **kwargs)


def fail_fast_config(budget_s: float) -> Any:
    """Client options for a call that must not hold up a reply: one attempt, short timeouts.

    botocore's defaults (60 s connect and read timeouts, up to 5 attempts in legacy mode) let
    one SQS call to an endpoint that accepts connections and never answers block for minutes.

    Args:
        budget_s: Seconds allowed to connect and, separately, to read the answer.

    Returns:
        A ``botocore.config.Config`` for ``AwsClients.client(..., config=...)``.
    """
    from botocore.config import Config  # imported here: not every function talks to AWS

    return Config(
        connect_timeout=budget_s,
        read_timeout=budget_s,
        retries={"mode": "standard", "total_max_attempts": 1},
    )


#: The process's clients: one session for every AWS client a function makes.
PROCESS = AwsClients()


def client(service_name: str, **kwargs: Any) -> Any:
    """``PROCESS.client(service_name, **kwargs)``: a client from the process's shared session."""
    return PROCESS.client(service_name, **kwargs)
