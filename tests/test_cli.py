"""The command line: runs that train go through a real subprocess, as a user would; the checks
of bad input and settings call the same ``main`` in-process (each subprocess costs ~6 s of imports)."""

import re
import subprocess
import sys
from pathlib import Path

import anndata as ad

from scdeep_core import cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "scdeep_core", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=600
    )


def run_here(capsys, *args):
    """``python -m scdeep_core ARGS`` in this process: (exit code, stdout, stderr). An uncaught
    exception (a traceback for the user) fails the test."""
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_option():
    from scdeep_core.config import ConstraintConfig, settings

    out = run("fit", "--help")
    assert out.returncode == 0
    # Every config field is an option, made from the config (its help and each method's default).
    for s in settings():
        if s.name not in cli.SET_ELSEWHERE:
            assert f"--{s.name.replace('_', '-')} " in out.stdout, s.name
    for s in settings([ConstraintConfig]):
        assert cli.CONSTRAINT_OPTIONS.get(s.name, f"--{s.name.replace('_', '-')}") in out.stdout, s.name
    assert "Default: 10 (desc), 15 (scdcc)" in " ".join(out.stdout.split())  # n_neighbors
    for opt in (
        "--method",
        "--n-clusters",
        "--resolution",
        "--label-key",
        "--out",
        "--constraints",
        "--pretrain-epochs",
        "--seed",
        "examples:",
    ):
        assert opt in out.stdout


def test_fit_builtin_writes_outputs_and_summary(tmp_path):
    out = run(
        "fit",
        "builtin:pbmc68k_reduced",
        "--method",
        "desc",
        "--n-clusters",
        "10",
        "--label-key",
        "bulk_labels",
        "--pretrain-epochs",
        "20",
        "--no-umap",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("desc: k=10 ARI=") and "wall=" in line and "result.h5ad" in line
    assert re.search(r" start=(kmeans|leiden|spectral) wall=", line), line  # which start the given k took
    a = ad.read_h5ad(tmp_path / "run" / "result.h5ad")
    assert "desc_cluster" in a.obs and "desc_q" in a.obsm
    assert (tmp_path / "run" / "config.json").exists() and (tmp_path / "run" / "history.csv").exists()


def test_bad_input_exits_2_with_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out folder is made in the working folder
    bad = tmp_path / "bad.csv"
    bad.write_text("gene,c1\nA,x\n")
    code, _, err = run_here(capsys, "fit", str(bad), "--method", "desc")
    assert code == 2 and "error:" in err and "non-numeric" in err
    code, _, err = run_here(capsys, "fit", "builtin:simulated", "--method", "desc", "--n-clusters", "1", "--out", "k1")
    assert code == 2 and "n_clusters = 1" in err
    code, _, err = run_here(capsys, "fit", "builtin:simulated", "--method", "scdcc", "--dropout", "0.1", "--out", "d")
    assert code == 2 and "--dropout: not a setting of scDCC" in err  # not silently ignored
    code, _, err = run_here(capsys, "fit", "builtin:simulated", "--method", "desc", "--fraction", "0.2", "--out", "f")
    assert code == 2 and "constraints are an scDCC feature" in err
    code, _, err = run_here(
        capsys, "fit", "builtin:simulated", "--method", "desc", "--label-key", "nope", "--quiet", "--out", "nope"
    )
    assert code == 2 and "not in obs" in err


def test_several_resolutions(tmp_path):
    out = run(
        "fit",
        "builtin:simulated",
        "--method",
        "desc",
        "--resolution",
        "0.3,1.0",
        "--pretrain-epochs",
        "10",
        "--no-umap",
        "--quiet",
        "--out",
        str(tmp_path / "r"),
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("desc_r0.3: k=") and lines[1].startswith("desc_r1: k=")
    assert (tmp_path / "r" / "desc_r0.3" / "result.h5ad").exists()


def test_auto_k_prints_candidates_and_a_capped_run_warns(tmp_path):
    out = run(
        "fit",
        "builtin:simulated",
        "--method",
        "desc",
        "--label-key",
        "group",
        "--pretrain-epochs",
        "30",
        "--max-cluster-epochs",
        "2",
        "--tol",
        "0",
        "--no-umap",
        "--quiet",
        "--out",
        str(tmp_path / "auto"),
    )
    assert out.returncode == 0, out.stderr
    assert "choosing k: Leiden on the pretrained embedding" in out.stdout and "<- chosen" in out.stdout
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("desc: k=4 (automatic) ARI=")  # the simulator has 4 groups and "NOT converged" in line
    assert "warning: Not converged: after 2 clustering epochs (the cap, max_cluster_epochs)" in out.stderr


def test_out_and_key_are_checked_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["--out", str(a_file)], "is a file, not a folder"),
        (["--out", str(a_file / "sub")], "cannot be written"),
        (["--key", "../../x", "--out", str(tmp_path / "k1")], "not a plain name"),
        (["--key", "a/b", "--out", str(tmp_path / "k2")], "not a plain name"),
        (["--max-gb", "0", "--out", str(tmp_path / "k3")], "--max-gb must be above 0"),
    ]
    for extra, message in cases:
        code, _, err = run_here(capsys, "fit", "builtin:simulated", "--method", "desc", "--quiet", *extra)
        assert code == 2 and message in err, (extra, err[-500:])
    assert not (tmp_path.parent / "x").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "result.h5ad").write_text("earlier result")
    code, _, err = run_here(capsys, "fit", "builtin:simulated", "--method", "desc", "--quiet", "--out", str(used))
    assert code == 2 and "already holds files" in err and "--force" in err
    assert (used / "result.h5ad").read_text() == "earlier result"  # nothing lost
    code, _, err = run_here(
        capsys,
        "fit",
        "builtin:simulated",
        "--method",
        "desc",
        "--n-clusters",
        "4",
        "--pretrain-epochs",
        "5",
        "--no-umap",
        "--quiet",
        "--out",
        str(used),
        "--force",
    )
    assert code == 0, err
