"""scDeep dashboard: ``streamlit run app.py``."""
import streamlit as st

import pages.common
from pages.common import init_state, sidebar

st.set_page_config(page_title="scDeep", page_icon=":material/scatter_plot:", layout="wide")
init_state()
PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
]
nav = st.navigation(PAGES, position="hidden")
pages.common.NAV_PAGES[:] = PAGES
try:
    nav.run()
finally:
    # Drawn after the page so that it shows what the page just loaded or started (a page that
    # ends early with end_page() has drawn it already, and st.stop() skips this one).
    sidebar(PAGES)
