"""scDeep dashboard: ``streamlit run app.py``."""

import streamlit as st

from pages.common import PAGES, init_state, sidebar

st.set_page_config(page_title="scDeep", page_icon=":material/scatter_plot:", layout="wide")
init_state()
# The first page is the default one (the app's root URL).
nav_pages = [st.Page(script, title=title, icon=icon, default=i == 0) for i, (script, title, icon) in enumerate(PAGES)]
nav = st.navigation(nav_pages, position="hidden")
try:
    nav.run()
finally:
    # Drawn after the page so that it shows what the page just loaded or started (a page that
    # ends early with end_page() has drawn it already, and st.stop() skips this one).
    sidebar()
