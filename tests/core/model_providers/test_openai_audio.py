"""OpenAI TRANSCRIPTION (multipart upload) and TEXT_TO_SPEECH (binary answer), through httpx.MockTransport."""

from __future__ import annotations

import httpx
import pytest

from core.errors import ModelError
from core.model_providers import openai
from core.types import ModelType
from tests.core.model_providers.conftest import FakeRuntime, json_response, recorded, recorded_json

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"
SETTINGS = {"OPENAI_API_KEY": KEY}
#: Stands for an mp3 body: an ID3 tag header, then frame bytes (the endpoint answers raw audio).
SPEECH = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xf3\x84\xc4" + bytes(range(64))


@pytest.fixture
def handler(resources):
    """``handler(model_type)``: the handler the plugin registers for it, on the test's resources."""

    def find(model_type: ModelType):
        plugin = openai.build_plugin({"OPENAI_API_KEY": KEY}, resources)
        return next(m.handler for m in plugin.models if m.model_type is model_type)

    return find


async def test_transcription_uploads_the_audio_as_multipart_and_returns_the_text(mock_http, handler):
    recorder = mock_http(json_response(recorded("openai/audio_transcriptions.response.json")))
    audio = b"OggS\x00\x02" + bytes(200)
    text = await handler(ModelType.TRANSCRIPTION)(
        FakeRuntime(SETTINGS), {"audio": audio, "mime_type": "audio/ogg", "language": "en"}
    )
    assert text == recorded_json("openai/audio_transcriptions.response.json")["text"]
    request = recorder.requests[0]
    assert request.url.path == "/v1/audio/transcriptions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.content
    assert b'name="file"; filename="recording.ogg"' in body and audio in body
    assert b'name="model"\r\n\r\ngpt-4o-mini-transcribe' in body
    assert b'name="language"\r\n\r\nen' in body


async def test_transcription_model_comes_from_its_setting_and_plain_text_formats_are_read_as_is(mock_http, handler):
    recorder = mock_http(httpx.Response(200, content=b"hello there\n", headers={"content-type": "text/plain"}))
    runtime = FakeRuntime({**SETTINGS, "OPENAI_TRANSCRIPTION_MODEL": "whisper-1"})
    text = await handler(ModelType.TRANSCRIPTION)(runtime, {"audio": b"\x00\x01", "response_format": "text"})
    assert text == "hello there\n"
    assert b'name="model"\r\n\r\nwhisper-1' in recorder.requests[0].content


async def test_transcription_without_audio_fails_at_once_and_calls_nobody(mock_http, handler):
    recorder = mock_http()
    with pytest.raises(ModelError, match="TRANSCRIPTION needs the audio") as caught:
        await handler(ModelType.TRANSCRIPTION)(FakeRuntime(SETTINGS), {"audio": "not bytes"})
    assert caught.value.retryable is False and recorder.requests == []


async def test_text_to_speech_sends_elizaos_defaults_and_returns_the_audio_bytes(mock_http, handler):
    recorder = mock_http(httpx.Response(200, content=SPEECH, headers={"content-type": "audio/mpeg"}))
    runtime = FakeRuntime({**SETTINGS, "OPENAI_TTS_INSTRUCTIONS": "Speak warmly."})
    audio = await handler(ModelType.TEXT_TO_SPEECH)(runtime, {"text": "Hello from Eliza."})
    assert audio == SPEECH
    assert recorder.requests[0].url.path == "/v1/audio/speech"
    assert recorder.json() == {
        "model": "gpt-4o-mini-tts",
        "input": "Hello from Eliza.",
        "voice": "nova",
        "instructions": "Speak warmly.",
    }


async def test_text_to_speech_takes_voice_format_and_model_from_params_and_settings(mock_http, handler):
    recorder = mock_http(httpx.Response(200, content=b"RIFF....WAVE", headers={"content-type": "audio/wav"}))
    runtime = FakeRuntime({**SETTINGS, "OPENAI_TTS_MODEL": "tts-1", "OPENAI_TTS_VOICE": "alloy"})
    audio = await handler(ModelType.TEXT_TO_SPEECH)(runtime, {"text": "hi", "format": "wav", "voice": "echo"})
    assert audio == b"RIFF....WAVE"
    assert recorder.json() == {"model": "tts-1", "input": "hi", "voice": "echo", "response_format": "wav"}


async def test_a_refused_speech_request_is_a_typed_error_without_the_text_or_key(mock_http, handler):
    refusal = recorded("openai/chat_completions.error_400.response.json")
    mock_http(json_response(refusal, status=400))
    secret_text = "my private sentence"
    with pytest.raises(ModelError) as caught:
        await handler(ModelType.TEXT_TO_SPEECH)(FakeRuntime(SETTINGS), {"text": secret_text})
    assert caught.value.retryable is False
    assert secret_text not in str(caught.value) and KEY not in str(caught.value)
