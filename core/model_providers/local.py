"""The embedded default's models as a plugin: SmolLM2 for text, MiniLM for embeddings.

SmolLM2-135M gives a sensible one-line in-character reply but does not follow the action
format (asked for it, it picks IGNORE with no text), so its text handlers do not claim
``structured_output``: the pipeline asks it for plain replies.

The text model runs in a child process (``local_text``); the embedding model (ONNX Runtime)
runs in this process.
"""

from __future__ import annotations

from core.errors import ConfigurationError, ModelError
from core.model_providers import local_embedding, local_text
from core.plugin import ModelRegistration, Plugin
from core.types import ModelType


def preload() -> None:
    """Load both models now (in the init phase) rather than on the first request.

    Starts the text model's child process and waits until its model is loaded and has
    generated its first token.

    Raises:
        ConfigurationError: a model file is missing, unreadable or refused by llama.cpp (the
            message names the path), a setting is invalid, or the text model's process died
            or hung while loading (a llama.cpp built for another CPU dies with SIGILL or
            SIGSEGV): whatever stops the models from starting is a start-up error.
    """
    try:
        local_text.get_model().start()
    except ModelError as exc:
        raise ConfigurationError(str(exc)) from exc
    local_embedding.get_model()


plugin = Plugin(
    name="local",
    description="Local llama.cpp text model (in a child process) and ONNX embedding model (no API key).",
    models=(
        ModelRegistration(ModelType.TEXT_SMALL, local_text.generate_text, priority=-10),
        ModelRegistration(ModelType.TEXT_LARGE, local_text.generate_text, priority=-10),
        ModelRegistration(ModelType.TEXT_EMBEDDING, local_embedding.embed, priority=-10),
        ModelRegistration(ModelType.TEXT_TOKENIZER_ENCODE, local_text.tokenize, priority=-10),
        ModelRegistration(ModelType.TEXT_TOKENIZER_DECODE, local_text.detokenize, priority=-10),
    ),
)
