"""The public API follows scanpy's conventions, checked on every exported function (in the spirit
of scanpy's ``test_package_structure.py``): ``adata`` first, the config next, everything else
keyword-only under one name per meaning, every parameter documented in a NumPy docstring."""

from __future__ import annotations

import inspect
import re

import pytest

import scdeep_core as sd

FAST = dict(pretrain_epochs=10, max_cluster_epochs=5, hidden_dims=(32,), latent_dim=4, batch_size=64)
PUBLIC = {name: getattr(sd, name) for name in sd.__all__ if inspect.isfunction(getattr(sd, name))}
TAKES_ADATA = {name: f for name, f in PUBLIC.items() if "adata" in inspect.signature(f).parameters}
# One name per meaning across the package (left: names a reader might expect from elsewhere).
SHARED_NAMES = {"label_key", "key_added", "copy", "callbacks", "stop_token"}
SYNONYMS = {
    "key_prefix": "key_added",
    "label_col": "label_key",
    "labels_key": "label_key",
    "groupby": "label_key",
    "inplace": "copy",
    "stop_event": "stop_token",
    "callback": "callbacks",
    "cfg": "config",
}


def documented_parameters(func) -> set[str]:
    """Names listed in the docstring's NumPy ``Parameters`` section."""
    doc = inspect.getdoc(func) or ""
    match = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n?[A-Z][a-z]+\n-+\n|\Z)", doc, flags=re.S | re.M)
    if not match:
        return set()
    names = set()
    for line in match.group(1).splitlines():
        if line and not line.startswith(" "):
            names |= {n.strip().lstrip("*").split(":")[0] for n in line.split(",")}
    return names


def test_the_api_is_exported():
    assert {"fit", "pretrain", "recluster", "fit_resolutions", "read_counts", "save_run", "load_run"} <= set(PUBLIC)
    assert len(TAKES_ADATA) >= 5


@pytest.mark.parametrize("name", sorted(TAKES_ADATA))
def test_adata_first_then_config_then_keyword_only(name):
    params = list(inspect.signature(TAKES_ADATA[name]).parameters.values())
    assert params[0].name == "adata" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if "config" in positional:
        assert positional[-1] == "config", f"{name}: only the objects it works on come before config: {positional}"
    assert "method" not in positional, f"{name}: the method is the config's (or a config given as 'desc' / 'scdcc')"
    for p in params:
        if p.name in SHARED_NAMES:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}({p.name}) must be keyword-only"
        if p.name == "copy":
            assert p.default is False


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_one_name_per_meaning_and_every_parameter_documented(name):
    func = PUBLIC[name]
    params = [p for p in inspect.signature(func).parameters if not p.startswith("_")]
    for p in params:
        assert p not in SYNONYMS, f"{name}({p}): call it {SYNONYMS[p]!r} as everywhere else"
    assert not set(params) - documented_parameters(func), (
        f"{name}: undocumented {sorted(set(params) - documented_parameters(func))}"
    )
    assert re.search(r"^Returns\n-+\n", inspect.getdoc(func), flags=re.M), f"{name}: no Returns section"


def test_copy_leaves_adata_untouched_and_the_config_names_the_method(small_sim):
    before = set(small_sim.obs.columns), set(small_sim.obsm.keys()), set(small_sim.uns.keys())
    res = sd.fit(small_sim, sd.DESCConfig(n_clusters=3, **FAST), copy=True, key_added="copied")
    assert (set(small_sim.obs.columns), set(small_sim.obsm.keys()), set(small_sim.uns.keys())) == before
    assert res.method == "desc" and "copied_cluster" in res.adata.obs and res.adata is not small_sim
    assert (res.adata.obs["copied_cluster"].cat.codes.to_numpy()[res.cell_mask] == res.labels).all()
    again = sd.recluster(small_sim, res.pretrained, "desc", key_added="k_default")  # a method name: its defaults
    assert again.config["n_clusters"] == "auto" and "k_default_cluster" in small_sim.obs
    with pytest.raises(sd.ConfigError, match="cannot re-cluster a desc model"):
        sd.recluster(small_sim, res.pretrained, sd.SCDCCConfig(n_clusters=3))
    with pytest.raises(sd.ConfigError, match="config must be"):
        sd.fit(small_sim, {"n_clusters": 3})


def test_notes_are_logged_on_the_library_logger_as_they_arise(caplog):
    """Every note kept with a result is also a record on the ``scdeep_core`` logger (a cap hit is
    a warning), so a script sees them with the standard logging machinery."""
    import logging

    adata = sd.datasets.simulate_counts(n_cells=300, n_genes=200, n_groups=3, seed=0)
    cfg = sd.config_for("desc", n_clusters=3, pretrain_epochs=2, max_cluster_epochs=2, min_cluster_epochs=0, tol=0.0)
    with caplog.at_level(logging.INFO, logger="scdeep_core"):
        result = sd.fit(adata, cfg, copy=True)
    logged = [r.getMessage() for r in caplog.records if r.name == "scdeep_core"]
    assert result.notes and all(n in logged for n in result.notes), (result.notes, logged)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("Not converged") for w in warnings)
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("scdeep_core").handlers)
