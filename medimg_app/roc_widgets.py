"""Models page component: a two-class model's ROC curve, where its operating point sits on it, and what that
point gives at other shares of the positive class."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from medimg_app.widgets import EMPTY_CELL


def chosen_point(card: dict) -> tuple[dict | None, str]:
    """The card's operating point with the ROC it sits on (out-of-fold where cross-validated), and what data it is on."""
    section = card.get("operating_threshold") or {}
    point = section.get("out_of_fold") or card.get("crossval", {}).get("operating_point")
    if point:
        return point, f"pooled out-of-fold predictions of {point['n']:,} images"
    point = section.get("on_validation")
    return (point, f"the validation split ({point['n']:,} images)") if point else (None, "")


def roc_figure(point: dict, positive: str) -> go.Figure:
    """The ROC curve with the operating point marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=point["roc"]["fpr"], y=point["roc"]["tpr"], mode="lines", name="ROC"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance"))
    fig.add_trace(go.Scatter(x=[1 - point["specificity"]], y=[point["sensitivity"]], mode="markers",
                             marker=dict(size=12, symbol="x"), name=f"operating point (threshold {point['threshold']:.3f})"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis_title="1 - specificity (normal called " + positive + ")",
                      yaxis_title=f"sensitivity ({positive} found)")
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(range=[0, 1.01], tickformat=".0%")
    return fig


def prevalence_frame(point: dict) -> pd.DataFrame:
    """Accuracy, PPV and NPV of the same operating point at each share of the positive class."""
    rows = [{"share of the positive class": r["prevalence"], "accuracy": r["accuracy"],
             "positive predictive value": r["ppv"], "negative predictive value": r["npv"]} for r in point["by_prevalence"]]
    return pd.DataFrame(rows)


def operating_point_section(card: dict) -> None:
    """The shipped model's operating point: how it was chosen, the ROC with the point, and the prevalence table."""
    point, where = chosen_point(card)
    if point is None:
        st.info("This model's card records no ROC curve (it was trained before operating points were recorded).")
        return
    positive = card["operating_threshold"]["class"]
    st.markdown(f"Threshold **{point['threshold']:.3f}** on P({positive}), chosen by "
                f"{card['operating_threshold']['chosen_by']}: sensitivity **{point['sensitivity']:.1%}**, "
                f"specificity **{point['specificity']:.1%}** on {where}.")
    st.plotly_chart(roc_figure(point, positive), key="models_roc")
    st.caption("Sensitivity and specificity do not depend on how common the disease is; accuracy and the predictive "
               "values do. The same operating point where the positive class makes up other shares of the images:")
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(prevalence_frame(point), hide_index=True, key="models_prevalence", placeholder=EMPTY_CELL,
                 column_config={c: percent for c in ("share of the positive class", "accuracy",
                                                     "positive predictive value", "negative predictive value")})
