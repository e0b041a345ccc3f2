"""The embedded default's models as a plugin: SmolLM2 for text, MiniLM for embeddings.

SmolLM2-135M gives a sensible one-line in-character reply but does not follow the action
format (asked for it, it picks IGNORE with no text), so its text handlers do not claim
``structured_output``: the pipeline asks it for plain replies.
"""

from __future__ import annotations

from core.model_providers import local_embedding, local_text
from core.plugin import ModelRegistration, Plugin
from core.types import ModelType


def preload() -> None:
    """Load both models now (in the init phase) rather than on the first request."""
    local_text.get_model()
    local_embedding.get_model()


plugin = Plugin(
    name="local",
    description="Local llama.cpp text model and ONNX embedding model (no API key).",
    models=(
        ModelRegistration(ModelType.TEXT_SMALL, local_text.generate_text, priority=-10),
        ModelRegistration(ModelType.TEXT_LARGE, local_text.generate_text, priority=-10),
        ModelRegistration(ModelType.TEXT_EMBEDDING, local_embedding.embed, priority=-10),
    ),
)
