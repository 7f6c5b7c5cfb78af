"""The dashboard pages driven with Streamlit's AppTest (real app code, real training)."""

import json
import time
from pathlib import Path

import pytest
from conftest import shared_file
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def load_builtin(at: AppTest, name: str = "pbmc68k_reduced") -> AppTest:
    at.selectbox(key="builtin_name").set_value(name).run()
    at.button(key="load_builtin").click().run()
    assert not at.exception
    return at


def wait_for_run(at: AppTest, timeout: float = 300) -> None:
    start = time.time()
    while time.time() - start < timeout:
        time.sleep(1.5)
        at.run()  # AppTest never fires run_every timers: poll by rerunning
        assert not at.exception
        if at.session_state["runs"]:
            return
    raise AssertionError("training did not finish in time")


def test_data_page_builtin_pbmc_summary_and_qc():
    at = load_builtin(new_app())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["cells"] == "700" and metrics["genes"] == "765" and metrics["integer counts"] == "yes"
    assert at.session_state["label_key"] == "bulk_labels"
    assert any("700 of 700 cells" in m.value for m in at.markdown)
    assert any(m.value.startswith("Loaded now: **pbmc68k_reduced**") for m in at.markdown)
    genes = at.slider(key="f_genes")
    genes.set_value(genes.max).run()  # the median: about half the cells fail
    remaining = [m.value for m in at.markdown if "cells** pass" in m.value][0]
    assert "of 700 cells" in remaining and "700 of 700" not in remaining
    at.button(key="apply_filters").click().run()
    assert not at.exception and at.session_state["adata"].n_obs < 700


def test_upload_real_h5ad():
    path = shared_file("pbmc_10x_4271.h5ad")
    at = new_app()
    at.radio(key="data_source").set_value("Upload a file").run()
    at.file_uploader(key="upload").upload(path.name, path.read_bytes()).run()
    assert not at.exception
    assert at.session_state["adata"].shape == (4271, 2000)
    assert at.session_state["label_key"] == "label"


def test_bad_upload_shows_error_and_app_keeps_working():
    at = new_app()
    at.radio(key="data_source").set_value("Upload a file").run()
    at.file_uploader(key="upload").upload("bad.csv", b"gene,c1,c2\nA,1,x\nB,2,3\n").run()
    assert not at.exception
    assert any("non-numeric" in e.value for e in at.error)
    at.radio(key="data_source").set_value("Built-in dataset").run()
    load_builtin(at)
    assert at.session_state["adata"].n_obs == 700


def start_training(at: AppTest, method: str, pretrain_epochs: int, **extra) -> None:
    at.switch_page("pages/train.py").run()
    at.radio(key="method").set_value(method).run()
    at.number_input(key=f"hp_{method}_pre").set_value(pretrain_epochs).run()
    for k, v in extra.items():
        at.number_input(key=k).set_value(v).run()
    at.button(key="start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_train_desc_then_explore_results():
    """The thorough preset here (a consensus of three models): the other walks train one model."""
    at = load_builtin(new_app())
    at.switch_page("pages/train.py").run()
    at.radio(key="preset").set_value("thorough").run()
    start_training(at, "desc", 15)
    wait_for_run(at)
    assert at.session_state["runs"]["desc"].consensus["n_models"] == 3
    adata = at.session_state["adata"]
    assert "desc_cluster" in adata.obs and "X_desc_umap" in adata.obsm
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    assert any("consensus of 3 models" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert 0.2 < float(metrics["ARI"]) <= 1 and 0 < float(metrics["ACC"]) <= 1
    # beside the run, the standard scanpy path on the same cells, computed without asking (700 cells)
    assert -1 <= float(metrics["agreement (ARI)"]) <= 1 and int(metrics["standard clusters"]) >= 2
    assert at.session_state["standard_labels"].shape == (700,)
    at.radio(key="colour_by").set_value("confidence (max q)").run()
    at.slider(key="conf_threshold").set_value(0.7).run()
    at.button(key="markers_btn").click().run()
    assert not at.exception and len(at.dataframe) >= 1
    at.switch_page("pages/train.py").run()
    at.switch_page("pages/explore.py").run()
    assert at.radio(key="colour_by").value == "confidence (max q)", "the view is as the user left it"
    assert at.slider(key="conf_threshold").value == 0.7
    # one colour per cluster, stored the scanpy way and used by the UMAP and the box plot alike
    colours = list(adata.uns["desc_cluster_colors"])
    assert len(colours) == adata.obs["desc_cluster"].cat.categories.size

    # name the clusters: the markers are the hint, then rename, merge and split
    assert any("(" in o for o in at.selectbox(key="rename_group_0").options), (
        "top marker genes shown next to each cluster"
    )
    first, second, third = list(adata.obs["desc_cluster"].cat.categories)[:3]
    cells = (adata.obs["desc_cluster"] == first).to_numpy()

    def form(name: str) -> str:  # the annotation form's widget keys change with each edit
        return f"{name}_{at.session_state['annotation_edits'] if 'annotation_edits' in at.session_state else 0}"

    at.selectbox(key=form("rename_group")).set_value(first)
    at.text_input(key=form("rename_to")).input("B cells")
    at.button(key="rename_btn").click().run()
    assert not at.exception and not at.error
    assert (adata.obs["desc_annotation"][cells] == "B cells").all()
    assert adata.uns["desc_annotation_colors"][0] == colours[0], "a renamed cluster keeps its colour"
    assert at.radio(key="colour_by").value.startswith("cell type"), "the UMAP shows the names"
    assert at.text_input(key=form("rename_to")).value == "", "the form starts afresh after an edit"
    at.text_input(key=form("rename_to")).input("B cells")
    at.selectbox(key=form("rename_group")).set_value(second)
    at.button(key="rename_btn").click().run()
    assert not at.exception and any("merge" in e.value for e in at.error), "a duplicate name is refused with a way out"
    at.multiselect(key=form("merge_groups")).set_value([second, third])
    at.text_input(key=form("merge_to")).input("T cells")
    at.button(key="merge_btn").click().run()
    assert not at.exception and not at.error and "T cells" in adata.obs["desc_annotation"].cat.categories
    at.selectbox(key=form("split_group")).set_value("T cells")
    at.button(key="split_btn").click().run()
    assert not at.exception and {"T cells.1", "T cells.2"} <= set(adata.obs["desc_annotation"].cat.categories)
    assert (adata.obs["desc_cluster"][cells] == first).all(), "the run's own clusters are untouched"
    from scdeep_core.results import labels_table

    assert "desc_annotation" in labels_table(adata, "desc")
    snippet = next(c.value for c in at.code if "sd.fit(" in c.value)
    assert "adata = sd.datasets.load_builtin('pbmc68k_reduced')" in snippet, "the snippet rereads the data the run used"

    # another dataset: nothing derived from the first one survives (markers, names, the download)
    at.switch_page("pages/data.py").run()
    assert not at.exception
    offered = next(m.value for m in at.markdown if m.value.startswith("**Columns that look like labels:**"))
    assert "bulk_labels" in offered and "desc_cluster" not in offered and "desc_annotation" not in offered
    load_builtin(at, "simulated")
    assert (
        not [k for k in at.session_state if str(k).startswith("markers_")] and "_h5ad_download" not in at.session_state
    )
    assert "standard_labels" not in at.session_state
    at.switch_page("pages/explore.py").run()
    assert not at.exception and any("Train a model" in i.value for i in at.info)


def test_stop_mid_run_keeps_page_usable():
    at = load_builtin(new_app())
    start_training(at, "scdcc", 2000)
    time.sleep(4)
    at.run()
    at.button(key="stop").click().run()
    wait_for_run(at, timeout=120)
    result = at.session_state["runs"]["scdcc"]
    assert result.stage == "pretrain"  # stopped during pretraining: labels from the initial clustering
    assert len(result.labels) == 700
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    assert any("Stopped" in w.value or "stopped during pretraining" in w.value for w in [*at.warning, *at.caption])
    # No UMAP yet: every scatter of the run names what it draws, the embedding's first two dimensions.
    layouts = [json.loads(chart.proto.spec)["layout"] for chart in at.get("plotly_chart")]
    scatters = [lay for lay in layouts if lay.get("dragmode") == "lasso"]
    assert scatters and "first two dimensions of the scdcc embedding" in scatters[0]["title"]["text"]
    assert all(lay["xaxis"]["title"]["text"] == "embedding dimension 1" for lay in scatters)


def test_learn_page_step_lowers_the_loss_and_slider_responds():
    at = new_app()
    at.switch_page("pages/learn.py").run()
    # works with no dataset loaded (built-in PBMC); figures are images, cheap for the browser to draw
    assert not at.exception and len(at.get("image")) >= 4 and not at.get("plotly_chart")
    assert at.table, "the shares of q and p are a plain table (cheap to draw)"

    def kl() -> float:
        return float(next(m.value for m in at.metric if m.label.startswith("KL")))

    before = kl()
    at.button(key="learn_step").click().run()
    at.button(key="learn_run20").click().run()
    assert not at.exception and kl() < before
    conf_before = next(m.value for m in at.metric if m.label.startswith("mean confidence"))
    at.slider(key="learn_alpha").set_value(8.0).run()
    assert next(m.value for m in at.metric if m.label.startswith("mean confidence")) != conf_before
    at.toggle(key="learn_norm").set_value(False).run()
    assert not at.exception
    at.button(key="learn_reset").click().run()
    assert not at.exception and at.session_state["learn_losses"] == []


def test_auto_k_chart_and_recluster_from_the_same_pretrained_model():
    at = load_builtin(new_app())
    start_training(at, "desc", 20)  # default: k chosen automatically
    wait_for_run(at)
    first = at.session_state["runs"]["desc"]
    assert first.k_selection is not None and first.n_clusters == first.k_selection.n_clusters
    at.run()
    assert any(h.value == "How k was chosen" for h in at.subheader)
    other = next(k for k in at.selectbox(key="recluster_k_train_desc").options if int(k) != first.n_clusters)
    at.selectbox(key="recluster_k_train_desc").set_value(int(other)).run()
    at.button(key="recluster_go_train_desc").click().run()
    assert not at.exception and not at.error
    start = time.time()
    while "desc_2" not in at.session_state["runs"] and time.time() - start < 120:
        time.sleep(1)
        at.run()
    second = at.session_state["runs"]["desc_2"]
    assert second.n_clusters == int(other) and second.pretrained is first.pretrained  # no new pretraining
    assert "desc_2_cluster" in at.session_state["adata"].obs
    at.switch_page("pages/explore.py").run()
    assert not at.exception and any("How k was chosen" in e.label for e in at.expander)


def test_constrained_run_is_scored_on_held_out_cells_in_explore():
    at = load_builtin(new_app())
    at.switch_page("pages/train.py").run()
    at.radio(key="method").set_value("scdcc").run()
    at.radio(key="k_mode").set_value("k").run()
    at.selectbox(key="c_source").set_value("labels").run()
    at.selectbox(key="c_label").set_value("bulk_labels").run()
    start_training(at, "scdcc", 10)
    wait_for_run(at)
    result = at.session_state["runs"]["scdcc"]
    assert result.eval_mask.sum() < 700
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    assert any("not used for constraints" in c.value for c in at.caption)
    shown = float(next(m.value for m in at.metric if m.label == "ARI"))
    assert shown == pytest.approx(result.scores["ari"], abs=5e-4)  # the page scores the same held-out cells as the run


def test_upload_whose_orientation_cannot_be_told_asks_and_rereads():
    at = new_app()
    at.radio(key="data_source").set_value("Upload a file").run()
    rows = "\n".join(f"{i}," + ",".join(str((i * j) % 5 + 1) for j in range(6)) for i in range(40))
    at.file_uploader(key="upload").upload(
        "mystery.csv", ("id," + ",".join(f"v{j}" for j in range(6)) + "\n" + rows).encode()
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Cannot tell whether rows or columns are the cells" in e and "mystery.csv" in e for e in errors), errors
    assert not any("scdeep_upload_" in e for e in errors)  # the user's file name, never our temp file
    at.selectbox(key="orientation").set_value("cells_x_genes").run()
    assert not at.exception and not at.error
    assert at.session_state["adata"].shape == (40, 6)


def test_dataset_cannot_change_under_a_running_job():
    at = load_builtin(new_app())
    start_training(at, "desc", 5000)  # long enough to still run below
    at.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("Built-in dataset").run()
    at.selectbox(key="builtin_name").set_value("simulated").run()
    at.button(key="load_builtin").click().run()
    assert not at.exception
    assert any("stop it" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["adata"].n_obs == 700  # the dataset the run trains on is still loaded
    at.switch_page("pages/train.py").run()
    at.button(key="stop").click().run()
    wait_for_run(at, timeout=120)


def test_server_files_only_from_the_named_data_folder(tmp_path, monkeypatch, pbmc_demo):
    at = new_app()
    assert "Data folder on the server" not in at.radio(key="data_source").options  # off by default
    folder = tmp_path / "data"
    folder.mkdir()
    pbmc_demo.write_h5ad(folder / "pbmc.h5ad")
    (folder / "escape.csv").symlink_to("/etc/os-release")
    monkeypatch.setenv("SCDEEP_DATA_DIR", str(folder))
    at = new_app()
    at.radio(key="data_source").set_value("Data folder on the server").run()
    assert at.selectbox(key="server_file").options == ["pbmc.h5ad"]  # the link out of the folder is not offered
    at.button(key="load_path").click().run()
    assert not at.exception and at.session_state["adata"].n_obs == 700


def test_resolve_in_folder_refuses_escapes(tmp_path):
    from scdeep_core.errors import InputError
    from scdeep_core.io import resolve_in_folder

    (tmp_path / "ok.csv").write_text("x")
    assert resolve_in_folder(tmp_path, "ok.csv") == (tmp_path / "ok.csv").resolve()
    for name in ("../../etc/passwd", "/etc/passwd", "missing.csv"):
        with pytest.raises(InputError) as info:
            resolve_in_folder(tmp_path, name)
        assert "/etc" not in str(info.value)


def test_failed_run_shows_its_error_once_and_the_page_idles():
    at = new_app()
    at.radio(key="data_source").set_value("Upload a file").run()
    rows = "\n".join(f"cell{i}," + ",".join(f"{(i * j) % 7 + 0.5}" for j in range(12)) for i in range(60))
    at.file_uploader(key="upload").upload(
        "decimals.csv", ("cell," + ",".join(f"GENE{j}" for j in range(12)) + "\n" + rows).encode()
    ).run()
    assert at.session_state["adata"].shape == (60, 12)
    at.switch_page("pages/train.py").run()
    at.radio(key="method").set_value("scdcc").run()
    at.button(key="start").click().run()  # scDCC needs integer counts: this run fails at once
    job = None
    for _ in range(60):
        time.sleep(0.5)
        at.run()  # with a rerun loop (the old harvest of a failed run) AppTest would never return from here
        from pages.common import registry

        job = registry().get(at.session_state["job_id"])
        if job is not None and job.status == "failed":
            break
    assert job is not None and job.status == "failed"
    started = time.time()
    for _ in range(3):
        at.run()
    assert time.time() - started < 30 and not at.exception
    errors = [e.value for e in at.error]
    assert sum("Training failed" in e and "not integers" in e for e in errors) == 1, errors
    assert job.job_id in at.session_state["harvested"]  # handed over once: the page stops polling


@pytest.mark.parametrize("page", ["pages/train.py", "pages/explore.py", "pages/data.py"])
def test_a_page_with_nothing_to_show_keeps_the_sidebar(page):
    """A fresh session on Train or Explore is not a dead end: the page says what to do and the
    navigation is still there (st.stop() used to drop the sidebar drawn after the page)."""
    at = new_app()
    at.switch_page(page).run()
    assert not at.exception and at.info, "the page tells the user what to do first"
    sidebar_text = " ".join(m.value for m in at.sidebar.markdown)
    assert "scDeep" in sidebar_text and "Training" in sidebar_text
    assert any("None loaded" in c.value for c in at.sidebar.caption)


def test_a_pages_url_opened_first_on_a_fresh_server_runs_inside_the_app():
    """Streamlit's older multipage mode (kept while a pages/ folder exists and no st.navigation
    call has happened yet) ran pages/train.py alone, without app.py: an AttributeError on screen."""
    at = AppTest.from_file(APP, default_timeout=120)  # resets Streamlit's pages-folder mode
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert any("Load a dataset" in i.value for i in at.info)
    assert any("None loaded" in c.value for c in at.sidebar.caption)


def test_the_train_form_is_made_from_the_config_fields():
    from scdeep_core.config import CONFIG_CLASSES, settings

    at = load_builtin(new_app())
    at.switch_page("pages/train.py").run()
    own_widgets = {"n_clusters", "resolution", "hidden_dims", "pretrain_epochs", "constraints", "batch_key"}
    own_widgets |= {"shuffle_block"}  # out of core only: not on the page, which trains in memory
    own_widgets |= {"n_models"}  # the preset's radio
    presets = at.radio(key="preset")
    assert presets.value == "fast" and [o.split(":")[0] for o in presets.options] == ["Fast", "Thorough"]
    for method in ("desc", "scdcc"):
        at.radio(key="method").set_value(method).run()
        assert not at.exception
        for s in settings([CONFIG_CLASSES[method]]):
            if s.name in own_widgets:
                continue
            kind = at.selectbox if s.choices else at.text_input if s.kind is str else at.number_input
            widget = kind(key=f"hp_{method}_{s.name}")
            assert s.name in widget.label and s.help == widget.help, s.name
            if s.name != "n_top_genes":  # capped at the data's 765 genes
                assert widget.value == s.defaults[method], s.name
    at.radio(key="method").set_value("desc").run()
    import torch

    if not torch.cuda.is_available():  # a GPU asked for where there is none: a message, no run queued
        at.text_input(key="hp_desc_device").input("cuda").run()
        at.button(key="start").click().run()
        assert not at.exception and any("no usable CUDA GPU" in e.value for e in at.error)
        assert "Traceback" not in " ".join(e.value for e in at.error) and not at.session_state["runs"]
        at.text_input(key="hp_desc_device").input("auto").run()
    # A setting changed in the form reaches the run's config.
    at.number_input(key="hp_desc_min_cluster_epochs").set_value(2).run()
    at.number_input(key="hp_desc_pre").set_value(3).run()
    at.selectbox(key="hp_desc_init_method").set_value("kmeans").run()
    at.button(key="start").click().run()
    wait_for_run(at)
    assert at.session_state["runs"]["desc"].config["min_cluster_epochs"] == 2
    assert at.session_state["runs"]["desc"].config["init_method"] == "kmeans"


def test_choices_survive_other_pages_until_the_data_changes():
    """Streamlit forgets a widget's value after a run that does not draw it: a visit to Explore
    used to put the Train page back to scDCC, the fast preset and an automatic k."""
    at = load_builtin(new_app())
    # The Data page's choice of what to load next stays too.
    at.selectbox(key="builtin_name").set_value("simulated").run()
    at.slider(key="sim_groups").set_value(6).run()
    at.switch_page("pages/train.py").run()
    at.switch_page("pages/data.py").run()
    assert at.selectbox(key="builtin_name").value == "simulated" and at.slider(key="sim_groups").value == 6
    at.switch_page("pages/train.py").run()
    at.radio(key="method").set_value("desc").run()
    at.radio(key="preset").set_value("thorough").run()
    at.radio(key="k_mode").set_value("k").run()
    at.number_input(key="hp_k").set_value(6).run()
    at.number_input(key="hp_desc_dropout").set_value(0.3).run()
    for page in ("pages/explore.py", "pages/learn.py", "pages/data.py"):
        at.switch_page(page).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.warning
    assert (at.radio(key="method").value, at.radio(key="preset").value, at.radio(key="k_mode").value) == (
        "desc",
        "thorough",
        "k",
    )
    assert at.number_input(key="hp_k").value == 6 and at.number_input(key="hp_desc_dropout").value == 0.3
    # Other data: the method and preset stay, k goes back to the new data's number of labelled types.
    at.switch_page("pages/data.py").run()
    load_builtin(at, "simulated")
    at.switch_page("pages/train.py").run()
    assert not at.exception and at.radio(key="method").value == "desc"
    assert at.number_input(key="hp_k").value == at.session_state["adata"].obs[at.session_state["label_key"]].nunique()
