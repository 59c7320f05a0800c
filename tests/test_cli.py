import json
import re

from conftest import ROOT, run_cli


def test_classify_json():
    proc = run_cli("classify", "--json", "我要退货，衣服太小了", "Where is my order #100234?")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data) == 2
    assert data[0]["intent"]["label"] == "return_exchange"
    assert data[1]["entities"][0]["type"] == "order_number"


def test_classify_text_output_and_stdin():
    proc = run_cli("classify", "--explain", "-", input="信用卡被盗刷了！")
    assert proc.returncode == 0, proc.stderr
    assert "critical" in proc.stdout and "fraud" in proc.stdout and "why intent" in proc.stdout


def test_classify_refuses_empty_text():
    proc = run_cli("classify", "  ")
    assert proc.returncode == 1
    assert "whitespace" in proc.stderr


def test_train_and_evaluate_round_trip(tmp_path):
    rows = [("where is my parcel", "track"), ("has it shipped", "track"), ("tracking please", "track"),
            ("我的快递到哪了", "track"), ("订单发货没", "track"), ("what's the status of my order", "track"),
            ("refund please", "money"), ("I want my money back", "money"), ("退款到账没", "money"),
            ("钱还没退", "money"), ("when do I get the refund", "money"), ("refund status?", "money"),
            ("asdfgh", "oos"), ("what's the weather", "oos"), ("讲个笑话", "oos"), ("hello there", "oos"),
            ("你好", "oos"), ("who won the game", "oos")]
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in rows), encoding="utf-8")
    out = tmp_path / "bundle"
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--unknown-label", "oos", "--encoder", "none", "--calibration-folds", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["unknown_label"] == "oos" and manifest["heads"]["intent"]["labels"] == ["money", "oos", "track"]

    held_out = [("where's my package now", "track"), ("快递到哪里了", "track"), ("has my order left the warehouse", "track"),
                ("money back please", "money"), ("退款什么时候到", "money"), ("I still have no refund", "money"),
                ("tell me a joke", "oos"), ("今天天气怎么样", "oos")]
    test = tmp_path / "test.csv"
    test.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in held_out), encoding="utf-8")
    proc = run_cli("evaluate", "--model", str(out), "--data", str(test), "--text-column", "text",
                   "--label-column", "label", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # The same figures from the Python API's predictions, abstentions counted as the unknown label.
    from triage.bundle import load_serving
    from triage.evaluation import predict_head

    predicted, _, abstained = predict_head(load_serving(out), [t for t, _ in held_out])
    predicted = ["oos" if a else p for p, a in zip(predicted, abstained)]
    gold = [g for _, g in held_out]
    in_scope = [(g, p) for g, p in zip(gold, predicted) if g != "oos"]
    assert report["n"] == len(held_out) and report["unknown_label"] == "oos"
    assert report["accuracy"] == round(sum(g == p for g, p in zip(gold, predicted)) / len(gold), 4)
    assert report["in_scope_accuracy"] == round(sum(g == p for g, p in in_scope) / len(in_scope), 4)
    assert report["oos_recall"] == round(sum(p == "oos" for g, p in zip(gold, predicted) if g == "oos") / 2, 4)
    assert report["abstained"] == sum(abstained)
    assert {s["label"] for s in report["per_label"]} >= {"money", "oos", "track"}

    proc = run_cli("evaluate", "--model", str(out), "--data", str(test), "--text-column", "text",
                   "--label-column", "label")
    assert "macro_f1" in proc.stdout and "per label" in proc.stdout

    proc = run_cli("evaluate", "--model", str(out), "--data", str(test), "--text-column", "text",
                   "--label-column", "label", "--unknown-label", "OOS")
    assert proc.returncode == 1 and "unknown label 'OOS' is neither a label" in proc.stderr


def test_train_refuses_an_unknown_label_the_data_lacks_and_single_example_labels(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{l}\n' for t, l in (
        ("where is my parcel", "track"), ("tracking please", "track"), ("refund please", "money"),
        ("退款到账没", "money"), ("讲个笑话", "oos"), ("who won the game", "oos"))), encoding="utf-8")
    out = tmp_path / "bundle"
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--unknown-label", "other", "--encoder", "none", "--out", str(out))
    assert proc.returncode == 1 and "unknown_label 'other' is not a label in the training data" in proc.stderr
    assert "['money', 'oos', 'track']" in proc.stderr and not out.exists()
    with data.open("a", encoding="utf-8") as f:
        f.write("hello,greeting\n")
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--encoder", "none", "--out", str(out))
    assert proc.returncode == 1 and "single example: 'greeting' (1)" in proc.stderr


def test_train_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\nwhere is my parcel,track\ntracking please,track\nrefund please,money\n"
                    "退款到账没,money\n", encoding="utf-8")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--encoder", "none", "--out", str(notes))
    assert proc.returncode == 1 and "is not a model bundle; refusing to replace it" in proc.stderr
    assert "read 4 rows" not in proc.stderr  # refused before reading and training
    assert (notes / "todo.txt").read_text() == "keep"


def test_evaluate_urgency_uses_the_signals_and_names_a_column_for_another_head(tmp_path):
    rows = [("我要去消协投诉你们，三天了还不退款", "critical"), ("宝宝误吞了玩具上的小零件", "critical"),
            ("衣服什么时候发货", "normal"), ("Could you tell me if the blue one comes in medium?", "low")]
    data = tmp_path / "urgency.jsonl"
    data.write_text("".join(json.dumps({"text": t, "urgency": u}, ensure_ascii=False) + "\n" for t, u in rows),
                    encoding="utf-8")
    args = ("evaluate", "--model", str(ROOT / "models" / "default"), "--data", str(data), "--text-column", "text",
            "--label-column", "urgency", "--json")
    proc = run_cli(*args)
    assert proc.returncode == 1
    assert "none of the gold labels [critical, low, normal] is a label of the 'intent' head" in proc.stderr
    assert "--head urgency" in proc.stderr
    with_signals = json.loads(run_cli(*args, "--head", "urgency").stdout)
    head_alone = json.loads(run_cli(*args, "--head", "urgency", "--no-signals").stdout)
    def critical_recall(report):
        return next(s["recall"] for s in report["per_label"] if s["label"] == "critical")

    assert critical_recall(with_signals) == 1.0
    assert critical_recall(head_alone) == 0.5  # the head reads the swallowed part as normal; the safety signal does not


def test_train_names_the_bad_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "ok", "label": "a"}\n{"text": "", "label": "b"}\n', encoding="utf-8")
    proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                   "--out", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert "bad.jsonl, line 2, field 'text'" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_train_names_file_line_field_and_fix_for_bad_rows(tmp_path):
    cases = {
        "zw.jsonl": ('{"text": "ok", "label": "high"}\n{"text": "\\u200b", "label": "low"}\n',
                     "zw.jsonl, line 2, field 'text': text '\\u200b' is not usable", "delete the row"),
        "u.tsv": ("text\tlabel\nwhere is it\thigh\nrefund\turgent\n",
                  "u.tsv, line 3, field 'label': urgency label 'urgent' is not one of critical, high, normal, low",
                  "relabel it"),
        "f.csv": ("text,label,notes\nwhere is it,high,x\nrefund;urgent\n",
                  "f.csv, line 3, field 'label': row has 1 field but the header has 3 (text, label, notes)",
                  "check the delimiter or quoting"),
    }
    for name, (content, where, hint) in cases.items():
        data = tmp_path / name
        data.write_text(content, encoding="utf-8")
        proc = run_cli("train", "--data", str(data), "--text-column", "text", "--label-column", "label",
                       "--head", "urgency", "--encoder", "none", "--out", str(tmp_path / "o"))
        assert proc.returncode == 1, proc.stderr
        assert where in proc.stderr and hint in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "o").exists()


def test_demo_scores_sample_tickets_and_reports_bad_rows(root):
    proc = run_cli("demo", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "summary" in proc.stdout and "tickets scored" in proc.stdout
    assert re.search(r"tickets refused \(bad input\)[^0-9]+2\b", proc.stdout)
    trimmed = re.search(r"trimmed \(greeting, thanks, quoted thread\)[^0-9]+(\d+)\b", proc.stdout)
    assert trimmed and int(trimmed.group(1)) >= 4  # at least the four email replies that quote the thread
    assert "refused" in proc.stderr


def _triage_exe() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name("triage"))


def test_classify_refuses_undecodable_stdin():
    import subprocess

    proc = subprocess.run([_triage_exe(), "classify", "--json", "-"], input="我的快递三天了还没到".encode("gbk"),
                          capture_output=True, timeout=900)
    assert proc.returncode == 1, proc.stderr.decode()
    [failure] = json.loads(proc.stdout)
    assert failure["reason"] == "invalid_input" and "not valid utf-8" in failure["error"]


def test_demo_names_a_missing_text_column(root):
    proc = run_cli("demo", "--text-column", "nosuch", cwd=root)
    assert proc.returncode == 1
    assert "no column 'nosuch'" in proc.stderr and "--text-column" in proc.stderr


def test_output_into_a_closed_pipe_ends_quietly():
    import subprocess

    proc = subprocess.Popen([_triage_exe(), "classify", "--json", "hello"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, as with `| head`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=900) == 141
    assert "Traceback" not in stderr, stderr


def test_an_output_path_that_is_a_directory_is_an_error_not_a_traceback(tmp_path):
    from triage.feedback import FeedbackStore

    FeedbackStore(tmp_path / "feedback.db")  # an empty store of our own
    proc = run_cli("feedback", "report", "--db", str(tmp_path / "feedback.db"), "--html", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "Is a directory" in proc.stderr and "Traceback" not in proc.stderr
