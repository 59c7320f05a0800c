"""Agent feedback on drafts: the database, reports, and retraining from corrections."""

from .report import FeedbackReport, build_report, render_html
from .store import ACTIONS, SCHEMA_VERSION, FeedbackError, FeedbackRow, FeedbackStore, edit_distance

__all__ = ["ACTIONS", "FeedbackError", "FeedbackReport", "FeedbackRow", "FeedbackStore", "SCHEMA_VERSION",
           "build_report", "edit_distance", "render_html", "retrain_from_feedback"]


def __getattr__(name: str):
    # Retraining needs scikit-learn, which serving never imports: loaded when first asked for.
    if name == "retrain_from_feedback":
        from .retrain import retrain_from_feedback

        return retrain_from_feedback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
