"""Learn page: an interactive explainer of the clustering loss (toy 2-D data, then real counts)."""
import numpy as np
import pandas as pd
import streamlit as st

from pages.common import require_app
from scdeep_core import datasets, figures, pp, teaching

require_app()
ss = st.session_state
st.title("Learn: how the clustering loss works")
st.markdown("Both DESC and scDCC end with the same loss. Move things below and watch what each part does.")

# --- the toy -------------------------------------------------------------------------------
c1, c2, c3 = st.columns(3)
separation = c1.slider("how far apart the groups are", 1.0, 6.0, 3.0, 0.25, key="learn_sep")
alpha = c2.slider("alpha (Student's t degrees of freedom)", 0.2, 10.0, 1.0, 0.1, key="learn_alpha",
                  help="Small alpha: heavy tails, points far away still feel a centroid. Large alpha: close to a Gaussian.")
normalise = c3.toggle("divide by cluster frequency f", value=True, key="learn_norm",
                      help="Without it, the big cluster's centroid pulls points away from the small one.")
toy_key = (separation,)
if ss.get("learn_toy_key") != toy_key:
    z0, _ = teaching.toy_data(separation=separation, seed=0)
    ss.learn_z0, ss.learn_z, ss.learn_toy_key, ss.learn_losses = z0, z0.copy(), toy_key, []
    ss.learn_mu = np.array([[separation * 0.6, 0.8], [-0.8, separation * 0.5], [-0.5, -separation * 0.6]])

with st.expander("Move the centroids", expanded=False):
    cols = st.columns(3)
    for j in range(3):
        # The sliders' state lives in session_state so that Step can move them with the centroids.
        ss.setdefault(f"mu{j}x", float(ss.learn_mu[j, 0]))
        ss.setdefault(f"mu{j}y", float(ss.learn_mu[j, 1]))
        x = cols[j].slider(f"μ{j + 1} x", -8.0, 8.0, step=0.1, key=f"mu{j}x")
        y = cols[j].slider(f"μ{j + 1} y", -8.0, 8.0, step=0.1, key=f"mu{j}y")
        ss.learn_mu[j] = (x, y)

z, mu = ss.learn_z, ss.learn_mu
q = teaching.q_of(z, mu, alpha)
p = teaching.p_of(q, normalise)

st.subheader("1. Soft assignment q")
c1, c2 = st.columns([2, 1])
c1.plotly_chart(figures.toy_membership(z, q, mu, title="each point coloured by its q (mixed colours = unsure)"), width="stretch", key="fig_q")
c2.latex(r"q_{ij} = \frac{\left(1 + \lVert z_i - \mu_j \rVert^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}{\sum_{j'} \left(1 + \lVert z_i - \mu_{j'} \rVert^2 / \alpha\right)^{-\frac{\alpha+1}{2}}}")
c2.markdown("q is how much point *i* belongs to cluster *j*: near a centroid it is close to 1, between centroids it is split.")
c2.metric("mean confidence (max q)", f"{q.max(1).mean():.3f}")

st.subheader("2. The target p: q, sharpened")
c1, c2 = st.columns([2, 1])
c1.plotly_chart(figures.toy_membership(z, p, mu, title="p: compare with q above" + ("" if normalise else " (no frequency normalisation)")),
                width="stretch", key="fig_p")
c2.latex(r"p_{ij} = \frac{q_{ij}^2 / f_j}{\sum_{j'} q_{ij'}^2 / f_{j'}}, \qquad f_j = \sum_i q_{ij}")
c2.markdown("Squaring makes confident points more confident; dividing by f keeps the big cluster from claiming everything. "
            "Share of points per cluster:")
# A plain table: the interactive grid of st.dataframe took ~0.6 s of the browser's time to draw this page.
share = pd.DataFrame({"share under q": q.mean(0), "share under p": p.mean(0)}, index=[f"μ{j + 1}" for j in range(3)])
c2.table(share.style.format("{:.1%}"))

st.subheader("3. KL(P‖Q) and its pull")
per_point = teaching.kl_per_point(p, q)
gz, _ = teaching.kl_gradients(z, mu, p, alpha)
scale = 1.5 / max(np.abs(gz).max(), 1e-12)
c1, c2 = st.columns([2, 1])
c1.plotly_chart(figures.toy_membership(z, q, mu, arrows=-gz * scale, sizes=4 + 12 * per_point / max(per_point.max(), 1e-12),
                                       title="arrows: where gradient descent pushes each point; size: its share of the loss"),
                width="stretch", key="fig_kl")
c2.latex(r"L = \frac{1}{n}\sum_i \sum_j p_{ij} \log \frac{p_{ij}}{q_{ij}}")
c2.metric("KL(P‖Q)", f"{per_point.mean():.4f}")
c2.markdown("Points move towards the centroid they already lean to; centroids move to the points that claim them. "
            "P is held fixed during a step and recomputed before the next one.")
lr = c2.slider("step size", 0.5, 50.0, 10.0, 0.5, key="learn_lr")


def run_steps(n: int) -> None:
    for _ in range(n):
        ss.learn_z, ss.learn_mu, loss = teaching.kl_step(ss.learn_z, ss.learn_mu, ss.learn_alpha, ss.learn_lr, ss.learn_norm)
        ss.learn_losses.append(loss)
    for j in range(3):  # keep the sliders on the moved centroids
        ss[f"mu{j}x"], ss[f"mu{j}y"] = float(np.clip(ss.learn_mu[j, 0], -8, 8)), float(np.clip(ss.learn_mu[j, 1], -8, 8))


def reset() -> None:
    ss.learn_toy_key = None
    for j in range(3):
        for a in "xy":
            ss.pop(f"mu{j}{a}", None)


b1, b2, b3 = c2.columns(3)
b1.button("Step", on_click=run_steps, args=(1,), key="learn_step")
b2.button("Run 20 steps", on_click=run_steps, args=(20,), key="learn_run20")
b3.button("Reset", on_click=reset, key="learn_reset")
if ss.learn_losses:
    st.plotly_chart(figures.loss_trace(ss.learn_losses), width="stretch", key="fig_loss")

# --- reconstruction ----------------------------------------------------------------------
st.subheader("4. Reconstruction: MSE vs ZINB")
adata = ss.get("adata")
if adata is None:
    if "learn_demo" not in ss:
        ss.learn_demo = datasets.pbmc_demo()
    adata = ss.learn_demo
    st.caption("Using the built-in PBMC (load your own data on the Data page).")
counts_all = pp.counts_matrix(adata)
detected = np.asarray((counts_all > 0).sum(0)).ravel()
genes = list(adata.var_names[np.argsort(-detected)[:200]])
gene = st.selectbox("gene (the 200 most often detected)", genes, key="learn_gene")
counts = np.asarray(counts_all[:, adata.var_names.get_loc(gene)].todense()).ravel()
m, v, zero = counts.mean(), counts.var(), (counts == 0).mean()
c1, c2, c3 = st.columns(3)
mean = c1.slider("ZINB mean", 0.01, float(max(5 * m, 1.0)), float(max(m, 0.01)), key="learn_mean")
theta = c2.slider("dispersion θ (small = overdispersed)", 0.05, 50.0, float(np.clip(m**2 / max(v - m, 1e-3), 0.05, 50)), key="learn_theta")
pi = c3.slider("dropout π", 0.0, 0.95, 0.0, 0.01, key="learn_pi")
max_count = int(max(np.percentile(counts, 99), 5))
zinb = teaching.zinb_pmf(np.arange(max_count + 1), mean, theta, pi)
g_nll, g_mean, g_sd = teaching.gaussian_nll_counts(counts)
st.plotly_chart(figures.count_fit(counts, zinb, g_mean, g_sd, max_count), width="stretch", key="fig_counts")
c1, c2, c3 = st.columns(3)
c1.metric("ZINB negative log-likelihood", f"{teaching.zinb_nll_counts(counts, mean, theta, pi):.3f}")
c2.metric("Gaussian (MSE) negative log-likelihood", f"{g_nll:.3f}")
c3.metric("zeros in this gene", f"{zero:.0%}")
st.markdown(f"Variance is {v / max(m, 1e-9):.1f}x the mean (a Poisson would give 1x): counts are **overdispersed** and have "
            "**extra zeros**, so a Gaussian (what MSE assumes) puts probability on negative and fractional values and misses "
            "the spike at 0, while the ZINB models both.")

# --- the user's own run ---------------------------------------------------------------------
st.subheader("5. Your own run")
runs = ss.get("runs", {})
if not runs:
    st.caption("Train a model on the **Train** page and its curves appear here.")
else:
    key = st.selectbox("run", list(runs), key="learn_run")
    res = runs[key]
    st.plotly_chart(figures.loss_curves(res.history, tol=res.config.get("tol")), width="stretch", key="fig_run_loss")
    st.markdown("Reconstruction falls during pretraining; after the dashed line the KL term takes over and `delta_label` "
                "(cells changing cluster) falls until it drops below `tol`.")
    trace = ss.get("confidence_traces", {}).get(key)
    if trace is not None and not trace.empty:
        st.plotly_chart(figures.confidence_trace(trace), width="stretch", key="fig_run_conf")
        st.markdown("Confidence (max q) rises during clustering: the sharpened target pulls each cell towards one centroid.")
