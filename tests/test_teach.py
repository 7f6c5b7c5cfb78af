"""Constraints from selections (issue 12): pairs from selections, re-clustering a pretrained scDCC
with them, where they travel (uns, run folder, snippet), and the Explore page's list with undo."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from test_app import load_builtin, new_app, start_training, wait_for_run

import scdeep_core as sd
from scdeep_core.constraints import Selection, from_selections
from scdeep_core.results import reproduce_snippet

NAMES = pd.Index([f"c{i}" for i in range(300)])


def test_same_type_selection_links_its_cells_and_a_large_one_is_sampled_touching_every_cell():
    small = from_selections([Selection(["c1", "c2", "c3", "c4", "c5"])], NAMES)
    assert len(small.must_link) == 10 and len(small.cannot_link) == 0  # every pair of 5 cells
    big = from_selections([Selection(list(NAMES[:200]))], NAMES, max_pairs=500)
    assert len(big.must_link) <= 500
    assert set(np.unique(big.must_link)) == set(range(200)), "every selected cell is in a pair"
    assert big.used_cells.sum() == 200


def test_different_selection_gives_cannot_links_between_the_two_only():
    pc = from_selections([Selection(["c1", "c2", "c3"]), Selection(["c3", "c10", "c11"], "different", versus=0)], NAMES)
    assert len(pc.must_link) == 3
    cl = {tuple(sorted(p)) for p in pc.cannot_link.tolist()}
    assert cl == {(1, 10), (1, 11), (2, 10), (2, 11)}, "c3 is in both: left out of the cannot-links"


@pytest.mark.parametrize(
    "selections, message",
    [
        ([Selection(["c1", "nope"])], "not in the data"),
        ([Selection([])], "holds no cells"),
        ([Selection(["c1", "c2"], "different")], "names no other selection"),
        ([Selection(["c1", "c2"], "similar")], "use 'same' or 'different'"),
    ],
)
def test_bad_selections_are_refused_with_a_message(selections, message):
    with pytest.raises(sd.InputError, match=message):
        from_selections(selections, NAMES)


@pytest.fixture(scope="module")
def pretrained_run():
    adata = sd.datasets.simulate_counts(n_cells=600, n_genes=300, n_groups=4, separation=1.0, seed=3)
    cfg = sd.config_for("scdcc", n_clusters=4, pretrain_epochs=15)
    return adata, cfg, sd.fit(adata, cfg, label_key="group")


def test_recluster_with_selections_from_the_pretrained_model(pretrained_run, tmp_path):
    adata, cfg, base = pretrained_run
    rng = np.random.default_rng(0)
    selections = [
        Selection(list(rng.choice(adata.obs_names[adata.obs["group"] == g], 15, replace=False)))
        for g in adata.obs["group"].cat.categories
    ]
    selections.append(Selection(selections[0].cells, "different", versus=1))
    taught = sd.recluster(adata, base.pretrained, cfg, constraints=selections, key_added="scdcc_taught")
    pairs = taught.constraints["pairs"]
    assert (pairs["type"] == "ml").sum() == 4 * 105 and (pairs["type"] == "cl").sum() == 225
    assert taught.eval_mask.sum() == adata.n_obs - 60, "scored on the cells no selection touched"
    assert any("must-link" in n for n in taught.notes)
    assert any("anchored on the 4 groups" in n for n in taught.notes), "the four 'same' selections are the types"
    assert "scdcc_taught" in adata.uns and "constraints" in adata.uns["scdcc_taught"]
    paths = sd.save_run(adata, taught, tmp_path / "run")
    assert pd.read_csv(paths["constraints"]).shape == (len(pairs), 3)
    _, back = sd.load_run(tmp_path / "run")
    assert back.constraints["selections"][4] == {"cells": selections[0].cells, "kind": "different", "versus": 1}
    # the snippet pretrains, then re-clusters with the same selections: the same labels
    load = "adata = sd.datasets.simulate_counts(n_cells=600, n_genes=300, n_groups=4, separation=1.0, seed=3)"
    snippet = reproduce_snippet(taught, load, "group")
    script = tmp_path / "reproduce.py"
    script.write_text(snippet)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "same labels as the original run: True" in out.stdout


def test_constraints_need_scdcc(pretrained_run):
    adata = pretrained_run[0]
    desc = sd.fit(adata, sd.config_for("desc", n_clusters=4, pretrain_epochs=3), copy=True)
    with pytest.raises(sd.ConfigError, match="need scDCC"):
        sd.recluster(adata, desc.pretrained, constraints=[Selection(["cell1", "cell2"])], copy=True)


def test_explore_lists_selections_undoes_them_and_reclusters_with_them():
    at = load_builtin(new_app())
    start_training(at, "scdcc", 10)
    wait_for_run(at)
    at.switch_page("pages/explore.py").run()
    assert not at.exception and any("No selections yet" in i.value for i in at.info)
    names = list(at.session_state["adata"].obs_names)
    at.session_state["teach"] = [  # three lassos, as the chart's selection buttons add them
        {"cells": names[:20], "kind": "same", "versus": None},
        {"cells": names[100:130], "kind": "same", "versus": None},
        {"cells": names[200:210], "kind": "different", "versus": 1},
    ]
    at.run()
    assert not at.exception
    assert at.dataframe[-1].value["cells"].tolist() == [20, 30, 10]
    assert any("625 must-link" in m.value and "300 cannot-link" in m.value for m in at.markdown)
    at.selectbox(key="teach_undo_which").set_value(2)
    at.button(key="teach_undo").click().run()
    assert not at.exception
    assert at.session_state["teach"] == [{"cells": names[:20], "kind": "same", "versus": None}], (
        "undoing selection 2 also drops the 'different' that pointed at it"
    )
    at.button(key="teach_go").click().run()
    assert not at.exception
    before = set(at.session_state["runs"])
    at.switch_page("pages/train.py").run()  # its status hands the ended run over (AppTest runs no sidebar)
    start = time.time()
    while set(at.session_state["runs"]) == before and time.time() - start < 300:
        time.sleep(1.5)
        at.run()
    (new_key,) = set(at.session_state["runs"]) - before
    taught = at.session_state["runs"][new_key]
    assert len(taught.constraints["pairs"]) == 190
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="explore_run").set_value(new_key).run()
    assert not at.exception
    assert any("Taught with 1 selections" in c.value for c in at.caption)
    assert any("changed cluster" in m.value for m in at.markdown), "before/after against the run it was taught from"


def test_must_link_groups_anchor_the_initial_clusters_where_kmeans_splits_a_large_type():
    """A large type and two small close ones: KMeans cuts the large one and merges the small ones;
    started from five marked cells of each, the anchored k-means keeps the three types."""
    from sklearn.cluster import KMeans

    from scdeep_core.constraints import PairConstraints, must_link_groups
    from scdeep_core.metrics import ari
    from scdeep_core.recipe import seeded_kmeans

    rng = np.random.default_rng(0)
    z = np.concatenate(
        [rng.normal([0, 0], 1.5, (2000, 2)), rng.normal([7, 0], 0.4, (60, 2)), rng.normal([7, 1.6], 0.4, (60, 2))]
    )
    truth = np.repeat([0, 1, 2], [2000, 60, 60])
    assert ari(truth, KMeans(3, n_init=20, random_state=0).fit_predict(z)) < 0.5
    marked = [rng.choice(np.flatnonzero(truth == t), 5, replace=False) for t in range(3)]
    ml = np.concatenate([np.column_stack([m[:-1], m[1:]]) for m in marked])  # a chain within each type
    groups = must_link_groups(PairConstraints(ml, np.zeros((0, 2), np.int64), np.zeros(len(z), bool)), len(z))
    assert sorted(map(len, groups)) == [5, 5, 5]
    assert ari(truth, seeded_kmeans(z, 3, groups, seed=0)) > 0.9
    labels = seeded_kmeans(z, 4, groups[:2], seed=0)  # fewer groups than clusters: the rest are free centres
    assert len(set(labels)) == 4 and len({labels[g[0]] for g in groups[:2]}) == 2
    # one type marked twice: two anchors side by side, neither cluster left empty (an empty one has no centroid)
    twice = [marked[0][:1], marked[0][1:], marked[1], marked[2]]
    labels = seeded_kmeans(z, 4, twice, seed=0)
    assert np.bincount(labels, minlength=4).min() > 0
    same_place = [np.array([0, 1]), np.array([2, 3])]  # two groups with one mean: every cell nearest the first
    z4 = np.array([[-1.0, 0], [1, 0], [0, -1], [0, 1], [5, 5], [6, 5]])
    assert sorted(seeded_kmeans(z4, 3, same_place, seed=0)[:4]) == [0, 0, 1, 1], "the second group keeps its cells"


def test_with_an_automatic_k_the_marked_types_set_the_least_number_of_clusters(pretrained_run):
    """Five 'same type' selections (the simulator's four groups, one marked twice apart) on a run
    whose k was chosen automatically: at least five clusters, and the note says why."""
    adata, cfg, _ = pretrained_run
    auto = sd.config_for("scdcc", n_clusters="auto", pretrain_epochs=15)
    base = sd.fit(adata, auto, label_key="group", copy=True)
    rng = np.random.default_rng(1)
    groups = adata.obs["group"].cat.categories
    cells = [rng.choice(adata.obs_names[adata.obs["group"] == g], 20, replace=False) for g in groups]
    selections = [Selection(list(c)) for c in cells] + [Selection(list(cells[0][10:]))]
    selections[0] = Selection(list(cells[0][:10]))  # the first group marked as two types
    taught = sd.recluster(adata, base.pretrained, auto, constraints=selections, copy=True)
    assert taught.n_clusters >= 5
    notes = " ".join(taught.notes)
    assert "anchored on the 5 groups" in notes
    if base.n_clusters < 5:
        assert f"automatic choice was {base.n_clusters}" in notes
