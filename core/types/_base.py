"""The base model: snake_case in Python, elizaOS camelCase on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ElizaModel(BaseModel):
    """Pydantic base for elizaOS types.

    Fields are snake_case in Python and camelCase in JSON (``model_dump(by_alias=True)``),
    and either spelling is accepted on input. Unknown keys are kept (elizaOS content and
    metadata are open-ended).
    """

    # defer_build: a model's validator is built on first use, not at import (cold start: most
    # functions never touch most types).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The elizaOS JSON shape: camelCase keys, ``None`` fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
