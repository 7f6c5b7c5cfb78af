"""Session state, the job registry and the sidebar shared by every page (UI glue only)."""
from __future__ import annotations

import uuid

import anndata as ad
import streamlit as st

from scdeep_core.jobs import JobRegistry, TrainingJob
from scdeep_core.results import write_to_adata


@st.cache_resource
def registry() -> JobRegistry:
    """One registry for the whole server: a reloaded tab finds its job again."""
    return JobRegistry(max_running=1)


class _SessionOwner:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]


@st.cache_resource(scope="session", on_release=lambda owner: registry().release_owner(owner.id))
def session_owner() -> _SessionOwner:
    """An id for this browser session; when the session closes its jobs are stopped."""
    return _SessionOwner()


def init_state() -> None:
    ss = st.session_state
    ss.setdefault("adata", None)
    ss.setdefault("dataset_name", None)
    ss.setdefault("label_key", None)
    ss.setdefault("runs", {})
    ss.setdefault("job_id", st.query_params.get("job"))
    ss.setdefault("harvested", set())
    job = registry().adopt(ss.job_id, session_owner().id) if ss.job_id else None
    if job is not None and ss.adata is None:
        # A reload lost the session: take the job's own copy of the data back.
        ss.adata, ss.dataset_name, ss.label_key = job.adata, "data of a running job", job.label_key


def set_dataset(adata: ad.AnnData, name: str) -> None:
    """Make ``adata`` the session's dataset (results of earlier runs are dropped)."""
    ss = st.session_state
    ss.adata, ss.dataset_name, ss.runs = adata, name, {}
    label_like = [c for c in adata.obs.columns if c in ("label", "labels", "cell_type", "celltype", "bulk_labels", "group")]
    ss.label_key = label_like[0] if label_like else None
    ss.pop("qc", None)


def current_job() -> TrainingJob | None:
    return registry().get(st.session_state.get("job_id"))


def harvest(job: TrainingJob) -> None:
    """Copy a finished job's result keys into the session's dataset (once)."""
    ss = st.session_state
    if job.result is None or job.job_id in ss.harvested or ss.adata is None:
        return
    if ss.adata.n_obs != job.adata.n_obs:
        return
    write_to_adata(ss.adata, job.result)
    umap_key = f"X_{job.key}_umap"
    if umap_key in job.adata.obsm:
        ss.adata.obsm[umap_key] = job.adata.obsm[umap_key]
    ss.runs[job.key] = job.result
    ss.setdefault("confidence_traces", {})[job.key] = job.snapshot().confidence_trace
    ss.harvested.add(job.job_id)


def sidebar(pages: list) -> None:
    """Navigation links, the loaded dataset and the training status."""
    ss = st.session_state
    with st.sidebar:
        st.markdown("## scDeep")
        for page in pages:
            st.page_link(page)
        st.markdown("### Dataset")
        if ss.adata is None:
            st.caption("None loaded: go to **Data**.")
        else:
            st.markdown(f"**{ss.dataset_name}**  \n{ss.adata.n_obs:,} cells x {ss.adata.n_vars:,} genes")
            st.caption(f"label column: {ss.label_key or '-'}")
        job = current_job()
        # Decorated per run: the refresh interval depends on whether a job runs now.
        st.fragment(run_every=2.0 if job is not None and job.running else None)(job_status)()


def job_status() -> None:
    """Training status in the sidebar, refreshed while a job runs."""
    st.markdown("### Training")
    job = current_job()
    if job is None:
        st.caption("No run yet.")
    else:
        view = job.snapshot()
        st.markdown(f"**{view.method.upper()}**: {view.status} ({view.phase})")
        if view.status == "running":
            st.progress(view.progress)
    if st.session_state.runs:
        st.caption("Results: " + ", ".join(st.session_state.runs))
