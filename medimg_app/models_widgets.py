"""Models page components: the comparison table, confusion matrices and training curves."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from medimg_app.explorer_widgets import confusion_figure
from medimg_app.widgets import EMPTY_CELL

METRIC_LABELS = {"val_accuracy": "validation accuracy", "val_auc": "validation AUC", "val_loss": "validation loss",
                 "train_loss": "training loss"}
PERCENT = ["accuracy", "sensitivity", "specificity", "test accuracy", "unseen datasets: right, not flagged", "unseen other kinds: flagged",
           "right, not flagged", "named right", "other kinds flagged"]


def comparison_frame(table: pd.DataFrame, key: str) -> None:
    """The models side by side, numbers formatted for reading."""
    config = {c: st.column_config.NumberColumn(c, format="percent") for c in PERCENT if c in table}
    config.update({c: st.column_config.NumberColumn(c, format="%.4f") for c in ("macro-F1", "AUC", "test AUC", "unseen datasets: ECE")
                   if c in table})
    config.update({"parameters": st.column_config.NumberColumn("parameters", format="localized"),
                   "shipped": st.column_config.CheckboxColumn("shipped"),
                   "training s": st.column_config.NumberColumn("training s", format="%.0f")})
    st.dataframe(table, hide_index=True, column_config=config, key=key, placeholder=EMPTY_CELL)


def external_section(card: dict, table: pd.DataFrame) -> None:
    """The shipped model on datasets it never saw: the method, the overall numbers and one row per dataset."""
    ext = card.get("external")
    if not ext or table.empty:
        st.info("This model was not cross-validated by dataset: its numbers come from its own dataset's validation split only.")
        return
    held, own = ext["held_out"], ext.get("own_validation", {})
    parts = []
    if held.get("in_kind"):
        parts.append(f"**{held['right_not_flagged']:.1%}** of {held['in_kind']:,} scans of its kinds named right and not "
                     f"flagged (named right {held['accuracy']:.1%}, ECE {held['ece']:.3f})")
    if held.get("foreign"):
        parts.append(f"**{held['foreign_flagged']:.1%}** of {held['foreign']:,} images of other kinds flagged")
    st.markdown("; ".join(parts) + ".")
    if "accuracy" in own:
        where = "their own folds of the task's train+val images" if card.get("crossval") else "the task's own validation split"
        st.caption(f"The fold models on {where}: accuracy {own['accuracy']['mean']:.2%} "
                   f"± {own['accuracy']['std']:.2%}, flagged {own['in_kind_flagged']['mean']:.2%}.")
    names = {"temperature": "temperature", "other_threshold": "'other' threshold", "distance_factor": "distance factor",
             "operating_threshold": "operating threshold"}
    chosen = ", ".join(f"{label} {card['rejection'][key]}" for key, label in names.items()
                       if card.get("rejection", {}).get(key) is not None)
    used = f" The shipped model uses the values chosen on all folds: {chosen}." if chosen else ""
    st.caption(f"{ext.get('method', '')}.{used}")
    comparison_frame(table, key="models_external_table")


def confusion_grid(cards: list[dict], columns: int = 3) -> None:
    """One validation confusion matrix per model that recorded one."""
    with_cm = [c for c in cards if "confusion_matrix" in c.get("validation", {})]
    for start in range(0, len(with_cm), columns):
        for col, card in zip(st.columns(columns), with_cm[start:start + columns]):
            v = card["validation"]
            col.markdown(f"**{card['name']}**  \n{v['n']:,} validation images, accuracy {v['accuracy']:.2%}")
            col.plotly_chart(confusion_figure(np.asarray(v["confusion_matrix"]), card["classes"]),
                             key=f"models_cm_{card['file']}")


def curves_figure(curves: pd.DataFrame, metric: str):
    """One metric per epoch, a line per model."""
    data = curves[curves.metric == metric]
    fig = px.line(data, x="epoch", y="value", color="model", markers=True,
                  labels={"value": METRIC_LABELS.get(metric, metric)})
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    if metric in ("val_accuracy", "val_auc"):
        fig.update_yaxes(tickformat=".1%" if metric == "val_accuracy" else ".3f")
    return fig


def curves_section(curves: pd.DataFrame, key: str) -> None:
    """Validation accuracy, AUC or the losses per epoch, one at a time, chosen with a control."""
    if curves.empty:
        st.info("No per-epoch history was recorded for these models.")
        return
    metrics = [m for m in ("val_accuracy", "val_auc", "val_loss", "train_loss") if (curves.metric == m).any()]
    chosen = st.segmented_control("Curve", metrics, default=metrics[0], format_func=METRIC_LABELS.get, key=f"{key}_metric")
    st.plotly_chart(curves_figure(curves, chosen or metrics[0]), key=f"{key}_chart")


def earlier_estimates(card: dict) -> None:
    """How far a previous model's estimate was from its test result, where the card records it (`earlier_estimates`)."""
    rows = card.get("earlier_estimates") or []
    if not rows:
        return
    st.markdown("**How earlier estimates held up on the test split**")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="models_earlier_estimates", placeholder=EMPTY_CELL)
