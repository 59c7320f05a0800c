"""Agent feedback on drafts: the database, reports, and retraining from corrections."""

from .report import FeedbackReport, build_report, render_html
from .retrain import retrain_from_feedback
from .store import ACTIONS, SCHEMA_VERSION, FeedbackError, FeedbackRow, FeedbackStore, edit_distance

__all__ = ["ACTIONS", "FeedbackError", "FeedbackReport", "FeedbackRow", "FeedbackStore", "SCHEMA_VERSION",
           "build_report", "edit_distance", "render_html", "retrain_from_feedback"]
