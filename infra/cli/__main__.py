"""``python -m infra.cli``: the same as the ``agent`` command."""

from __future__ import annotations

import sys

from infra.cli import main

sys.exit(main())
