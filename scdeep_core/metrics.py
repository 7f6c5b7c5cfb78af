"""Clustering scores against known labels: ARI, NMI, ACC (Hungarian matching), confusion table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def _as_codes(labels: Sequence | np.ndarray) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(labels)).astype(str))[0]


def ari(truth: Sequence, pred: Sequence) -> float:
    """Adjusted Rand index."""
    return float(adjusted_rand_score(_as_codes(truth), _as_codes(pred)))


def nmi(truth: Sequence, pred: Sequence) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn)."""
    return float(normalized_mutual_info_score(_as_codes(truth), _as_codes(pred)))


def acc(truth: Sequence, pred: Sequence) -> float:
    """Clustering accuracy: the fraction of cells right under the best one-to-one matching
    of clusters to labels (Hungarian algorithm; unmatched clusters count as wrong)."""
    table = confusion(truth, pred).to_numpy()
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / max(table.sum(), 1))


def confusion(truth: Sequence, pred: Sequence) -> pd.DataFrame:
    """Cells per (label, cluster): rows are labels, columns clusters."""
    t = pd.Series(np.asarray(truth), name="label").astype(str)
    p = pd.Series(np.asarray(pred), name="cluster").astype(str)
    return pd.crosstab(t, p)


def scores(truth: Sequence, pred: Sequence) -> dict[str, float]:
    """ARI, NMI and ACC in one dict."""
    return {"ari": ari(truth, pred), "nmi": nmi(truth, pred), "acc": acc(truth, pred)}
