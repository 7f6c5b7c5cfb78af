"""The benchmark harness keeps working: its quick mode runs end to end and writes a report."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_writes_all_sections(tmp_path):
    out = tmp_path / "B.md"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    for section in ("## 1. Accuracy", "## 2. Speed against the floor", "## 4. Cold start"):
        assert section in text
    assert "kmeans_pca" in text and "leiden_scanpy" in text and "floor_epoch_s" in text
    assert (tmp_path / "B.accuracy.csv").exists()
