"""OpenAI's non-text model types: IMAGE_DESCRIPTION, IMAGE, TRANSCRIPTION and TEXT_TO_SPEECH.

As elizaOS ``plugin-openai`` 1.x serves them:

- IMAGE_DESCRIPTION (chat completions with an image part) takes an image URL (``params`` a
  string, or ``{"image_url"|"imageUrl", "prompt"?}``) and returns ``{"title", "description"}``;
- IMAGE (``images/generations``) takes ``{"prompt", "n"?, "size"?}`` and returns ``[{"url"}]``;
- TRANSCRIPTION (``audio/transcriptions``, a multipart upload) takes ``{"audio": bytes,
  "mime_type"|"mimeType"?, "language"?, "prompt"?, "temperature"?, "response_format"?}`` and
  returns the text (elizaOS also takes a bare ``Buffer``; our registry passes a mapping);
- TEXT_TO_SPEECH (``audio/speech``) takes ``{"text", "voice"?, "format"?, "instructions"?}``
  (or the text alone) and returns the audio as ``bytes`` (elizaOS returns a stream; a Lambda
  turn holds the whole answer anyway).

Models: ``OPENAI_IMAGE_DESCRIPTION_MODEL`` (default ``gpt-4o-mini``), ``OPENAI_IMAGE_MODEL``
(``dall-e-3``), ``OPENAI_TRANSCRIPTION_MODEL`` (``gpt-4o-mini-transcribe``), ``OPENAI_TTS_MODEL``
(``gpt-4o-mini-tts``); ``OPENAI_TTS_VOICE`` (``nova``), ``OPENAI_TTS_INSTRUCTIONS`` (none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from core.errors import ModelError
from core.model_providers.http import HttpClient, ProviderError, error_from_response
from core.model_providers.usage import Usage

#: elizaOS plugin-openai's default prompt for IMAGE_DESCRIPTION.
DESCRIBE_PROMPT = "Please analyze this image and provide a title and detailed description."
MEDIA_DEFAULTS = {
    "IMAGE_DESCRIPTION": "gpt-4o-mini",
    "IMAGE": "dall-e-3",
    "TRANSCRIPTION": "gpt-4o-mini-transcribe",
    "TEXT_TO_SPEECH": "gpt-4o-mini-tts",
}
#: The setting naming each type's model (elizaOS's names: TTS is not TEXT_TO_SPEECH).
MODEL_SETTINGS = {"TEXT_TO_SPEECH": "OPENAI_TTS_MODEL"}
DEFAULT_VOICE = "nova"
#: File name extension sent for an upload's MIME type (the API reads the format from it).
AUDIO_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}
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
    return title_and_description(text), usage


def title_and_description(text: str) -> dict[str, str]:
    """elizaOS plugin-openai's reading of an image description: a ``Title:`` line, the rest the description."""
    match = _TITLE.search(text)
    title = match.group(1).strip() if match else "Image Analysis"
    description = _TITLE.sub("", text, count=1).strip() if match else text.strip()
    return {"title": title, "description": description}


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


def transcription_form(model: str, params: Mapping[str, Any] | bytes) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``audio/transcriptions`` multipart parts: ``(files, data)`` for ``httpx``.

    Args:
        model: The transcription model.
        params: ``{"audio": bytes, ...}`` (see the module docstring), or the bytes alone.

    Raises:
        ModelError: no audio, or audio that is not bytes (not retryable).
    """
    options: Mapping[str, Any] = {"audio": params} if isinstance(params, bytes | bytearray) else params
    audio = options.get("audio")
    if not isinstance(audio, bytes | bytearray) or not audio:
        raise ModelError("openai: TRANSCRIPTION needs the audio as bytes", provider="openai")
    mime = str(options.get("mime_type") or options.get("mimeType") or "audio/mpeg")
    filename = f"recording.{AUDIO_EXTENSIONS.get(mime.split(';')[0].strip().lower(), 'mp3')}"
    data = {"model": model}
    for key in ("language", "prompt", "temperature", "response_format"):
        if options.get(key) is not None:
            data[key] = str(options[key])
    return {"file": (filename, bytes(audio), mime)}, data


def transcript_of(content: bytes, response_format: str | None) -> str:
    """The text of a transcription answer: JSON ``{"text"}`` (json, verbose_json), else the body itself."""
    if response_format in (None, "json", "verbose_json"):
        data = json.loads(content)
        return str(data["text"])
    return content.decode()


def speech_body(
    runtime_setting: Callable[[str, str], str], model: str, params: Mapping[str, Any] | str
) -> dict[str, Any]:
    """The ``audio/speech`` JSON body.

    Args:
        runtime_setting: ``(name, default) -> value`` (the runtime's settings).
        model: The speech model.
        params: The text, or ``{"text", "voice"?, "format"?, "instructions"?, "speed"?}``.

    Raises:
        ModelError: no text (not retryable).
    """
    options: Mapping[str, Any] = {"text": params} if isinstance(params, str) else params
    text = options.get("text") or options.get("input")
    if not text:
        raise ModelError("openai: TEXT_TO_SPEECH needs text", provider="openai")
    body: dict[str, Any] = {
        "model": model,
        "input": str(text),
        "voice": str(options.get("voice") or runtime_setting("OPENAI_TTS_VOICE", DEFAULT_VOICE)),
    }
    instructions = options.get("instructions") or runtime_setting("OPENAI_TTS_INSTRUCTIONS", "")
    if instructions:
        body["instructions"] = str(instructions)
    fmt = options.get("format") or options.get("response_format")
    if fmt:
        body["response_format"] = str(fmt)
    if options.get("speed") is not None:
        body["speed"] = float(options["speed"])
    return body


async def post_raw(
    client: HttpClient, url: str, *, headers: Mapping[str, str], secrets: Sequence[str], **request: Any
) -> bytes:
    """POST with retries and typed errors, returning the raw body (a multipart upload, a binary answer).

    Args:
        client: The process's HTTP client (``HttpClient``: its retries and timeouts).
        url: Full URL.
        headers: Authentication and more.
        secrets: Values to scrub from error messages.
        request: ``httpx`` request arguments (``files``, ``data``, ``json``).

    Raises:
        ModelError: as ``HttpClient.post_json``'s (4xx not retryable but 408/409/429; 5xx and
            transport errors retryable).
    """

    async def attempt() -> bytes:
        try:
            response = await client.client().post(url, headers=dict(headers), **request)
        except httpx.TransportError as exc:
            name = type(exc).__name__
            raise ProviderError(f"openai: {name} talking to the provider", provider="openai", retryable=True) from None
        if response.status_code >= 400:
            raise error_from_response("openai", response.status_code, response.headers, response.content, secrets)
        return response.content

    return await client.with_retries(attempt)
