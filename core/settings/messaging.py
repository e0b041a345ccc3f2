"""Per-agent settings of a message turn (``core.messaging``), read with ``runtime.setting``.

| variable | default | what |
|---|---|---|
| ``USE_MULTI_STEP`` | ``false`` | plan and run actions step by step (elizaOS multi-step) |
| ``MAX_MULTISTEP_ITERATIONS`` | ``6`` | steps of one multi-step turn (1 to 50) |
| ``RUN_TIMEOUT_S`` | ``300`` | a turn longer than this (s) ends with RUN_TIMEOUT (1 to 3600) |
| ``ALWAYS_RESPOND_CHANNELS`` | empty | room types answered without a should-respond decision, comma-separated |
| ``ALWAYS_RESPOND_SOURCES`` | empty | message sources answered without a decision (substring match), comma-separated |

elizaOS's run timeout is one hour; a Lambda invocation lasts at most 15 minutes and an API
Gateway request 30 s, so the default here is 300 s: a turn that hangs ends itself, emits
``RUN_TIMEOUT`` and closes its run before Lambda would kill the process mid-write.
"""

from __future__ import annotations

from core.settings.groups import AgentSetting

USE_MULTI_STEP = AgentSetting("USE_MULTI_STEP", bool, False)
MAX_MULTISTEP_ITERATIONS = AgentSetting("MAX_MULTISTEP_ITERATIONS", int, 6, minimum=1, maximum=50)
RUN_TIMEOUT_S = AgentSetting("RUN_TIMEOUT_S", float, 300.0, minimum=1.0, maximum=3600.0)
#: elizaOS also reads the older names ``SHOULD_RESPOND_BYPASS_TYPES`` / ``_SOURCES``.
ALWAYS_RESPOND_CHANNELS = AgentSetting("ALWAYS_RESPOND_CHANNELS", str, "")
ALWAYS_RESPOND_SOURCES = AgentSetting("ALWAYS_RESPOND_SOURCES", str, "")
SHOULD_RESPOND_BYPASS_TYPES = AgentSetting("SHOULD_RESPOND_BYPASS_TYPES", str, "")
SHOULD_RESPOND_BYPASS_SOURCES = AgentSetting("SHOULD_RESPOND_BYPASS_SOURCES", str, "")


def setting_list(value: str) -> list[str]:
    """elizaOS ``normalizeEnvList``: ``"[a, b]"`` or ``"a,b"`` → ``["a", "b"]``, lower-cased."""
    cleaned = value.strip().removeprefix("[").removesuffix("]")
    return [v.strip().lower() for v in cleaned.split(",") if v.strip()]
