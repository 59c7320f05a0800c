"""A new bundle that learns from agents' corrections on top of the base training data."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ..bundle import Bundle, read_manifest
from ..data import iter_records
from ..training import train_bundle
from .store import FeedbackStore

#: Heads that agents correct (sentiment has no correction field; it comes from the base bundle).
RETRAINED_HEADS = ("intent", "urgency")


def retrain_from_feedback(store: FeedbackStore, base_data: str | os.PathLike, *, base_model: str | os.PathLike,
                          weight: int = 3, version: str | None = None) -> Bundle:
    """Train intent and urgency heads on the base data plus the corrected messages.

    Parameters
    ----------
    base_data : path
        CSV, TSV or JSONL with ``text`` and ``intent`` and/or ``urgency`` columns.
    base_model : path
        Bundle whose encoder, featurizer settings and head hyperparameters are reused.
    weight : int
        How many times each corrected message counts (corrections are few and deliberate).

    The manifest's ``learned_from`` records the feedback database (password redacted), the
    number of corrections, their weight, a hash of them and the base data file.
    """
    if weight < 1:
        raise ValueError(f"weight must be at least 1, got {weight}")
    corrections = store.corrections()
    if not corrections:
        raise ValueError(f"{store.display_url} has no corrected intents or urgencies to learn from")
    base_manifest = read_manifest(base_model)
    texts: list[str] = []
    labels: dict[str, list[str | None]] = {head: [] for head in RETRAINED_HEADS}
    corrected_texts = {c["text"] for c in corrections}
    base_rows = 0
    for _, record in iter_records(base_data):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip() or text in corrected_texts:
            continue  # an agent's correction replaces the base label of the same message
        texts.append(text)
        for head in RETRAINED_HEADS:
            labels[head].append(record.get(head) or None)
        base_rows += 1
    for correction in corrections:
        for _ in range(weight):
            texts.append(correction["text"])
            for head in RETRAINED_HEADS:
                labels[head].append(correction.get(head))
    labels = {head: values for head, values in labels.items() if any(values)}
    featurizer = dict(base_manifest["featurizer"])
    encoder = featurizer.pop("encoder")
    # "model" is implied by the registered head name, so it is not passed again.
    head_params = {head: {k: v for k, v in base_manifest["heads"][head]["params"].items() if k != "model"}
                   for head in labels if head in base_manifest["heads"]}
    head_type = next(iter(base_manifest["heads"].values()))["head"]
    bundle = train_bundle(texts, labels, encoder=encoder, featurizer_params=featurizer, head=head_type,
                          head_params=head_params, version=version or f"feedback-{time.strftime('%Y.%m.%d-%H%M%S')}",
                          sources=[str(base_data), f"feedback: {store.display_url}"])
    digest = hashlib.sha256(json.dumps(corrections, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    bundle.manifest["learned_from"] = {
        "feedback_db": store.display_url, "corrections": len(corrections), "weight": weight,
        "corrections_sha256": digest, "base_data": str(Path(base_data)), "base_rows": base_rows,
        "base_model": base_manifest.get("version"),
    }
    return bundle
