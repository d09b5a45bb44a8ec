"""Streamlit glue for the medimg pages: the only caches, and widgets shared by several pages.

Pages import from here and from medimg_core; medimg_core never imports this package.
"""
