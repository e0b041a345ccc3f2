"""Real input written elsewhere, kept in the repo so that a clean clone runs every test.

Files here are byte-for-byte copies (``README.md`` in this folder names the source and
license of each); tests read them, never write them. Point a test at these constants, not
at a path of its own, so the data has one home.
"""

from __future__ import annotations

from pathlib import Path

#: This folder.
DATA_DIR = Path(__file__).resolve().parent
#: elizaOS character files: 0.x and 1.x formats, a list of three, an empty file.
CHARACTERS = DATA_DIR / "characters"
#: Recorded provider traffic: ``<provider>/<endpoint>.<case>.(request|response).*``.
PROVIDERS = DATA_DIR / "providers"
#: One hour of the real #ubuntu IRC log (CC-BY-4.0) with the corpus's README and license.
UBUNTU_IRC = DATA_DIR / "conversations" / "ubuntu_irc"
#: The log itself: ``[HH:MM] <nick> text`` lines and ``===`` system lines.
IRC_LOG = UBUNTU_IRC / "2004-11-15_03.raw.txt"
#: A frozen copy of the project's docs/architecture.md (2026-12-03): the knowledge tests' real long
#: document. A copy, so that editing the docs never moves the retrieval tests' measured floors.
ARCHITECTURE_DOC = DATA_DIR / "knowledge" / "architecture.md"
