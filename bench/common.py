"""Shared helpers of the benchmarks: datasets, peak memory, subprocess isolation."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCDEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))

# name -> (file, label key, k)
DATASETS = {
    "cellbench_celseq2_5cl_909": ("cellbench_celseq2_5cl_909.h5ad", "label", 5),
    "mouse_bladder_2746": ("mouse_bladder_2746.h5ad", "label", 16),
    "paul15_2730": ("paul15_2730.h5ad", "label", 19),
    "pbmc_10x_4271": ("pbmc_10x_4271.h5ad", "label", 8),
    "cbmc_citeseq_8617": ("cbmc_citeseq_8617.h5ad", "label", 15),
}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB).

    Linux's ``VmHWM``, the high-water mark of this process's own memory since it started. Not
    ``getrusage``'s ``ru_maxrss``: Linux carries that across ``exec``, so a process started by a
    large parent (the bench driver holding a generated dataset) reported the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(module: str, payload: dict, timeout: float = 3600) -> dict:
    """Run ``python -m <module>`` with a JSON payload in a fresh process; return its JSON answer.

    A fresh process per measurement gives honest peak RSS and cold-start numbers.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", module, json.dumps(payload)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown"


# What accuracy, speed, scaling and cold start run; the load test runs the app too.
CORE_CODE = (
    "scdeep_core",
    "requirements.txt",
    "bench/common.py",
    "bench/run_one.py",
    "bench/speed.py",
    "bench/scaling.py",
    "bench/coldstart.py",
)
APP_CODE = CORE_CODE + ("pages", "app.py", ".streamlit", "bench/load.py")


def code_version(paths: tuple[str, ...] = CORE_CODE) -> str:
    """A short hash of the code a measurement depends on (not the docs), with ``-dirty`` when it
    has uncommitted changes: checkpoints of one version are reused across doc-only commits."""
    import hashlib

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    try:
        trees = git("rev-parse", *[f"HEAD:{p}" for p in paths])
        dirty = git("status", "--porcelain", "--", *paths)
    except OSError:
        return "unknown"
    return hashlib.sha1(trees.encode()).hexdigest()[:10] + ("-dirty" if dirty else "")


def machine() -> str:
    import platform

    import torch

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads, python = torch.get_num_threads(), platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, {threads} threads, Python {python}"
