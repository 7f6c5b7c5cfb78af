"""scDeep dashboard: ``streamlit run app.py``."""
import os
import sys

import streamlit as st

# Training runs in a thread of this process and holds the GIL most of the time; each request or
# websocket step of the server waits up to the interpreter's switch interval (5 ms by default)
# for it. With 1 ms a fresh page drew in 20 s instead of 48 s while two sessions trained (one
# measurement each, bench/load.py; issue 9 says what is still slow and why).
sys.setswitchinterval(float(os.environ.get("SCDEEP_SWITCH_INTERVAL", "0.001")))

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
