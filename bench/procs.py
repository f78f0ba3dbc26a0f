"""Processes of the benchmarks: free ports, a process's descendants, RSS and CPU, and
the environment of runtimes whose start-up is measured."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return kids


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants."""
    out: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in out or not os.path.exists(f"/proc/{p}"):
            continue
        out.append(p)
        stack.extend(_children(p))
    return out


def rss_of(pid: int) -> int:
    """VmRSS of one process in bytes (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_of(pid: int) -> float:
    """utime + stime of one process in seconds (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bytecode_env() -> dict[str, str]:
    """Env for runtimes whose start-up is measured (RC1, the soak): with
    PYTHONDONTWRITEBYTECODE set (as in some checkouts and CI) every start compiles every
    module from source again, which an installed package never does; then the runtime
    writes and reuses bytecode under a cache folder in the temp dir instead, warmed here
    once so the first measured start does not pay for it either."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return {}
    cache = Path(tempfile.gettempdir()) / "durable-bench-pycache"
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache)}
    warm = "import durable.devtool.cli, durable.devtool.runtime, durable.devtool.worker_main"
    subprocess.run(
        [sys.executable, "-c", warm], env={**os.environ, **env}, check=False, timeout=120
    )
    return env
