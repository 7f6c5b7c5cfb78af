"""Train page: choose a method and hyperparameters, start/stop, watch live curves."""

import dataclasses
import os
import tempfile

import streamlit as st

from pages.common import (
    KEEP,
    current_job,
    end_page,
    harvest,
    k_selection_of,
    k_selection_panel,
    next_key,
    registry,
    require_app,
    session_owner,
    submit,
)
from scdeep_core import figures, progress
from scdeep_core.config import (
    CONFIG_CLASSES,
    PRESET_HELP,
    PRESETS,
    ConfigError,
    ConstraintConfig,
    Setting,
    method_name,
    settings,
)
from scdeep_core.device import resolve_device
from scdeep_core.jobs import BusyError, TrainingJob
from scdeep_core.pp import grouping_columns
from scdeep_core.results import result_columns

require_app()
ss = st.session_state
st.title("Train")
if ss.adata is None:
    st.info("Load a dataset on the **Data** page first (the built-in PBMC works offline).")
    end_page()

DESCRIPTIONS = {
    "desc": "**DESC** learns a compact embedding by reconstructing normalised expression (MSE), then pulls cells "
    "towards cluster centres with the KL clustering loss on the encoder alone. Fast; accepts normalised data.",
    "scdcc": "**scDCC** models raw counts with a zero-inflated negative binomial (three output heads), then trains "
    "clustering and reconstruction together; optional must-link / cannot-link pairs add prior knowledge.",
}
method = st.radio(
    "Method", ["scdcc", "desc"], format_func=method_name, horizontal=True, key="method", persist_state=KEEP
)
st.markdown(DESCRIPTIONS[method])
preset = st.radio(
    "Preset",
    list(PRESETS),
    format_func=lambda name: f"{name.capitalize()}: {PRESET_HELP[name]}",
    key="preset",
    persist_state=KEEP,
    help="**Thorough** pretrains three models from different seeds, starts them from one clustering of their "
    "embeddings side by side and averages their soft assignments, for about three times the time. On our five "
    "benchmark datasets two runs of the same data agreed more on every one, with both methods. With a given k, "
    "DESC's clusters matched the known types better on every dataset; scDCC's as well as with one model. With k "
    "chosen for you, as well as with one model.",
)
cls = CONFIG_CLASSES[method]
defaults = cls()
fields = {f.name: f for f in dataclasses.fields(cls)}
# The form is made from the config's fields (scdeep_core.config.settings): a field is described once.
# These have widgets of their own on this page, or none (shuffle_block: out of core only, API/CLI --backed;
# the dashboard trains in memory):
SET_ELSEWHERE = {
    "n_clusters",
    "resolution",
    "hidden_dims",
    "pretrain_epochs",
    "constraints",
    "batch_key",
    "shuffle_block",
    "n_models",  # the preset
}
FORM = [s for s in settings([cls]) if s.name not in SET_ELSEWHERE]


def setting_widget(setting: Setting, col) -> None:
    """The input of one setting; plain words first, the config's own name (API, CLI, saved config) in brackets."""
    label, key, value = f"{setting.label} ({setting.name})", f"hp_{method}_{setting.name}", setting.defaults[method]
    if setting.choices:
        col.selectbox(
            label, setting.choices, index=setting.choices.index(value), help=setting.help, key=key, persist_state=KEEP
        )
        return
    if setting.kind is str:
        col.text_input(label, value, help=setting.help, key=key, persist_state=KEEP)
        return
    lo, hi = setting.bounds or (None, None)
    if setting.name == "n_top_genes":  # not 2000 on a 765-gene set
        hi, value = max(10, int(ss.adata.n_vars)), min(value, max(10, int(ss.adata.n_vars)))
    cast = setting.kind
    col.number_input(
        label,
        min_value=None if lo is None else cast(lo),
        max_value=None if hi is None else cast(hi),
        value=value,
        step=1 if cast is int else None,
        format="%g" if cast is float else None,
        help=setting.help,
        key=key,
        persist_state=KEEP,
    )


NO_BATCH = "none: no batch correction"
BATCH_OPTIONS = [NO_BATCH] + grouping_columns(ss.adata, exclude=result_columns(ss.adata))
batch_choice = st.selectbox(
    "Batch column (optional): correct for samples, donors or runs",
    BATCH_OPTIONS,
    index=BATCH_OPTIONS.index(ss.get("batch_key")) if ss.get("batch_key") in BATCH_OPTIONS else 0,
    help=fields["batch_key"].metadata["help"],
    key="batch_select",
    persist_state=KEEP,
)
ss.batch_key = None if batch_choice == NO_BATCH else batch_choice
if ss.batch_key is not None:
    st.caption(f"{ss.adata.obs[ss.batch_key].nunique()} batches in `{ss.batch_key}`.")

st.subheader("Clusters")
K_MODES = {
    "auto": "Choose k for me (recommended)",
    "k": "I know the number of clusters",
    "resolution": "Leiden resolution",
}
K_HELP = (
    "**Choose k for me**: after pretraining, the embedding is clustered with Leiden at 12 resolutions; each is re-run "
    "on 80 % subsamples and the finest clustering that stays reproducible is kept. The chart of that scan appears "
    "with the result, and you can re-cluster with another k without pretraining again.\n\n"
    "**I know the number of clusters**: after pretraining, KMeans, Leiden (its resolution set to give k) and "
    "spectral clustering each cluster the embedding, each is re-run on 80 % subsamples, and the one they reproduce "
    'best starts the clustering stage ("initial clusters with a given k" under Advanced settings).'
)
c1, c2 = st.columns(2)
k_mode = c1.radio(
    "Number of clusters", list(K_MODES), format_func=K_MODES.get, key="k_mode", help=K_HELP, persist_state=KEEP
)
if k_mode == "k":
    guess = int(ss.adata.obs[ss.label_key].nunique()) if ss.label_key else 8
    c2.number_input(
        "k (number of clusters)",
        2,
        max(2, ss.adata.n_obs - 1),
        min(max(guess, 2), max(2, ss.adata.n_obs - 1)),
        help=fields["n_clusters"].metadata["help"],
        key="hp_k",
        persist_state=KEEP,
    )
elif k_mode == "resolution":
    c2.slider(
        "Leiden resolution",
        0.05,
        3.0,
        1.0,
        0.05,
        help=fields["resolution"].metadata["help"],
        key="hp_resolution",
        persist_state=KEEP,
    )
else:
    c2.caption("k is chosen after pretraining by Leiden stability on the learned embedding.")

with st.expander("Hyperparameters", expanded=False):
    c1, c2, c3 = st.columns(3)
    c1.text_input(
        "hidden layers (hidden_dims)",
        ",".join(map(str, defaults.hidden_dims)),
        help=fields["hidden_dims"].metadata["help"],
        key=f"hp_{method}_hidden",
        persist_state=KEEP,
    )
    c2.number_input(
        "pretrain epochs (0 = auto)",
        0,
        100000,
        0,
        help=fields["pretrain_epochs"].metadata["help"],
        key=f"hp_{method}_pre",
        persist_state=KEEP,
    )
    for i, setting in enumerate([s for s in FORM if not s.advanced]):
        setting_widget(setting, (c3, c1, c2)[i % 3])
with st.expander("Advanced settings", expanded=False):
    st.caption(
        "Rarely changed: how the initial clusters are made, how pretraining stops, the kNN graph, input clipping, "
        "where the run trains."
    )
    c1, c2, c3 = st.columns(3)
    for i, setting in enumerate([s for s in FORM if s.advanced]):
        setting_widget(setting, (c1, c2, c3)[i % 3])

constraint_source = "none"
if method == "scdcc":
    with st.expander("Pairwise constraints (optional prior knowledge)"):
        constraint_source = st.selectbox(
            "source",
            ["none", "labels", "pairs", "obsm"],
            key="c_source",
            persist_state=KEEP,
            format_func={
                "none": "none",
                "labels": "a label column (reveal a fraction of cells)",
                "pairs": "a CSV of cell pairs",
                "obsm": "a numeric matrix such as protein levels",
            }.get,
        )
        if constraint_source == "labels":
            st.selectbox("label column", list(ss.adata.obs.columns), key="c_label", persist_state=KEEP)
            st.slider("fraction of cells revealed", 0.01, 0.5, 0.1, 0.01, key="c_fraction", persist_state=KEEP)
            st.number_input("number of pairs", 10, 1_000_000, 2000, key="c_pairs", persist_state=KEEP)
        elif constraint_source == "pairs":
            st.file_uploader("CSV with columns cell1, cell2, type (ml or cl)", type=["csv", "tsv", "txt"], key="c_file")
        elif constraint_source == "obsm":
            st.selectbox("matrix", list(ss.adata.obsm.keys()) or ["(none available)"], key="c_obsm", persist_state=KEEP)
            st.number_input("pairs of each kind", 10, 1_000_000, 2000, key="c_pairs", persist_state=KEEP)
        if constraint_source != "none":
            c1, c2 = st.columns(2)
            c1.number_input("must-link weight", 0.0, 100.0, 1.0, key="c_ml", persist_state=KEEP)
            c2.number_input("cannot-link weight", 0.0, 100.0, 1.0, key="c_cl", persist_state=KEEP)


def build_config():
    values = {s.name: ss.get(f"hp_{method}_{s.name}", s.defaults[method]) for s in FORM}
    values["hidden_dims"] = tuple(int(v) for v in str(ss.get(f"hp_{method}_hidden", "")).split(",") if v.strip())
    values["pretrain_epochs"] = int(ss.get(f"hp_{method}_pre", 0)) or None
    values["batch_key"] = ss.get("batch_key")
    values.update(PRESETS[ss.get("preset", "fast")])
    mode = ss.get("k_mode", "auto")
    if mode == "k":
        values.update(n_clusters=int(ss.hp_k), resolution=1.0)
    elif mode == "resolution":
        values.update(n_clusters=None, resolution=float(ss.hp_resolution))
    else:
        values.update(n_clusters="auto")
    if method == "scdcc":
        src = ss.get("c_source", "none")
        c = dict(source=src, ml_weight=ss.get("c_ml", 1.0), cl_weight=ss.get("c_cl", 1.0))
        if src == "labels":
            c.update(label_key=ss.c_label, fraction=ss.c_fraction, n_pairs=int(ss.c_pairs))
        elif src == "pairs":
            if ss.get("c_file") is None:
                raise ConfigError(
                    "Upload a pair file (CSV with columns cell1, cell2, type) or choose another constraint source."
                )
            fd, path = tempfile.mkstemp(suffix=".csv", prefix="scdeep_pairs_")
            with os.fdopen(fd, "wb") as fh:
                fh.write(ss.c_file.getbuffer())
            c.update(pairs_path=path)
        elif src == "obsm":
            c.update(obsm_key=ss.c_obsm, n_pairs=int(ss.c_pairs))
        values["constraints"] = ConstraintConfig(**c)
    config = cls(**values)
    resolve_device(config.device)  # a GPU asked for where there is none: say so now, not from the queue
    return config


def start() -> None:
    ss.train_error = None
    try:
        submit(
            TrainingJob(
                ss.adata, method, build_config(), label_key=ss.label_key, key=next_key(method), owner=session_owner().id
            )
        )
    except (ConfigError, BusyError, ValueError) as exc:
        ss.train_error = str(exc)


def stop() -> None:
    job = current_job()
    if job is not None:
        job.stop()


job = current_job()
running = job is not None and job.active
c1, c2, _ = st.columns([1, 1, 4])
c1.button("Start", type="primary", on_click=start, disabled=running, key="start", icon=":material/play_arrow:")
c2.button("Stop", on_click=stop, disabled=not running, key="stop", icon=":material/stop:")
if ss.get("train_error"):
    st.error(ss.train_error, icon=":material/error:")


def _figure(name: str, job_id: str, version: tuple, build):
    """The figure of the live panel, rebuilt only when the run has news: with several sessions
    polling, rebuilding unchanged plotly figures every second competed with training for the CPU."""
    cache = ss.setdefault("live_figures", {})
    key = (job_id, version)
    if cache.get(name, (None, None))[0] != key:
        cache[name] = (key, build())
    return cache[name][1]


# A queued run only shows its place in line: it polls less often than a run that draws curves.
polled_as = job.status if running else None


@st.fragment(run_every=(3.0 if polled_as == "queued" else 1.5) if running else None)
def live() -> None:
    job = current_job()
    if job is None:
        st.caption("Press **Start** to train. Curves appear here while the model learns.")
        return
    registry().refresh(job)
    view = job.snapshot()
    if polled_as == "queued" and view.status != "queued":
        st.rerun()  # it started: poll at the running pace
    if view.status == "queued":
        ahead = "1 run" if view.queue_position == 0 else f"{view.queue_position + 1} runs"
        st.info(
            f"**Queued**: the machine is training {ahead} ahead of yours; expected to start in about "
            f"{view.expected_start_s:.0f} s. Press **Stop** to cancel.",
            icon=":material/hourglass_top:",
        )
        return
    if view.status == "cancelled":
        st.caption("The queued run was cancelled before it started.")
    fit_s = view.result.timings.get("total_s") if view.result is not None else None
    st.progress(
        view.progress, text=progress.describe(view.method, view.phase, view.elapsed, view.eta, view.eta_max, fit_s)
    )
    if view.status == "running":
        st.caption(progress.steps(view.phase, job.umap))
    if view.error:
        st.error(f"Training failed: {view.error}", icon=":material/error:")
    tol = job.config.tol
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(
        _figure(
            "loss", job.job_id, (len(view.history), view.status), lambda: figures.loss_curves(view.history, tol=tol)
        ),
        width="stretch",
        key="loss_chart",
    )
    if view.snapshots:
        c2.plotly_chart(
            _figure(
                "snapshot",
                job.job_id,
                (view.snapshots[-1].update, len(view.snapshots)),
                lambda: figures.snapshot_scatter(view.snapshots[-1]),
            ),
            width="stretch",
            key="snapshot_chart",
        )
    else:
        c2.caption(
            "The embedding appears once the clustering stage starts: watch cells gather around the centroids (x)."
        )
    if view.status == "done":
        result = view.result
        if result is not None and result.stage == "done" and not result.converged:
            st.warning(
                f"Finished, but {result.convergence()}: labels may still move. Raise *max cluster epochs* to "
                "train longer.",
                icon=":material/warning:",
            )
        st.success(view.message)
    elif view.status == "stopped":
        st.warning(f"Stopped early; partial result kept. {view.message}")
    if view.status != "running" and harvest(job):
        st.rerun()  # once, to show the result and stop polling (harvest is True only the first time)


live()

last = ss.runs.get(current_job().key) if current_job() is not None and current_job().job_id in ss.harvested else None
if last is not None and k_selection_of(last) is not None:
    st.subheader("How k was chosen")
    k_selection_panel(last, where="train")
