"""Knowledge settings of one agent, read with ``runtime.get_setting`` (character secrets, character
settings, runtime settings, environment), units in the names:

| setting | default | meaning |
|---|---|---|
| ``KNOWLEDGE_CHUNK_CHARS`` | ``400`` | longest fragment, characters (~90 tokens of English); at least 50 |
| ``KNOWLEDGE_CHUNK_OVERLAP_CHARS`` | ``80`` | characters a fragment repeats from the end of the one |
| | | before (whole sentences when they fit); at most half a fragment |
| ``KNOWLEDGE_MATCH_THRESHOLD`` | ``0.25`` | least cosine similarity (-1 to 1) of a fragment put in the prompt |
| ``KNOWLEDGE_MATCH_COUNT`` | ``5`` | most fragments put in the prompt (1 to 50) |
| ``KNOWLEDGE_MAX_DOCUMENT_BYTES`` | ``2097152`` | largest document, bytes of UTF-8 (2 MiB); larger ones |
| | | are refused (HTTP 413, or "rejected" by an import) |
| ``KNOWLEDGE_PATH`` | current directory | folder that a character's relative ``knowledge`` paths |
| | | are resolved against |

Why these defaults: ``core.knowledge``. A malformed or out-of-range value is a
``ConfigurationError`` naming the setting, raised when the feature reads it (an import, a
document upload, the KNOWLEDGE provider, whose failure leaves only its part of the prompt empty).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.settings.groups import AgentSetting, SettingsGroup

DEFAULT_CHUNK_CHARS = 400
DEFAULT_OVERLAP_CHARS = 80
DEFAULT_MATCH_THRESHOLD = 0.25
DEFAULT_MATCH_COUNT = 5
DEFAULT_MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
#: Bounds that keep a setting from making a turn or an import absurd.
MIN_CHUNK_CHARS = 50
MAX_MATCH_COUNT = 50


class KnowledgeSettings(SettingsGroup):
    """The knowledge settings of one agent (see the module docstring).

    Attributes:
        chunk_chars: Longest fragment, characters (``KNOWLEDGE_CHUNK_CHARS``).
        overlap_chars: Overlap between consecutive fragments, characters (``KNOWLEDGE_CHUNK_OVERLAP_CHARS``).
        match_threshold: Least cosine similarity of a retrieved fragment (``KNOWLEDGE_MATCH_THRESHOLD``).
        match_count: Most fragments retrieved (``KNOWLEDGE_MATCH_COUNT``).
        max_document_bytes: Largest document, bytes of UTF-8 (``KNOWLEDGE_MAX_DOCUMENT_BYTES``).
    """

    chunk_chars: int = Field(default=DEFAULT_CHUNK_CHARS, ge=MIN_CHUNK_CHARS, validation_alias="KNOWLEDGE_CHUNK_CHARS")
    overlap_chars: int = Field(default=DEFAULT_OVERLAP_CHARS, ge=0, validation_alias="KNOWLEDGE_CHUNK_OVERLAP_CHARS")
    match_threshold: float = Field(
        default=DEFAULT_MATCH_THRESHOLD, ge=-1.0, le=1.0, validation_alias="KNOWLEDGE_MATCH_THRESHOLD"
    )
    match_count: int = Field(
        default=DEFAULT_MATCH_COUNT, ge=1, le=MAX_MATCH_COUNT, validation_alias="KNOWLEDGE_MATCH_COUNT"
    )
    max_document_bytes: int = Field(
        default=DEFAULT_MAX_DOCUMENT_BYTES, ge=1, validation_alias="KNOWLEDGE_MAX_DOCUMENT_BYTES"
    )

    @model_validator(mode="after")
    def _overlap_within_half(self) -> KnowledgeSettings:
        # More overlap than half a fragment would make each fragment mostly a copy of the last.
        if self.overlap_chars > self.chunk_chars // 2:
            raise ValueError(
                f"KNOWLEDGE_CHUNK_OVERLAP_CHARS: must be at most half of KNOWLEDGE_CHUNK_CHARS "
                f"({self.chunk_chars // 2}), got {self.overlap_chars}"
            )
        return self


#: Folder that relative ``knowledge`` paths of a character are resolved against ("": the current directory).
KNOWLEDGE_PATH = AgentSetting("KNOWLEDGE_PATH", str, "")
