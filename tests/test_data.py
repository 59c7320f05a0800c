import pytest

from triage.data import DataFileError, read_labeled


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


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
        ("m.csv", "text,label\nhello,greeting\n,refund\n", r"line 3, field 'text': text is empty"),
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
