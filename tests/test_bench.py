"""The benchmark harness keeps working: its quick mode runs end to end and writes a report."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_all_sections(tmp_path):
    out = tmp_path / "B.md"
    # Two variants (each runs in its own process, ~10 s of imports) and no cold start (a fresh process
    # importing and compiling umap-learn, ~45 s) keep this check of the harness short.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--sections",
            "accuracy,speed",
            "--variants",
            "desc,kmeans_pca",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    for section in ("## 1. Accuracy", "## 2. Speed against the floor"):
        assert section in text
    assert "| kmeans_pca " in text and "| desc " in text and "| leiden_scanpy " not in text and "floor_epoch_s" in text
    assert (tmp_path / "B.accuracy.csv").exists()
    assert (
        tmp_path / "plots" / "accuracy_quick.png"
    ).exists() and "](plots/accuracy_quick.png)" in text  # beside the report


def test_bench_refuses_an_unknown_section_before_doing_anything():
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--sections", "coldstart"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "unknown --sections coldstart" in run.stderr and "cold" in run.stderr


def test_only_a_full_bench_run_writes_the_committed_report():
    from bench.__main__ import REPORT, SCRATCH, SECTIONS, report_path

    def where(*argv):
        import argparse

        ns = argparse.Namespace(out=None, quick=False, sections=",".join(SECTIONS), extra=[], variants=None)
        for key, value in argv:
            setattr(ns, key, value)
        return report_path(ns)

    assert where() == REPORT
    assert (
        where(("variants", "kmeans_pca,leiden_k,leiden_scanpy,scdcc_constraints,scdcc_auto,desc_auto,scdcc,desc"))
        == REPORT
    )
    assert where(("quick", True)).parent == SCRATCH
    assert where(("sections", "speed")).parent == SCRATCH
    assert where(("variants", "desc")).parent == SCRATCH
    assert where(("quick", True), ("out", Path("x.md"))) == Path("x.md")
