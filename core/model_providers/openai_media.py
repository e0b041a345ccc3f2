"""OpenAI's non-text model types: IMAGE_DESCRIPTION (chat with an image) and IMAGE (images/generations).

As elizaOS ``plugin-openai`` serves them: IMAGE_DESCRIPTION takes an image URL (``params`` a string,
or ``{"image_url"|"imageUrl", "prompt"?}``) and returns ``{"title", "description"}``; IMAGE takes
``{"prompt", "n"?, "size"?}`` and returns ``[{"url"}]``. Models: ``OPENAI_IMAGE_DESCRIPTION_MODEL``
(default ``gpt-4o-mini``), ``OPENAI_IMAGE_MODEL`` (``dall-e-3``). TRANSCRIPTION and TEXT_TO_SPEECH
(multipart upload, binary answer) are not served yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.errors import ModelError
from core.model_providers.usage import Usage

#: elizaOS plugin-openai's default prompt for IMAGE_DESCRIPTION.
DESCRIBE_PROMPT = "Please analyze this image and provide a title and detailed description."
MEDIA_DEFAULTS = {"IMAGE_DESCRIPTION": "gpt-4o-mini", "IMAGE": "dall-e-3"}
_TITLE = re.compile(r"title[:\s]+(.+?)(?:\n|$)", re.IGNORECASE)


def image_url_of(params: Mapping[str, Any] | str) -> tuple[str, str]:
    """(image URL, prompt) from elizaOS's IMAGE_DESCRIPTION params.

    Raises:
        ModelError: no image URL (not retryable).
    """
    if isinstance(params, str):
        return params, DESCRIBE_PROMPT
    url = params.get("image_url") or params.get("imageUrl")
    if not url:
        raise ModelError("openai: IMAGE_DESCRIPTION needs image_url", provider="openai")
    return str(url), str(params.get("prompt") or DESCRIBE_PROMPT)


def describe_body(model: str, url: str, prompt: str) -> dict[str, Any]:
    """The chat completion body: one user message with the prompt and the image."""
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 300}


def description_of(data: Mapping[str, Any]) -> tuple[dict[str, str], Usage | None]:
    """``{"title", "description"}`` from a chat completion, as elizaOS reads it (a ``Title:`` line, the rest)."""
    text = str(((data.get("choices") or [{}])[0].get("message") or {}).get("content") or "")
    match = _TITLE.search(text)
    title = match.group(1).strip() if match else "Image Analysis"
    description = _TITLE.sub("", text, count=1).strip() if match else text.strip()
    raw = data.get("usage") or {}
    usage = (
        Usage(
            int(raw.get("prompt_tokens") or 0),
            int(raw.get("completion_tokens") or 0),
            int(raw.get("total_tokens") or 0),
        )
        if raw
        else None
    )
    return {"title": title, "description": description}, usage


def image_body(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The images/generations body.

    Raises:
        ModelError: no prompt (not retryable).
    """
    if not params.get("prompt"):
        raise ModelError("openai: IMAGE needs a prompt", provider="openai")
    return {
        "model": model,
        "prompt": str(params["prompt"]),
        "n": int(params.get("n") or 1),
        "size": str(params.get("size") or "1024x1024"),
    }


def images_of(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """``[{"url"}]`` from an images/generations answer (``b64_json`` answers become ``data:`` URLs)."""
    out = []
    for item in data.get("data") or ():
        url = item.get("url") or (f"data:image/png;base64,{item['b64_json']}" if item.get("b64_json") else None)
        if url:
            out.append({"url": url})
    return out
