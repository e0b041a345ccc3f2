"""A stand-in for the Lambda context object, for running handlers locally.

Handlers and Powertools read a handful of attributes from the context that the Lambda
runtime passes as the second handler argument; this module provides exactly those, so the
local stack can call the very same ``handler(event, context)`` functions as AWS does.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: The account id moto and the local gateway also use, so ARNs look alike everywhere locally.
LOCAL_ACCOUNT_ID = "123456789012"


@dataclass
class LambdaContext:
    """What the Lambda runtime's context object exposes to a handler.

    Attributes:
        function_name: Name of the function (``AWS_LAMBDA_FUNCTION_NAME``).
        function_version: Version being run; ``$LATEST`` locally.
        invoked_function_arn: ARN the function was invoked with.
        memory_limit_in_mb: Memory configured for the function, in MiB.
        aws_request_id: Unique id of this invocation.
        log_group_name: CloudWatch log group the function would write to.
        log_stream_name: CloudWatch log stream of this "container".
        deadline_monotonic_s: ``time.monotonic()`` value at which the invocation times out,
            in seconds.
        identity: Cognito identity (mobile SDK invocations only); always ``None`` here.
        client_context: Client context (mobile SDK invocations only); always ``None`` here.
        tenant_id: Tenant of a tenant-isolated function; always ``None`` here.
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic_s: float
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = field(default=None)

    def get_remaining_time_in_millis(self) -> int:
        """Time left before the invocation would time out.

        Returns:
            Remaining time in milliseconds, never negative.
        """
        remaining_s = self.deadline_monotonic_s - time.monotonic()
        return max(0, int(remaining_s * 1000))


def _region() -> str:
    """The region to put in ARNs: the one the AWS SDK would use, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _log_stream_name(function_version: str) -> str:
    """A log stream name in Lambda's format: ``YYYY/MM/DD/[version]<32 hex chars>``."""
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{day}/[{function_version}]{uuid.uuid4().hex}"


def new_context(function_name: str, timeout_s: float = 30, memory_mb: int = 1024) -> LambdaContext:
    """Build the context for one invocation, with a fresh request id.

    Args:
        function_name: Name of the function being invoked.
        timeout_s: Function timeout in seconds; the deadline starts now.
        memory_mb: Configured memory in MiB.

    Returns:
        A context whose ``get_remaining_time_in_millis()`` counts down from ``timeout_s``.
    """
    version = "$LATEST"
    return LambdaContext(
        function_name=function_name,
        function_version=version,
        invoked_function_arn=f"arn:aws:lambda:{_region()}:{LOCAL_ACCOUNT_ID}:function:{function_name}",
        memory_limit_in_mb=memory_mb,
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function_name}",
        log_stream_name=_log_stream_name(version),
        deadline_monotonic_s=time.monotonic() + timeout_s,
    )
