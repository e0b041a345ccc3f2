"""The process's AWS SDK clients, made from one shared botocore session.

Each new boto3 ``Session`` starts from nothing: it parses botocore's ``endpoints.json``
(1.2 MB, about 20 ms on this machine) before its first client exists. The SQS, Secrets
Manager, SSM and Bedrock clients a function needs are all made from one session instead, so
that work is done once per container. That session loads the services' models with
``core.botocore_loader.KnownServiceLoader``, which spares the first client botocore's listing
of all 400-odd service directories (about 22 ms more).
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
            _session = _new_session()
        return _session.client(service_name, **kwargs)


def _new_session() -> boto3.session.Session:
    """A boto3 session whose botocore session loads models with ``KnownServiceLoader``."""
    import boto3  # imported here: not every function talks to AWS
    import botocore.session

    from core.botocore_loader import create_loader

    botocore_session = botocore.session.get_session()
    # Registered before boto3's Session adds its own data directory to the loader's search path.
    botocore_session.register_component("data_loader", create_loader(botocore_session.get_config_variable("data_path")))
    return boto3.session.Session(botocore_session=botocore_session)
