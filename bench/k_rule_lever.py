"""Issue 8 lever: choosing k by how separated clusters are in the kNN graph, not by how stable they are.

``python -m bench.k_rule_lever [desc|scdcc]``: every dev set, k chosen automatically, seeds 0, 1, 2.
Each seed pretrains once (the default auto config) and scans resolutions once; the clustering stage
then runs from each rule's initial clusters:

- ``stability`` (the default): the finest resolution with 90 % of cells in stable clusters, then
  the BIC merge of unimodal neighbours (:func:`scdeep_core.kselect.choose_k`);
- ``linked > t`` for t in 0.02, 0.05, 0.1: Leiden at the finest scanned resolution (2.0), then the
  two clusters whose kNN graph joins them most are merged while more than ``t`` of the smaller
  one's edge weight reaches the other (:func:`merge_linked`). Section 7 measured this rule's k
  (at 0.05, on older embeddings) as the nearest to the labelled number of types on three sets.

Prints the start and end ARI, k per seed, and the seed agreement; rows go to
``bench/scratch/k_rule_lever_<method>.csv``.
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.sparse as sp

THRESHOLDS = (0.02, 0.05, 0.1)


def merge_linked(labels: np.ndarray, connectivities: sp.spmatrix, threshold: float) -> np.ndarray:
    """Merge the most linked pair of clusters while its link exceeds ``threshold``.

    The link of clusters a and b is the kNN edge weight between them over the total edge weight
    of the smaller one (``E_ab / min(D_a, D_b)``): a cluster that sends more than ``threshold`` of
    its neighbourhood into another is not separated from it. Returns labels ``0..k-1``.
    """
    labels = np.unique(labels, return_inverse=True)[1]
    while labels.max() > 0:
        k = int(labels.max()) + 1
        member = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
        between = (member @ connectivities @ member.T).toarray()
        degree = between.sum(axis=1)
        link = between / np.maximum(np.minimum.outer(degree, degree), 1e-12)
        np.fill_diagonal(link, 0)
        a, b = np.unravel_index(np.argmax(link), link.shape)
        if link[a, b] <= threshold:
            break
        labels = np.unique(np.where(labels == b, a, labels), return_inverse=True)[1]
    return labels


def main(method: str = "desc") -> None:
    import pandas as pd

    from scdeep_core import api, metrics
    from scdeep_core.config import config_for
    from scdeep_core.graph import fuzzy_connectivities, knn

    from .levers import dev_sets, print_k_per_seed, print_summary, save_rows, stage_from

    rows, labels = [], {}
    for name, adata, key, k in dev_sets():
        for seed in range(3):
            pre = api.pretrain(adata, config_for(method, n_clusters="auto", seed=seed), label_key=key)
            truth = adata.obs[key].astype(str).to_numpy()[pre.data.cell_mask]
            selection = pre.select_k()
            connectivities = fuzzy_connectivities(*knn(pre.z, pre.cfg.n_neighbors))
            finest = selection.labels[:, int(np.argmax(selection.table["resolution"].to_numpy()))]
            starts = {"stability": selection.chosen_labels}
            for t in THRESHOLDS:
                starts[f"linked > {t}"] = merge_linked(finest, connectivities, t)
            for variant, start in starts.items():
                res = stage_from(adata, pre, start)
                labels[name, variant, seed] = res.labels
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "variant": variant,
                        "start": metrics.ari(truth, start),
                        "end": metrics.ari(truth, res.labels),
                        "k": len(np.unique(start)),
                        "true k": k,
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "variant", labels)
    print_k_per_seed(df)
    save_rows(df, f"k_rule_lever_{method}")


if __name__ == "__main__":
    main(*sys.argv[1:])
