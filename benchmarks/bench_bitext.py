"""The shipped default on real-world English requests it never trained on (Bitext, 27 intents).

    python benchmarks/bench_bitext.py

Bitext intents are mapped onto the default taxonomy (docs/labels.md); the default model was
trained only on the project's own data.
"""

from collections import Counter

from common import dataset, print_table

import triage
from triage.data import iter_records
from triage.evaluation import evaluate_predictions

BITEXT_TO_TAXONOMY = {
    "cancel_order": "order_cancel", "check_cancellation_fee": "order_cancel",
    "change_order": "order_change", "change_shipping_address": "order_change",
    "place_order": "place_order", "track_order": "order_status",
    "delivery_options": "delivery_options", "delivery_period": "delivery_options",
    "get_refund": "refund", "track_refund": "refund", "check_refund_policy": "refund",
    "payment_issue": "payment", "check_payment_methods": "payment",
    "check_invoice": "invoice", "get_invoice": "invoice",
    "create_account": "account_access", "recover_password": "account_access",
    "registration_problems": "account_access", "switch_account": "account_access",
    "edit_account": "account_settings", "delete_account": "account_settings",
    "newsletter_subscription": "account_settings", "set_up_shipping_address": "account_settings",
    "complaint": "complaint", "contact_customer_service": "human_agent",
    "contact_human_agent": "human_agent", "review": "feedback",
}

if __name__ == "__main__":
    path = dataset("bitext_customer_support_4k") / "Bitext_Sample_Customer_Support_Training_Dataset_commit8b6ca3d.csv"
    rows = [r for _, r in iter_records(path)]
    texts = [r["instruction"] for r in rows]
    gold = [BITEXT_TO_TAXONOMY[r["intent"]] for r in rows]
    t = triage.load()
    results = t.triage_batch(texts)
    predicted = [r.intent.label for r in results]
    report = evaluate_predictions(gold, predicted)
    by_source = Counter()
    wrong = Counter()
    for r, p, g in zip(rows, predicted, gold):
        by_source[r["intent"]] += 1
        wrong[r["intent"]] += p != g
    print_table(
        f"Bitext ({len(texts)} requests) with the default model {t.version}",
        ["measure", "value"],
        [["intent accuracy", report.accuracy], ["macro-F1", report.macro_f1],
         ["abstained (needs review)", sum(r.intent.abstained for r in results)]],
    )
    print_table(
        "accuracy by Bitext intent (worst first)",
        ["bitext intent", "mapped to", "accuracy", "most common error"],
        sorted(
            [[k, BITEXT_TO_TAXONOMY[k], 1 - wrong[k] / n,
              Counter(p for r, p, g in zip(rows, predicted, gold) if r["intent"] == k and p != g).most_common(1)]
             for k, n in by_source.items()],
            key=lambda row: row[2],
        ),
    )
