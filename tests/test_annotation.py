"""Naming clusters: rename, merge and split on a real run's output; colours follow the groups."""

import numpy as np
import pandas as pd
import pytest

from scdeep_core import annotation, colours
from scdeep_core.errors import InputError


@pytest.fixture()
def annotated():
    """The built-in PBMC with a 4-cluster result written the way a run writes it."""
    from sklearn.cluster import KMeans

    import scdeep_core as sd

    adata = sd.datasets.pbmc_demo()
    embedding = (
        np.asarray(adata.obsm["X_pca"][:, :10])
        if "X_pca" in adata.obsm
        else np.random.default_rng(0).normal(size=(adata.n_obs, 10))
    )
    labels = KMeans(4, n_init=4, random_state=0).fit_predict(embedding)
    adata.obs["run_cluster"] = pd.Categorical.from_codes(labels, categories=[str(i) for i in range(4)])
    colours.store_colours(adata, "run_cluster")
    adata.obsm["X_run"] = embedding
    return adata, annotation.start_annotation(adata, "run")


def test_annotation_starts_as_the_clusters_with_their_colours(annotated):
    adata, column = annotated
    assert column == "run_annotation"
    assert (adata.obs[column].astype(str) == adata.obs["run_cluster"].astype(str)).all()
    assert list(adata.uns["run_annotation_colors"]) == list(adata.uns["run_cluster_colors"])


def test_rename_keeps_cells_and_colour_and_refuses_duplicates(annotated):
    adata, column = annotated
    before = colours.colour_map(adata, column)
    cells = (adata.obs[column] == "2").to_numpy()
    annotation.rename(adata, column, "2", "B cells")
    assert (adata.obs[column][cells] == "B cells").all() and "2" not in adata.obs[column].cat.categories
    assert colours.colour_map(adata, column)["B cells"] == before["2"]
    assert (adata.obs["run_cluster"][cells] == "2").all(), "the run's own clusters are never changed"
    with pytest.raises(InputError, match="merge"):
        annotation.rename(adata, column, "0", "B cells")
    with pytest.raises(InputError, match="empty"):
        annotation.rename(adata, column, "0", "  ")


def test_merge_puts_both_groups_in_the_first_ones_place_and_colour(annotated):
    adata, column = annotated
    before = colours.colour_map(adata, column)
    n = int(adata.obs[column].isin(["1", "3"]).sum())
    assert annotation.merge(adata, column, ["1", "3"], into="T cells") == "T cells"
    assert list(adata.obs[column].cat.categories) == ["0", "T cells", "2"]
    assert int((adata.obs[column] == "T cells").sum()) == n
    assert colours.colour_map(adata, column) == {"0": before["0"], "T cells": before["1"], "2": before["2"]}
    with pytest.raises(InputError, match="at least two"):
        annotation.merge(adata, column, ["0"])


def test_split_makes_parts_by_size_from_the_embedding(annotated):
    adata, column = annotated
    cells = (adata.obs[column] == "0").to_numpy()
    names = annotation.split(adata, column, "0", "X_run", n_parts=2)
    assert names == ["0.1", "0.2"]
    parts = adata.obs[column][cells].astype(str)
    assert set(parts) == {"0.1", "0.2"} and (parts == "0.1").sum() >= (parts == "0.2").sum()
    assert (adata.obs[column][~cells] != "0.1").all()
    # the two parts are separated in the embedding: each is closer to its own centre
    emb = adata.obsm["X_run"][cells]
    centres = [emb[(parts == n).to_numpy()].mean(0) for n in names]
    nearest = np.argmin([[np.linalg.norm(e - c) for c in centres] for e in emb], axis=1)
    assert (np.array(names)[nearest] == parts.to_numpy()).mean() > 0.95
    assert len(adata.uns["run_annotation_colors"]) == 5 and len(set(adata.uns["run_annotation_colors"])) == 5
    with pytest.raises(InputError, match="too few"):
        annotation.split(adata, column, "0.2", "X_run", n_parts=10_000)


def test_download_opens_on_the_umap_with_names_and_colours(annotated, tmp_path):
    """What cellxgene and scanpy read from the downloaded h5ad: a layout named umap (cellxgene
    opens on it), the default embedding named, categorical clusters and names with their colours."""
    import anndata as ad
    import scipy.sparse as sp

    from scdeep_core.results import for_viewers

    adata, column = annotated
    annotation.rename(adata, column, "1", "NK cells")
    adata.obsm["X_run_umap"] = np.random.default_rng(0).normal(size=(adata.n_obs, 2)).astype(np.float32)
    adata.X = sp.csr_matrix(adata.X)
    path = tmp_path / "export.h5ad"
    for_viewers(adata, "run").write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns["default_embedding"] == "X_umap"
    np.testing.assert_array_equal(back.obsm["X_umap"], adata.obsm["X_run_umap"])
    assert sp.issparse(back.X) and back.X.format == "csc"
    for col in ("run_cluster", "run_annotation"):
        assert isinstance(back.obs[col].dtype, pd.CategoricalDtype)
        assert len(back.uns[f"{col}_colors"]) == back.obs[col].cat.categories.size
    assert "NK cells" in back.obs["run_annotation"].cat.categories
    assert "X_umap" not in adata.obsm and adata.X.format == "csr", "the session's own data is left as it was"
