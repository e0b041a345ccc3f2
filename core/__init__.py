"""An elizaOS-style agent runtime built for AWS Lambda.

The package is importable without any local-only extra: model providers that
need llama.cpp or ONNX Runtime import them lazily.
"""

from __future__ import annotations
