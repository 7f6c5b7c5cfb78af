"""Learn page: an interactive explainer of the clustering loss (toy 2-D data, then real counts)."""

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import require_app, session_figure
from scdeep_core import datasets, figures, pp, static_figures, teaching

require_app()
ss = st.session_state
st.title("Learn: how the clustering loss works")
st.markdown("Both DESC and scDCC end with the same loss. Move things below and watch what each part does.")

# Two fragments: a Step, a slider or a gene choice reruns only its own section (the page's other
# parts, and their images, are not rebuilt). Figures are PNGs (scdeep_core.static_figures): plotly
# charts cost the browser 0.2-0.3 s each to draw, and this page has five.


def run_steps(n: int) -> None:
    for _ in range(n):
        ss.learn_z, ss.learn_mu, loss = teaching.kl_step(
            ss.learn_z, ss.learn_mu, ss.learn_alpha, ss.learn_lr, ss.learn_norm
        )
        ss.learn_losses.append(loss)
    for j in range(3):  # keep the sliders on the moved centroids
        ss[f"mu{j}x"], ss[f"mu{j}y"] = (
            float(np.clip(ss.learn_mu[j, 0], -8, 8)),
            float(np.clip(ss.learn_mu[j, 1], -8, 8)),
        )


def reset() -> None:
    ss.learn_toy_key = None
    for j in range(3):
        for a in "xy":
            ss.pop(f"mu{j}{a}", None)


def formulas() -> None:
    """The three formulas, drawn once per page (outside the fragment: a Step does not redraw them)."""
    c1, c2, c3 = st.columns(3)
    c1.markdown("**1. Soft assignment q**")
    c1.latex(
        r"q_{ij} = \frac{\left(1 + \lVert z_i - \mu_j \rVert^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}"
        r"{\sum_{j'} \left(1 + \lVert z_i - \mu_{j'} \rVert^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}"
    )
    c1.caption("How much point *i* belongs to cluster *j*: near a centroid close to 1, between centroids split.")
    c2.markdown("**2. The target p: q, sharpened**")
    c2.latex(r"p_{ij} = \frac{q_{ij}^2 / f_j}{\sum_{j'} q_{ij'}^2 / f_{j'}}, \qquad f_j = \sum_i q_{ij}")
    c2.caption(
        "Squaring makes confident points more confident; dividing by the cluster's size f keeps a big cluster "
        "from claiming everything."
    )
    c3.markdown("**3. The loss KL(P‖Q) and its pull**")
    c3.latex(r"L = \frac{1}{n}\sum_i \sum_j p_{ij} \log \frac{p_{ij}}{q_{ij}}")
    c3.caption(
        "Points move towards the centroid they already lean to; centroids move to the points that claim them. "
        "P is held fixed during a step and recomputed before the next one."
    )


@st.fragment
def clustering_loss() -> None:
    """The toy: q, the target p and the KL's pull side by side, with gradient steps."""
    c1, c2, c3, c4 = st.columns(4)
    separation = c1.slider("how far apart the groups are", 1.0, 6.0, 3.0, 0.25, key="learn_sep")
    alpha = c2.slider(
        "alpha (Student's t degrees of freedom)",
        0.2,
        10.0,
        1.0,
        0.1,
        key="learn_alpha",
        help="Small alpha: heavy tails, points far away still feel a centroid. Large alpha: close to a Gaussian.",
    )
    c3.slider(
        "step size", 0.5, 50.0, 10.0, 0.5, key="learn_lr", help="How far each gradient step moves points and centroids."
    )
    normalise = c4.toggle(
        "divide by cluster size f",
        value=True,
        key="learn_norm",
        help="Without it, the big cluster's centroid pulls points away from the small one.",
    )
    if ss.get("learn_toy_key") != (separation,):
        z0, _ = teaching.toy_data(separation=separation, seed=0)
        ss.learn_z0, ss.learn_z, ss.learn_toy_key, ss.learn_losses = z0, z0.copy(), (separation,), []
        ss.learn_mu = np.array([[separation * 0.6, 0.8], [-0.8, separation * 0.5], [-0.5, -separation * 0.6]])
        lo, hi = z0.min(0) - 1.0, z0.max(0) + 1.0  # the view stays put while points move step by step
        ss.learn_limits = (lo[0], hi[0], lo[1], hi[1])
    buttons = c4.container(horizontal=True)
    buttons.button("Step", on_click=run_steps, args=(1,), key="learn_step")
    buttons.button("Run 20 steps", on_click=run_steps, args=(20,), key="learn_run20")
    buttons.button("Reset", on_click=reset, key="learn_reset")

    # Sliders only on request: six sliders moved by every Step cost the browser ~40 ms per Step.
    if st.toggle("move the centroids by hand", key="learn_move"):
        cols = st.columns(3)
        for j in range(3):
            # The sliders' state lives in session_state so that Step can move them with the centroids.
            ss.setdefault(f"mu{j}x", float(ss.learn_mu[j, 0]))
            ss.setdefault(f"mu{j}y", float(ss.learn_mu[j, 1]))
            x = cols[j].slider(f"μ{j + 1} x", -8.0, 8.0, step=0.1, key=f"mu{j}x")
            y = cols[j].slider(f"μ{j + 1} y", -8.0, 8.0, step=0.1, key=f"mu{j}y")
            ss.learn_mu[j] = (x, y)

    z, mu, limits = ss.learn_z, ss.learn_mu, ss.learn_limits
    q = teaching.q_of(z, mu, alpha)
    p = teaching.p_of(q, normalise)
    per_point = teaching.kl_per_point(p, q)
    gz, _ = teaching.kl_gradients(z, mu, p, alpha)
    state = (z.tobytes(), mu.tobytes(), alpha, normalise)  # the figures are redrawn only when this changes
    panels = [
        ("q", "q: each point coloured by its clusters, mixed = unsure", lambda: dict(q=q)),
        ("p", "p: q sharpened" + ("" if normalise else " (not divided by f)"), lambda: dict(q=p)),
        (
            "kl",
            "pull of the loss (arrows); dot size: share of the loss",
            lambda: dict(
                q=q,
                arrows=-gz * 1.5 / max(np.abs(gz).max(), 1e-12),
                sizes=6 + 50 * per_point / max(per_point.max(), 1e-12),
            ),
        ),
    ]
    if ss.get("learn_panels_limits") != limits:  # figures kept between steps: a step only moves their points
        ss.learn_panels = {name: static_figures.ToyPanel(limits) for name, _, _ in panels}
        ss.learn_panels_limits = limits
    for column, (name, title, args) in zip(st.columns(3), panels, strict=True):
        png = session_figure(
            f"learn_{name}",
            state,
            lambda name=name, title=title, args=args: ss.learn_panels[name].draw(z, mu=mu, title=title, **args()),
        )
        column.image(png, alt=title)
    c1, c2, c3 = st.columns(3)
    c1.metric("mean confidence (max q)", f"{q.max(1).mean():.3f}")
    # A plain table: the interactive grid of st.dataframe took ~0.6 s of the browser's time to draw this page.
    share = pd.DataFrame(
        {"share under q": q.mean(0), "share under p": p.mean(0)}, index=[f"μ{j + 1}" for j in range(3)]
    )
    c2.table(share.style.format("{:.1%}"))
    c3.metric("KL(P‖Q)", f"{per_point.mean():.4f}")
    if ss.learn_losses:
        st.image(
            session_figure("learn_loss", tuple(ss.learn_losses), lambda: static_figures.loss_trace(ss.learn_losses)),
            alt="loss over steps",
        )


@st.fragment
def reconstruction() -> None:
    """Section 4: one gene's counts under the Gaussian that MSE assumes and under a ZINB."""
    st.subheader("4. Reconstruction: MSE vs ZINB")
    adata = ss.get("adata")
    if adata is None:
        if "learn_demo" not in ss:
            ss.learn_demo = datasets.pbmc_demo()
        adata = ss.learn_demo
        st.caption("Using the built-in PBMC (load your own data on the Data page).")
    counts_all = pp.counts_matrix(adata)
    if ss.get("learn_genes_of") is not adata:  # once per dataset: a pass over every count
        detected = np.asarray((counts_all > 0).sum(0)).ravel()
        top = np.argsort(-detected)[:200]
        # Open on a gene with many zeros (about 60 % of cells): the spike at 0 is what the ZINB is for.
        ss.learn_genes = list(adata.var_names[top]), int(np.argmin(np.abs(1 - detected[top] / adata.n_obs - 0.6)))
        ss.learn_genes_of = adata
    genes, default = ss.learn_genes
    gene = st.selectbox("gene (the 200 most often detected)", genes, index=default, key="learn_gene")
    counts = np.asarray(counts_all[:, adata.var_names.get_loc(gene)].todense()).ravel()
    m, v, zero = counts.mean(), counts.var(), (counts == 0).mean()
    theta0 = float(np.clip(m**2 / max(v - m, 1e-3), 0.05, 50))
    c1, c2, c3 = st.columns(3)
    mean = c1.slider("ZINB mean", 0.01, float(max(5 * m, 1.0)), float(max(m, 0.01)), key="learn_mean")
    theta = c2.slider("dispersion θ (small = overdispersed)", 0.05, 50.0, theta0, key="learn_theta")
    pi = c3.slider(
        "dropout π (extra zeros)",
        0.0,
        0.95,
        round(teaching.excess_zero_share(zero, max(m, 0.01), theta0), 2),
        0.01,
        key="learn_pi",
        help="Starts at the share of zeros that a negative binomial with this mean and θ cannot explain.",
    )
    max_count = int(max(np.percentile(counts, 99), 5))
    zinb = teaching.zinb_pmf(np.arange(max_count + 1), mean, theta, pi)
    g_nll, g_mean, g_sd = teaching.gaussian_nll_counts(counts)
    st.image(
        session_figure(
            "learn_counts",
            (id(adata), gene, mean, theta, pi),
            lambda: static_figures.count_fit(counts, zinb, g_mean, g_sd, max_count),
        ),
        alt=f"counts of {gene}: observed, ZINB and Gaussian",
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("ZINB negative log-likelihood", f"{teaching.zinb_nll_counts(counts, mean, theta, pi):.3f}")
    c2.metric("Gaussian (MSE) negative log-likelihood", f"{g_nll:.3f}")
    c3.metric("zeros in this gene", f"{zero:.0%}")
    st.markdown(
        f"Variance is {v / max(m, 1e-9):.1f}x the mean (a Poisson would give 1x): counts are **overdispersed** "
        "and have **extra zeros**, so a Gaussian (what MSE assumes) puts probability on negative and fractional "
        "values and misses the spike at 0, while the ZINB models both."
    )


formulas()
clustering_loss()
reconstruction()

# --- the user's own run ---------------------------------------------------------------------
st.subheader("5. Your own run")
runs = ss.get("runs", {})
if not runs:
    st.caption("Train a model on the **Train** page and its curves appear here.")
else:
    key = st.selectbox("run", list(runs), key="learn_run")
    res = runs[key]
    st.plotly_chart(figures.loss_curves(res.history, tol=res.config.get("tol")), width="stretch", key="fig_run_loss")
    clustered = "delta_label" in res.history and res.history["delta_label"].notna().any()
    st.markdown(
        "Reconstruction falls during pretraining; after the dashed line the KL term takes over"
        + (
            " and the share of cells changing cluster (`delta_label`, lower panel) falls until it drops below `tol`."
            if clustered
            else ". This run has no clustering epochs to show (it stopped before them)."
        )
    )
    if "confidence_mean" in res.history and res.history["confidence_mean"].notna().any():
        st.plotly_chart(figures.confidence_trace(res.history), width="stretch", key="fig_run_conf")
        st.markdown(
            "Confidence (max q) rises during clustering: the sharpened target pulls each cell towards one centroid."
        )
