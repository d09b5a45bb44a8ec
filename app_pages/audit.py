"""Audit page: open a finished `medimg audit` (its --out folder): the summary, the header x kind crosstab, the
disagreements with thumbnails, the studies, and every file filtered by verdict, kind and flag. It reads the
results; it does not run the audit."""
import streamlit as st

from medimg_app import audit_widgets as aw
from medimg_app.widgets import EMPTY_CELL
from medimg_core.inference.audit_summary import AuditError, filter_rows

st.title("Audit")
st.caption("`medimg audit PATH... --out DIR` sorts and checks a whole archive (folders, zip archives, DICOM trees) "
           "on Ray Data: one row per file with its kind, its DICOM header check, its perceptual hash and its group "
           "of copies. Type its DIR here to look through the result.")
folder = st.text_input("Audit folder", key="audit_folder", placeholder="the --out folder of a medimg audit").strip()
if not folder:
    st.info("No audit opened. Run one first, e.g. `medimg audit /data/archive --out audits/archive`, then type "
            "`audits/archive` above.")
    st.stop()
try:
    audit = aw.load_audit(folder, aw.audit_stamp(folder))
except AuditError as err:
    st.error(str(err))
    st.stop()

aw.summary_section(audit.summary)
st.subheader("Header modality x predicted kind")
st.caption("Files per modality as the DICOM header writes it (other files: no DICOM header) and per kind the model "
           "sees in the pixels; files it does not recognise or cannot read are counted under their verdict.")
st.dataframe(aw.crosstab_frame(audit.summary), key="audit_crosstab", placeholder=EMPTY_CELL)

st.subheader("Where the header disagrees with the image")
aw.disagreement_gallery(audit.rows)

st.subheader("Studies")
st.caption("A study agrees when its recognised images are of one kind and no header disagrees with its image.")
st.dataframe(audit.studies, hide_index=True, key="audit_studies", placeholder=EMPTY_CELL)

st.subheader("Files")
aw.files_table(filter_rows(audit.rows, *aw.filter_choices(audit.rows)), len(audit.rows))
