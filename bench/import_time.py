"""Process start → core imported: ``import core.runtime`` against elizaOS's ``require('@elizaos/core')``.

Each figure is the wall time of a fresh process, from its start to its exit, that does nothing
but import the runtime library: ``python -c "import core.runtime"`` here, and
``node -e "require('@elizaos/core')"`` (@elizaos/core 1.7.2) for elizaOS, measured in the same
run, the commands alternated so that a busy moment of the machine hits both. The floors of the
same run are the bare interpreters (``python -c pass``, ``node -e ""``), so the library's own
share can be read too (``*_over_floor_ms``). ``_cpu`` figures are the processes' CPU time
(user + system, from ``wait4``): steadier on a shared machine.

elizaOS comes from ``bench/elizaos/node_modules`` (the message-turn harness's lock) when it is
installed there, else from ``npm install @elizaos/core@1.7.2`` into a temporary directory.

Like for like: node compiles its JavaScript on every start, and Python reads bytecode; this
workspace sets ``PYTHONDONTWRITEBYTECODE``, so this project's modules would be compiled from
source on each import. A private bytecode cache (``PYTHONPYCACHEPREFIX``, a temporary
directory) is filled by an unmeasured warm-up run, as the Lambda package ships ``.pyc`` files.

``--compare=DIR``: also times ``import core.runtime`` from another copy of the project (a
checkout of the commit before a change), alternated with the rest: ``*_compare`` figures and
``core_import_over_compare``, a before/after of the same run.

Run: ``.venv/bin/python bench/import_time.py [runs] [--python=PATH] [--breakdown] [--compare=DIR]``
(default 15 runs; ``--breakdown`` prints the modules of ours that cost the most, self time of
``python -X importtime``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit, log  # bench/_report.py: run as a script, bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
ELIZAOS_VERSION = "1.7.2"
HARNESS = ROOT / "bench" / "elizaos"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` to its end; returns (wall ms, CPU ms of the process and its children)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:  # again, for its error (a pipe read after wait4 could fill and block)
        error = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True).stderr
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {error[-2000:]}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def elizaos_dir() -> tuple[Path, Path | None]:
    """Where ``require('@elizaos/core')`` resolves: the harness, else a fresh npm install (and its temp dir)."""
    installed = HARNESS / "node_modules" / "@elizaos" / "core" / "package.json"
    if installed.exists() and f'"version": "{ELIZAOS_VERSION}"' in installed.read_text():
        return HARNESS, None
    temp = Path(tempfile.mkdtemp(prefix="bench-elizaos-", dir="/tmp"))
    log(f"installing @elizaos/core@{ELIZAOS_VERSION} into {temp} (npm)...")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", f"@elizaos/core@{ELIZAOS_VERSION}"],
        cwd=temp,
        check=True,
    )
    return temp, temp


def breakdown(python: str, env: dict[str, str], top: int = 15) -> None:
    """Log this project's modules with the most self time in ``import core.runtime``."""
    out = subprocess.run(
        [python, "-X", "importtime", "-c", "import core.runtime"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    rows = []
    for line in out.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2].strip()))
    ours = sorted((r for r in rows if r[2].split(".")[0] in {"core", "functions"}), reverse=True)[:top]
    log("our modules by self time (cumulative), µs:")
    for self_us, cumulative_us, name in ours:
        log(f"  {self_us:7d} ({cumulative_us:7d}) {name}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 15
    python = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--python=")), sys.executable)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: the elizaOS baseline needs it")
    cwd, temp = elizaos_dir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="bench-import-pyc-", dir="/tmp")
    env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"  # as template.yaml's Globals set it
    compare = next((Path(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--compare=")), None)
    commands = {
        "python_import_core_runtime": ([python, "-c", "import core.runtime"], ROOT),
        **({"python_import_core_runtime_compare": ([python, "-c", "import core.runtime"], compare)} if compare else {}),
        "python_floor": ([python, "-c", "pass"], ROOT),
        "elizaos_require_core": ([node, "-e", "require('@elizaos/core')"], cwd),
        "node_floor": ([node, "-e", ""], cwd),
    }
    try:
        for cmd, where in commands.values():  # warm-up: bytecode cache, OS file cache
            timed(cmd, where, env)
        if "--breakdown" in sys.argv:
            breakdown(python, env)
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        log(f"{runs} runs of each, alternated...")
        for _ in range(runs):
            for name, (cmd, where) in commands.items():
                w, c = timed(cmd, where, env)
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    for name in commands:
        emit(f"{name}_ms", med[name], "ms")
        emit(f"{name}_cpu_ms", med_cpu[name], "ms")
    ours, theirs = "python_import_core_runtime", "elizaos_require_core"
    emit("core_import_over_floor_ms", med[ours] - med["python_floor"], "ms")
    emit("elizaos_require_over_floor_ms", med[theirs] - med["node_floor"], "ms")
    emit("core_import_over_elizaos", med[ours] / med[theirs], "x")
    emit("core_import_over_elizaos_cpu", med_cpu[ours] / med_cpu[theirs], "x")
    if compare:
        emit("core_import_over_compare", med[ours] / med["python_import_core_runtime_compare"], "x")
        emit("core_import_over_compare_cpu", med_cpu[ours] / med_cpu["python_import_core_runtime_compare"], "x")


if __name__ == "__main__":
    main()
