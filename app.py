"""scDeep dashboard: ``streamlit run app.py``."""
import streamlit as st

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
try:
    nav.run()
finally:
    # Drawn after the page so that it shows what the page just loaded or started.
    sidebar(PAGES)
