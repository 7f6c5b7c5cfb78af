"""The downloaded snippet reruns a run on a clean directory outside the checkout and gets the
same labels (issue: it used to contain JSON `null`, read a placeholder path and need the checkout)."""

import os
import subprocess
import sys
from pathlib import Path

import scdeep_core as sd
from scdeep_core.results import label_fingerprint, reproduce_snippet

ROOT = Path(__file__).resolve().parents[1]


def test_snippet_runs_outside_the_checkout_and_gets_the_same_labels(tmp_path):
    adata = sd.datasets.load_builtin("pbmc68k_reduced")
    config = sd.DESCConfig(n_clusters=6, pretrain_epochs=8, max_cluster_epochs=5, seed=3)
    result = sd.fit(adata, config, label_key="bulk_labels")
    snippet = reproduce_snippet(result, "adata = sd.datasets.load_builtin('pbmc68k_reduced')", label_key="bulk_labels")
    compile(snippet, "reproduce.py", "exec")  # plain Python: no JSON null/true
    script = tmp_path / "reproduce.py"
    script.write_text(snippet)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # scdeep_core as installed, not the checkout
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "same labels as the original run: True" in out.stdout, out.stdout
    # the fingerprint tells different labellings apart
    assert label_fingerprint(result.labels) != label_fingerprint((result.labels + 1) % result.n_clusters)
