"""Size of the Lambda deployment package (what ``sam build`` ships), unzipped and zipped.

Builds the package with ``infra.package`` for Lambda's arm64 / Python 3.12 into a temporary
directory and prints JSON lines: unzipped MB (limit 250 MB, target under 60 MB), zipped MB,
and the five largest entries. Fails if a local-only package got in.

Run: ``.venv/bin/python bench/package_size.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from _report import emit  # bench/_report.py: run as a script, bench/ is on sys.path


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    from infra.package import LOCAL_ONLY, build

    work = Path(tempfile.mkdtemp(prefix="bench-package-", dir="/tmp"))
    print("building the Lambda package (arm64, Python 3.12, runtime dependencies only)...", file=sys.stderr)
    package = build(work / "package")
    leaked = sorted({p.name.split("-")[0] for p in package.iterdir()} & set(LOCAL_ONLY))
    if leaked:
        sys.exit(f"local-only packages in the Lambda package: {leaked}")
    archive = shutil.make_archive(str(work / "package"), "zip", package)
    emit("package_unzipped", size_mb(package), "MB")
    emit("package_zipped", Path(archive).stat().st_size / 2**20, "MB")
    largest = sorted(
        ((size_mb(p) if p.is_dir() else p.stat().st_size / 2**20, p.name) for p in package.iterdir()), reverse=True
    )[:5]
    for size, name in largest:
        print(f"  {name}: {size:.1f} MB", file=sys.stderr)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
