"""Peak resident memory of this process and of a command, measured so a large parent cannot hide it.

On Linux the obvious figure, ``getrusage(...).ru_maxrss``, is inherited: a process started by
``subprocess`` (fork or vfork, then exec) keeps its parent's peak RSS as a floor, because the kernel
carries the old address space's high-water mark across exec. A benchmark worker started by a parent
that had loaded AST-base, or a CLI started from a pytest process that has run the suite, then reports
the parent's peak and not its own (measured: a 13 MiB child of a parent that peaked at 2 GiB reported
2,075 MiB), and two such children always compare equal.

So: this process's peak is the kernel's high-water mark of its *own* address space (``VmHWM``,
reset by exec); a command's peak is taken by a tiny launcher that forks from a fresh interpreter (a
forked child's rusage starts from zero) and reads the command's ``wait4`` rusage.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Run as ``python -S -c LAUNCHER RESULT CMD...``: fork, exec CMD in the child, wait4 it, write
# {"status", "maxrss_kib"} to RESULT. The launcher inherits the caller's peak; its child does not.
LAUNCHER = """
import json, os, sys
result, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.stderr.write(f"{argv[0]}: cannot run ({e.strerror})\\n")
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(result, "w") as f:
    json.dump({"status": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, f)
"""


def rss_mib() -> float | None:
    """This process's resident memory now, or ``None`` without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float | None:
    """This process's peak resident memory since it started (its exec), not its parent's."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass  # not Linux
    try:
        import resource
    except ImportError:  # not Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


@dataclass
class Measured:
    """What :func:`run_measured` saw of one command."""

    returncode: int
    peak_rss_mib: float
    wall_s: float
    stderr: str


def run_measured(cmd: list[str], stdout=subprocess.DEVNULL, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` to its end (``stdout`` as for subprocess; stderr captured) and measure its own peak RSS."""
    with tempfile.TemporaryDirectory(prefix="ast-deploy-rss-") as tmp:
        result = Path(tmp) / "rusage.json"
        begin = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(result), *cmd],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - begin
        stderr = proc.stderr.decode(errors="replace")
        if not result.is_file():
            raise RuntimeError(f"the memory launcher failed (exit status {proc.returncode}): {stderr.strip()}")
        usage = json.loads(result.read_text())
    return Measured(usage["status"], usage["maxrss_kib"] / 2**10, wall, stderr)
