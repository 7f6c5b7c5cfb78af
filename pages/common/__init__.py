"""Session state, the job registry and the sidebar shared by every page (UI glue only)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import anndata as ad
import streamlit as st

from scdeep_core.config import method_name
from scdeep_core.jobs import BusyError, JobRegistry, TrainingJob
from scdeep_core.results import write_to_adata
from scdeep_core.worker import warm_up

#: ``persist_state`` of every widget holding a user's choice: it stays while another page is open.
#: (By default Streamlit forgets an undrawn widget's value, so a visit to Explore put Train back to
#: scDCC, the fast preset and an automatic k.) Choices that belong to the data go when the data
#: changes (:func:`set_dataset`); a kept value the new options lack falls back to the default.
KEEP = "session"


@st.cache_resource
def registry() -> JobRegistry:
    """One registry for the whole server: a reloaded tab finds its job again. Training runs
    in processes forked from one that has the engine imported: start it now, not at the first run."""
    warm_up()
    return JobRegistry(max_running=1)


class _SessionOwner:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]


@st.cache_resource(scope="session", on_release=lambda owner: registry().release_owner(owner.id))
def session_owner() -> _SessionOwner:
    """An id for this browser session; when the session closes its jobs are stopped."""
    return _SessionOwner()


def require_app() -> None:
    """Make sure the page runs inside ``app.py`` (state, navigation, sidebar).

    Streamlit keeps its older multipage mode for apps with a ``pages/`` folder until the first
    ``st.navigation`` call of the server process: a fresh server whose first request is a page's
    URL (``/train``) ran ``pages/train.py`` alone, with no session state (an AttributeError on
    screen). Switch the old mode off and run again: app.py then runs and opens that page.
    """
    if "adata" in st.session_state:
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    st.rerun()


def init_state() -> None:
    ss = st.session_state
    ss.setdefault("adata", None)
    ss.setdefault("dataset_name", None)
    ss.setdefault("label_key", None)
    ss.setdefault("runs", {})
    ss.setdefault("job_id", st.query_params.get("job"))
    ss.setdefault("harvested", set())
    job = registry().adopt(ss.job_id, session_owner().id) if ss.job_id else None
    if ss.job_id and job is None:
        ss.job_id = None  # a link to someone else's run (or an expired one): nothing to show
        st.query_params.pop("job", None)
    if job is not None and ss.adata is None and job.adata is not None:
        # A reload lost the session: take the job's own copy of the data back.
        ss.adata, ss.dataset_name, ss.label_key = job.adata, "data of a running job", job.label_key
    if job is not None and not job.active:
        harvest(job)  # a run that ended while another page was open


#: The app's pages (script, title, icon): app.py registers them, the sidebar links to them.
PAGES = [
    ("pages/data.py", "Data", ":material/upload_file:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/explore.py", "Explore", ":material/explore:"),
    ("pages/learn.py", "Learn", ":material/school:"),
]


def end_page() -> None:
    """End the page here (nothing to show yet) and keep the navigation.

    ``app.py`` draws the sidebar after the page; ``st.stop()`` ends the whole run, so the
    sidebar is drawn first (a fresh session on Train or Explore used to be a dead end).
    """
    sidebar()
    st.stop()


class DatasetBusyError(RuntimeError):
    """The session's dataset cannot change while one of its runs trains."""


def set_dataset(adata: ad.AnnData, name: str, recipe: str | None = None) -> None:
    """Make ``adata`` the session's dataset (results of earlier runs are dropped); ``recipe`` is
    Python that makes ``adata`` again with ``scdeep_core as sd`` (for the reproduce snippet).

    Raises
    ------
    DatasetBusyError
        While this session's run trains: its results belong to the current dataset.
    """
    ss = st.session_state
    job = current_job()
    if job is not None and job.active:
        raise DatasetBusyError(
            f"A {method_name(job.method)} run is training on {ss.dataset_name}: stop it (Train page) before loading "
            "other data."
        )
    registry().forget_ended(session_owner().id)  # their results belong to the data being replaced
    ss.adata, ss.dataset_name, ss.runs = adata, name, {}
    ss.dataset_recipe = recipe or f"adata = sd.io.read_counts({name!r})"
    label_like = [
        c for c in adata.obs.columns if c in ("label", "labels", "cell_type", "celltype", "bulk_labels", "group")
    ]
    ss.label_key = label_like[0] if label_like else None
    # Views derived from the old data go with it (QC, cached figures, the Learn page's gene).
    derived = [
        "qc",
        "figure_cache",
        "f_counts",
        "f_genes",
        "f_mt",
        "_h5ad_download",
        "annotation_edits",
        "colour_by",
        "obs_col",  # Explore's colour by a column or a gene of the old data
        "gene",
        "batch_key",  # a column of the old data
        "batch_select",
        "hp_k",  # its default is the new data's number of labelled types
        "c_label",  # constraint settings naming the old data's columns
        "c_obsm",
        "teach",  # constraint selections name the old data's cells
        "taught_from",
        "standard_labels",
        "learn_genes_of",
        "learn_genes",
        "learn_gene",
        "learn_mean",
        "learn_theta",
        "learn_pi",
        "learn_run",
    ]
    derived += [
        key for key in ss if str(key).startswith("markers_")
    ]  # per run key: "desc" again on new data is another run
    derived += [key for key in ss if str(key).endswith("_n_top_genes")]  # bounded by the new data's genes
    for key in derived:
        ss.pop(key, None)


T = TypeVar("T")


def session_figure(name: str, key: tuple, draw: Callable[[], T]) -> T:
    """What ``draw()`` returns (an image, a figure, scores), made again only when ``key`` changes
    (one per ``name`` kept in this session's state, dropped with its dataset): revisiting a page
    costs nothing."""
    cache = st.session_state.setdefault("figure_cache", {})
    if name not in cache or cache[name][0] != key:
        cache[name] = (key, draw())
    return cache[name][1]


def next_key(method: str) -> str:
    """Result key for the next run of ``method`` in this session: desc, desc_2, ..."""
    n = sum(1 for k in st.session_state.runs if k == method or k.startswith(f"{method}_")) + 1
    return method if n == 1 else f"{method}_{n}"


def submit(job: TrainingJob) -> None:
    """Start (or queue) ``job`` for this session and remember it; earlier ended runs of the
    session were harvested already and are dropped with their copy of the data."""
    registry().forget_ended(session_owner().id)
    registry().submit(job)
    st.session_state.job_id = job.job_id
    st.query_params["job"] = job.job_id


def k_selection_of(result):
    """The automatic-k scan behind ``result``: its own, or that of the pretrained model it re-clustered."""
    if result.k_selection is not None:
        return result.k_selection
    return getattr(result.pretrained, "k_selection", None)


def k_selection_panel(result, where: str) -> None:
    """Why the automatic k: the stability chart, the candidates, and re-clustering with another k
    from the same pretrained autoencoder (no pretraining again)."""
    import dataclasses

    from scdeep_core import figures
    from scdeep_core.config import CONFIG_CLASSES

    sel = k_selection_of(result)
    st.plotly_chart(
        figures.k_selection_chart(sel.table, sel.n_clusters, sel.chosen),
        width="stretch",
        key=f"ksel_chart_{where}_{result.key}",
    )
    st.caption(
        sel.summary() + " A clustering is *reproducible* when re-running it on random 80 % subsets of the cells "
        "gives the same groups (stability near 1)."
    )
    if result.k_selection is None:
        st.caption(f"Run **{result.key}** re-clustered this pretrained model with k = {result.n_clusters}.")
    if result.pretrained is None:
        st.caption("The pretrained model of this run is not in memory (loaded from a file): train again to re-cluster.")
        return
    options = sorted(set(int(k) for k in sel.table["n_clusters"] if k >= 2) | {result.n_clusters})
    c1, c2 = st.columns([1, 2])
    k = c1.selectbox(
        "Re-cluster with k =",
        options,
        index=options.index(result.n_clusters),
        key=f"recluster_k_{where}_{result.key}",
        help="Runs only the clustering stage, from the same pretrained autoencoder: seconds, not minutes.",
    )
    ss = st.session_state

    def go() -> None:
        ss.train_error = None
        cfg = dataclasses.replace(CONFIG_CLASSES[result.method].from_dict(result.config), n_clusters=int(k))
        try:
            submit(
                TrainingJob(
                    ss.adata,
                    result.method,
                    cfg,
                    label_key=ss.label_key,
                    key=next_key(result.method),
                    owner=session_owner().id,
                    pretrained=result.pretrained,
                )
            )
        except (BusyError, ValueError) as exc:
            ss.train_error = str(exc)

    c2.button(
        f"Re-cluster with k = {k}", on_click=go, key=f"recluster_go_{where}_{result.key}", icon=":material/replay:"
    )
    if where != "train":
        if ss.get("train_error"):
            st.error(ss.train_error)
        job = current_job()
        if job is not None and job.active and job.pretrained is result.pretrained:
            st.info(
                f"Re-clustering with k = {job.config.n_clusters} as run **{job.key}**: follow it on the Train page."
            )
            st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")


def current_job() -> TrainingJob | None:
    """This session's latest job (the registry keeps it until the session closes)."""
    job = registry().get(st.session_state.get("job_id"))
    return job if job is not None and job.owner == session_owner().id else None


def harvest(job: TrainingJob) -> bool:
    """Hand an ended job over to its session, once: copy its result keys into the session's
    dataset, only if it is the dataset the job trained on (same cells). True the first time
    (the page reruns once to show it), False afterwards and while the job is active."""
    ss = st.session_state
    if job.active or job.job_id in ss.harvested or ss.adata is None:
        return False
    same_cells = (
        job.adata is not None and ss.adata.n_obs == job.adata.n_obs and ss.adata.obs_names.equals(job.adata.obs_names)
    )
    if job.result is not None and same_cells:
        write_to_adata(ss.adata, job.result)
        umap_key = f"X_{job.key}_umap"
        if umap_key in job.adata.obsm:
            ss.adata.obsm[umap_key] = job.adata.obsm[umap_key]
        ss.runs[job.key] = job.result
        job.share_data(ss.adata)  # one copy of the cells in memory, not two
    else:
        job.release_data()
    ss.harvested.add(job.job_id)
    return True


def sidebar() -> None:
    """Navigation links, the loaded dataset and the training status."""
    ss = st.session_state
    with st.sidebar:
        st.markdown("## scDeep")
        for script, title, icon in PAGES:
            st.page_link(script, label=title, icon=icon)
        st.markdown("### Dataset")
        if ss.adata is None:
            st.caption("None loaded: go to **Data**.")
        else:
            st.markdown(f"**{ss.dataset_name}**  \n{ss.adata.n_obs:,} cells x {ss.adata.n_vars:,} genes")
            st.caption(f"label column: {ss.label_key or '-'}")
        job = current_job()
        # Decorated per run: the refresh interval depends on whether a job runs now.
        st.fragment(run_every=2.0 if job is not None and job.active else None)(job_status)()


def job_status() -> None:
    """Training status in the sidebar, refreshed while a job runs."""
    st.markdown("### Training")
    job = current_job()
    if job is None:
        st.caption("No run yet.")
    else:
        view = job.snapshot()
        where = f"#{view.queue_position + 1} in the queue" if view.status == "queued" else view.phase
        st.markdown(
            f"**{method_name(view.method)}**: {view.status}" + (f" ({where})" if where and where != view.status else "")
        )
        if view.status == "running":
            st.progress(view.progress)
        elif harvest(job):
            st.rerun()  # the run ended while this page was open: show its result everywhere
    if st.session_state.runs:
        st.caption("Results: " + ", ".join(st.session_state.runs))
