import pytest

from retrieval.text import TextInputError
from triage.data import DataFileError, read_labeled


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def refusal(path, *args, **kwargs) -> DataFileError:
    """The error read_labeled raises for `path`."""
    with pytest.raises(DataFileError) as info:
        read_labeled(path, *args, **kwargs)
    return info.value


def test_reads_csv_tsv_jsonl(tmp_path):
    csv_path = write(tmp_path, "a.csv", 'text,label\n"hello, world",greeting\n退款,refund\n')
    tsv_path = write(tmp_path, "a.tsv", "text\tlabel\nhello\tgreeting\n")
    jsonl_path = write(tmp_path, "a.jsonl", '{"text": "hi", "label": 1}\n\n{"text": "yo", "label": "x"}\n')
    assert read_labeled(csv_path, "text", "label").texts == ["hello, world", "退款"]
    assert read_labeled(tsv_path, "text", "label").labels == ["greeting"]
    data = read_labeled(jsonl_path, "text", "label")
    assert data.labels == ["1", "x"] and data.lines == [1, 3]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("m.csv", "text,label\nhello,greeting\n,refund\n", r"line 3, field 'text': text '' is not usable: message is empty"),
        ("m.csv", "text,label\nhello,\n", r"line 2, field 'label'"),
        ("m.csv", "body,label\nhello,x\n", r"line 2, field 'text': no column 'text'"),
        ("m.csv", "text,label\nhello,x,extra\n", r"line 2: row has more fields"),
        ("m.csv", 'text,label\nhello,x\n"unclosed,x\na,b\nc,d\n', r"line 3: the row starting here runs on to line 5.*never closed"),
        ("m.jsonl", '{"text": "a", "label": "b"}\n{"text": "a", "label"\n', r"line 2: invalid JSON"),
        ("m.jsonl", '["a", "b"]\n', r"line 1: expected a JSON object"),
        ("m.csv", "", r"no header row"),
        ("m.xlsx", "x", r"unsupported file type"),
    ],
)
def test_malformed_files_name_file_line_and_field(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(DataFileError, match=message) as info:
        read_labeled(path, "text", "label")
    assert str(path) in str(info.value)


def test_wrong_encoding_and_binary(tmp_path):
    gbk = write(tmp_path, "g.csv", "text,label\n退款,refund\n".encode("gbk"), mode="wb")
    with pytest.raises(DataFileError, match="line 2: is not valid UTF-8"):
        read_labeled(gbk, "text", "label")
    binary = write(tmp_path, "b.csv", b"\x00\x01\x02PK", mode="wb")
    with pytest.raises(DataFileError, match="binary"):
        read_labeled(binary, "text", "label")
    with pytest.raises(DataFileError, match="file not found"):
        read_labeled(tmp_path / "nope.csv", "text", "label")


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path):
    path = write(tmp_path, "u.jsonl", '{"text": "line\u2028break", "label": "a"}\n{"text": "b", "label": "c"}\n')
    data = read_labeled(path, "text", "label")
    assert data.texts == ["line\u2028break", "b"] and data.lines == [1, 2]


def test_tsv_quote_marks_inside_text_do_not_merge_rows(tmp_path):
    path = write(tmp_path, "r.tsv", 'label\ttext\n1\t"好书"，值得一读\n0\t纸张很差\n1\t还行"吧\n')
    data = read_labeled(path, "text", "label")
    assert data.texts == ['"好书"，值得一读', "纸张很差", '还行"吧'] and data.labels == ["1", "0", "1"]


def test_tsv_written_with_quoting_is_still_unquoted(tmp_path):
    path = write(tmp_path, "q.tsv", 'label\ttext\n1\t"a 5"" screen"\n0\tplain\n')
    assert read_labeled(path, "text", "label").texts == ['a 5" screen', "plain"]


@pytest.mark.parametrize(
    "name, content, line",
    [
        ("z.jsonl", '{"text": "fine", "label": "a"}\n{"text": "\\u200b", "label": "b"}\n', 2),  # zero-width space
        ("z.csv", "text,label\nfine,a\n\u200b\u200b,b\n", 3),
        ("z.tsv", "text\tlabel\nfine\ta\n\x01\x02 \x7f\tb\n", 3),  # control characters only
    ],
)
def test_invisible_only_text_is_refused_with_file_line_field_and_value(tmp_path, name, content, line):
    path = write(tmp_path, name, content)
    error = refusal(path, "text", "label")
    message = str(error)
    assert f"{path}, line {line}, field 'text': text " in message
    assert "whitespace or control characters only" in message
    assert "\\u200b" in message or "\\x01" in message  # the bad value, made visible
    assert "write the message in this field or delete the row" in message
    assert (error.path, error.field) == (str(path), "text")


def test_text_that_is_not_a_string_names_the_value_and_the_fix(tmp_path):
    path = write(tmp_path, "n.jsonl", '{"text": "fine", "label": "a"}\n{"text": 123, "label": "b"}\n')
    error = refusal(path, "text", "label")
    message = str(error)
    assert f"{path}, line 2, field 'text': text 123 is not usable" in message
    assert "must be str" in message and "write the message in this field" in message


@pytest.mark.parametrize("head, bad, allowed", [("urgency", "urgent", "critical, high, normal, low"),
                                                ("sentiment", "happy", "negative, neutral, positive")])
def test_labels_outside_the_heads_set_name_line_field_value_and_allowed(tmp_path, head, bad, allowed):
    good = "high" if head == "urgency" else "positive"
    path = write(tmp_path, "h.csv", f"text,{head}\nwhere is it,{good}\nrefund now,{bad}\nagain,{bad}\n")
    assert read_labeled(path, "text", head).labels == [good, bad, bad]  # no head given: any label
    error = refusal(path, "text", head, head=head)
    message = str(error)
    assert f"{path}, line 3, field '{head}'" in message  # the first offending row
    assert f"{head} label {bad!r} is not one of {allowed}; relabel it with one of those" in message


def test_label_in_the_wrong_case_is_told_how_to_write_it(tmp_path):
    path = write(tmp_path, "c.tsv", "text\turgency\nwhere is it\tHigh\n")
    with pytest.raises(DataFileError, match=r"c\.tsv, line 2, field 'urgency': .*'High'.*write it as 'high'"):
        read_labeled(path, "text", "urgency", head="urgency")
    assert read_labeled(path, "text", "urgency", head="intent").labels == ["High"]  # intent labels are open


@pytest.mark.parametrize(
    "name, content, got, fields",
    [
        ("f.csv", "text,intent,urgency\nhello,track,high\nno commas here\n", "1 field", "3 (text, intent, urgency)"),
        ("f.tsv", "text\tintent\turgency\nhello\ttrack\thigh\nhello,track,high\n", "1 field", "3 (text, intent, urgency)"),
        ("f.csv", "text,intent,urgency\nhello,track,high\nhello,track\n", "2 fields", "3 (text, intent, urgency)"),
    ],
)
def test_row_with_too_few_fields_names_counts_header_and_hint(tmp_path, name, content, got, fields):
    path = write(tmp_path, name, content)
    error = refusal(path, "text", "urgency")
    message = str(error)
    assert f"{path}, line 3, field 'urgency': row has {got} but the header has {fields}" in message
    assert "check the delimiter or quoting" in message
    assert "None" not in message


def test_short_row_is_fine_when_the_missing_field_is_not_needed(tmp_path):
    path = write(tmp_path, "s.csv", "text,label,notes\nhello,greeting,x\nbye,farewell\n")
    assert read_labeled(path, "text", "label").labels == ["greeting", "farewell"]


def test_valid_files_read_as_before_with_a_head(tmp_path):
    path = write(tmp_path, "v.jsonl", '{"text": " 我要退款 ", "urgency": " high "}\n{"text": "ok\\u200bthanks", "urgency": "low"}\n')
    data = read_labeled(path, "text", "urgency", head="urgency")
    assert data.texts == [" 我要退款 ", "ok\u200bthanks"] and data.labels == ["high", "low"] and data.lines == [1, 2]
    with pytest.raises(ValueError, match="unknown head 'priority'"):
        read_labeled(path, "text", "urgency", head="priority")


def test_train_bundle_names_the_index_of_the_first_bad_item():
    from triage.training import train_bundle

    with pytest.raises(TextInputError, match=r"texts\[1\]: text '\\u200b' is not usable: message is whitespace"):
        train_bundle(["fine", "\u200b", "\x01", "ok"], {"intent": ["a", "b", "a", "b"]}, encoder="none")
    with pytest.raises(ValueError, match=r"labels\['urgency'\]\[2\]: urgency label 'urgent' is not one of "
                                         r"critical, high, normal, low; relabel"):
        train_bundle(["a", "b", "c", "d"], {"urgency": ["high", None, "urgent", "soon"]}, encoder="none")
    with pytest.raises(ValueError, match=r"labels\['sentiment'\]\[0\]: .*write it as 'positive'"):
        train_bundle(["a", "b"], {"sentiment": ["Positive", "negative"]}, encoder="none")
    with pytest.raises(ValueError, match=r"labels\['intent'\] has labels with a single example: 'c' \(1\)"):
        train_bundle(["a", "b", "c", "d", "e"], {"intent": ["a", "b", "c", "a", "b"]}, encoder="none")
    with pytest.raises(ValueError, match=r"unknown_label 'OOS' is not a label in the training data"):
        train_bundle(["a", "b", "c", "d"], {"intent": ["a", "b", "a", "b"]}, encoder="none", unknown_label="OOS")
