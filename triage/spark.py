"""Scoring on Apache Spark: the same :func:`~triage.batch.score_frame` through ``mapInPandas``.

Each Python worker loads the model and knowledge base once (a process-wide cache) and scores the
Arrow batches Spark hands it, so results are identical to ``triage score``. On a cluster, install
``kefu-triage`` on every executor (the default model ships inside the wheel), then::

    from triage.spark import score
    scored = score(spark.read.parquet("s3://.../tickets/"), text_col="body", id_col="ticket_id")
    scored.write.parquet("s3://.../scored/")
"""

from __future__ import annotations

from .batch import OUTPUT_COLUMNS, score_frame
from .pipeline import Triage

_FLOATS = {"intent_confidence", "sentiment_score", "kb_score"}
_BOOLS = {"needs_review", "knowledge_gap", "draft_needs_human", "truncated"}
_EXECUTOR_TRIAGE: dict[tuple, Triage] = {}


def output_schema():
    """The Spark schema of :data:`~triage.batch.OUTPUT_COLUMNS`."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    return StructType([StructField(c, DoubleType() if c in _FLOATS else BooleanType() if c in _BOOLS else StringType())
                       for c in OUTPUT_COLUMNS])


def _triage_for(model, knowledge_base) -> Triage:
    key = (model, knowledge_base)
    if key not in _EXECUTOR_TRIAGE:
        _EXECUTOR_TRIAGE[key] = Triage(model, knowledge_base=knowledge_base).warm_up()
    return _EXECUTOR_TRIAGE[key]


def score(df, *, text_col: str | None = "text", subject_col: str | None = None, body_col: str | None = None,
          id_col: str | None = None, time_col: str | None = None, drafts: bool = True, model: str | None = None,
          knowledge_base: str | None = None, max_chars: int = 20_000):
    """Score a Spark DataFrame; returns a DataFrame with :data:`~triage.batch.OUTPUT_COLUMNS`.

    `model` and `knowledge_base` are paths every executor can read (None: the shipped defaults).
    Without `id_col`, ids are the row positions within each Arrow batch, so pass one for data you
    will join back.
    """
    options = dict(text_column=text_col or "text", subject_column=subject_col, body_column=body_col,
                   id_column=id_col, time_column=time_col, drafts=drafts, max_chars=max_chars)

    def score_batches(batches):
        triage = _triage_for(model, knowledge_base)
        for frame in batches:
            out = score_frame(frame, triage, **options)
            for column in _FLOATS:
                out[column] = out[column].astype("float64")
            for column in _BOOLS:
                out[column] = out[column].astype("object")
            yield out

    return df.mapInPandas(score_batches, schema=output_schema())
