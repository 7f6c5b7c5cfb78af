"""Built-in datasets that work offline: real PBMC shipped inside scanpy, and a count simulator."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

BUILTIN = {
    "pbmc68k_reduced": "Real PBMC, 700 cells x 765 genes, 10 bulk labels (ships inside scanpy)",
    "simulated": "Simulated counts: negative-binomial groups with marker genes and dropout",
}


def pbmc_demo() -> ad.AnnData:
    """scanpy's ``pbmc68k_reduced`` with its exact integer counts recovered.

    The file stores scaled data, but ``adata.raw`` holds log1p(counts / n_counts * 1e4), so
    ``round(expm1(raw) * n_counts / 1e4)`` gives the counts back (99.999 % of non-zeros
    within 0.05 of an integer). Labels: ``obs["bulk_labels"]`` (10 sorted populations).
    """
    import scanpy as sc

    src = sc.datasets.pbmc68k_reduced()
    raw = src.raw.X.toarray() if sp.issparse(src.raw.X) else np.asarray(src.raw.X)
    counts = np.rint(np.expm1(raw) * src.obs["n_counts"].to_numpy()[:, None] / 1e4).astype(np.float32)
    obs = src.obs[["bulk_labels", "phase"]].copy()
    obs["bulk_labels"] = obs["bulk_labels"].astype("category")
    m = sp.csr_matrix(counts)
    adata = ad.AnnData(X=m, obs=obs, var=pd.DataFrame(index=src.raw.var_names.astype(str)))
    adata.layers["counts"] = m.copy()
    adata.uns["scdeep_io"] = {"format": "builtin", "source": "pbmc68k_reduced", "integer": True, "notes": [""]}
    return adata


def simulate_counts(
    n_cells: int = 1000,
    n_genes: int = 1000,
    n_groups: int = 4,
    *,
    de_fraction: float = 0.1,
    separation: float = 1.5,
    dropout: float = 0.2,
    dispersion: float = 0.3,
    library_sd: float = 0.3,
    n_batches: int = 1,
    batch_effect: float = 0.5,
    seed: int = 0,
) -> ad.AnnData:
    """Labelled counts from a negative-binomial model of cell groups.

    Each gene has a log-normal base mean; each group up-regulates its own
    ``de_fraction`` of genes by ``exp(separation)``-fold (on average); cells get log-normal
    library sizes (``library_sd``) and counts are NB(mean, 1/dispersion), then a fraction
    ``dropout`` of non-zero entries is zeroed. Group sizes vary (Dirichlet).

    With ``n_batches`` > 1 every cell is also put in a random batch (the same groups in every
    batch) and each batch scales every gene's mean by its own factor ``exp(N(0, batch_effect))``:
    a technical effect on top of the same biology. The batch draws come from a separate random
    stream, so the group sizes, marker genes and base means are those of the batch-free simulation
    with the same seed (the count noise and the cells' order differ).

    Returns
    -------
    AnnData
        Counts in ``X`` and ``layers["counts"]``; ``obs["group"]`` the true groups;
        ``var["de_group"]`` the group a gene marks (-1 for none); ``obs["batch"]`` with
        ``n_batches`` > 1.
    """
    if n_groups < 1 or n_cells < n_groups or n_genes < 2 or n_batches < 1:
        raise ValueError("simulate_counts needs n_groups >= 1, n_cells >= n_groups, n_genes >= 2 and n_batches >= 1.")
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n_cells - n_groups, rng.dirichlet(np.full(n_groups, 5.0))) + 1
    group = np.repeat(np.arange(n_groups), sizes)
    base = rng.lognormal(mean=-1.0, sigma=1.2, size=n_genes)
    log_fc = np.zeros((n_groups, n_genes))
    de_group = np.full(n_genes, -1)
    n_de = max(1, int(de_fraction * n_genes))
    for g in range(n_groups):
        genes = rng.choice(n_genes, size=n_de, replace=False)
        log_fc[g, genes] = rng.normal(separation, 0.3 * separation, size=n_de)
        de_group[genes] = g
    library = rng.lognormal(0.0, library_sd, size=n_cells)
    mean = base[None, :] * np.exp(log_fc[group]) * library[:, None]
    if n_batches > 1:
        batch_rng = np.random.default_rng([seed, 1])
        batch = batch_rng.integers(0, n_batches, size=n_cells)
        mean *= np.exp(batch_rng.normal(0.0, batch_effect, size=(n_batches, n_genes)))[batch]
    shape = 1.0 / dispersion
    counts = rng.poisson(rng.gamma(shape, mean / shape)).astype(np.float32)
    counts[(counts > 0) & (rng.random(counts.shape) < dropout)] = 0
    order = rng.permutation(n_cells)
    m = sp.csr_matrix(counts[order])
    obs = pd.DataFrame(
        {"group": pd.Categorical([f"group{g}" for g in group[order]])}, index=[f"cell{i}" for i in range(n_cells)]
    )
    if n_batches > 1:
        obs["batch"] = pd.Categorical([f"batch{b}" for b in batch[order]])
    var = pd.DataFrame({"de_group": de_group}, index=[f"gene{j}" for j in range(n_genes)])
    adata = ad.AnnData(X=m, obs=obs, var=var)
    adata.layers["counts"] = m.copy()
    adata.uns["scdeep_io"] = {"format": "builtin", "source": "simulated", "integer": True, "notes": [""]}
    return adata


def load_builtin(name: str, **kwargs) -> ad.AnnData:
    """A built-in dataset by name (see :data:`BUILTIN`)."""
    if name == "pbmc68k_reduced":
        return pbmc_demo()
    if name == "simulated":
        return simulate_counts(**kwargs)
    raise KeyError(f"Unknown built-in dataset {name!r}; choose one of {list(BUILTIN)}.")
