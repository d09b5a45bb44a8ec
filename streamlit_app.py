"""medimg studio: navigation and the home page. Run with `streamlit run streamlit_app.py`."""
import streamlit as st

from medimg_app import home as home_parts


def home() -> None:
    """What the app does, the shipped models and their headline numbers, the data, and links to every page."""
    home_parts.render(PAGES)


st.set_page_config(page_title="medimg", page_icon=":material/radiology:", layout="wide")
PAGES = [
    st.Page(home, title="Home", icon=":material/home:", default=True, url_path=home_parts.HOME_URL_PATH),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/radiology:"),
    st.Page("app_pages/explorer.py", title="Dataset explorer", icon=":material/scatter_plot:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/leaderboard:"),
    st.Page("app_pages/audit.py", title="Audit", icon=":material/fact_check:"),
    st.Page("app_pages/background.py", title="MRI vs CT vs X-ray", icon=":material/menu_book:"),
    st.Page("app_pages/presentation.py", title="Presentation", icon=":material/slideshow:"),
]
navigation = st.navigation(PAGES)
navigation.run()
