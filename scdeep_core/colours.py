"""One colour per category, the same in every plot of the app and in exported files.

Follows scanpy's convention: the colours of a categorical ``obs[column]`` live in
``uns[f"{column}_colors"]``, one per category in category order, taken from scanpy's default
palettes (so an exported file opened in scanpy or cellxgene shows the app's colours).
"""

from __future__ import annotations

import anndata as ad
import pandas as pd
from scanpy.plotting.palettes import default_20, default_28, default_102


def palette(n: int) -> list[str]:
    """``n`` colours as scanpy picks them for ``n`` categories (cycled beyond 102)."""
    base = default_20 if n <= 20 else default_28 if n <= 28 else default_102
    return [base[i % len(base)] for i in range(n)]


def categories(values: pd.Series) -> list[str]:
    """The categories of ``values`` in display order: a categorical's own order, otherwise
    sorted with numbers in numeric order ("2" before "10")."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    uniques = pd.unique(values.dropna().astype(str))
    return sorted(uniques, key=lambda s: (0, int(s), "") if s.lstrip("-").isdigit() else (1, 0, s))


def colour_map(adata: ad.AnnData, column: str) -> dict[str, str]:
    """Category -> colour for ``obs[column]``: the stored ``uns[f"{column}_colors"]`` when it
    has one colour per category, else scanpy's default palette."""
    cats = categories(adata.obs[column])
    stored = adata.uns.get(f"{column}_colors")
    colours = list(stored) if stored is not None and len(stored) == len(cats) else palette(len(cats))
    return dict(zip(cats, colours, strict=True))


def store_colours(adata: ad.AnnData, column: str, keep: dict[str, str] | None = None) -> None:
    """Write ``uns[f"{column}_colors"]`` for the categorical ``obs[column]``: categories found in
    ``keep`` (e.g. the colours before a rename or merge) keep their colour, the others get the
    palette's colours not used yet."""
    cats = list(adata.obs[column].cat.categories.astype(str))
    keep = {c: v for c, v in (keep or {}).items() if c in cats}
    spare = [c for c in palette(len(cats) + len(keep)) if c not in keep.values()]
    adata.uns[f"{column}_colors"] = [keep[c] if c in keep else spare.pop(0) for c in cats]
