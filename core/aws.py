"""The process's AWS SDK clients, made from one shared botocore session.

Each new boto3 ``Session`` starts from nothing: it parses botocore's ``endpoints.json``
(1.2 MB) and lists its 400-odd service directories before its first client exists, about
30-45 ms of a cold start on this machine. The SQS, Secrets Manager, SSM and Bedrock clients a
function needs are all made from one session instead, so that work is done once per container.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3

_session: boto3.session.Session | None = None
_lock = threading.Lock()  # a boto3 Session may not make clients on two threads at once


def client(service_name: str, **kwargs: Any) -> Any:
    """A new boto3 client for ``service_name`` from the process's shared session.

    Args:
        service_name: The botocore service name (``"sqs"``, ``"secretsmanager"``...).
        **kwargs: Passed to ``boto3.session.Session.client`` (``region_name``,
            ``endpoint_url``, ``config``...). Region, credentials and ``AWS_ENDPOINT_URL_*``
            come from the environment as for ``boto3.client``.

    Returns:
        The client (thread-safe once made, as boto3 documents).

    Raises:
        botocore.exceptions.UnknownServiceError: ``service_name`` is not a botocore service.
        botocore.exceptions.NoRegionError: no region is configured.
    """
    global _session
    with _lock:
        if _session is None:
            import boto3  # imported here: not every function talks to AWS

            _session = boto3.session.Session()
        return _session.client(service_name, **kwargs)
