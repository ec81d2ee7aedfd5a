"""DOCX and CSV/TSV loaders: real files made in tmp_path, checked through ``load_document``."""

import io
import zipfile
from pathlib import Path

import docx
import pytest

from ingest.loaders import MAX_TABLE_COLUMNS, LoadError, _docx_container_problem, load_document

OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def _make_docx(path: Path, title: str | None = "Refund Handbook") -> Path:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Refunds", level=1)
    document.add_paragraph("Customers may return items within 30 days.")
    table = document.add_table(rows=3, cols=3)
    for row, values in enumerate([("Region", "Window", "Fee"), ("EU", "30 days", "none"), ("US", "14 days", "5 USD")]):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    document.add_heading("Exceptions", level=2)
    document.add_paragraph("Gift cards are final sale.")
    document.save(path)
    return path


def test_docx_keeps_order_headings_and_table_rows(tmp_path: Path) -> None:
    path = _make_docx(tmp_path / "handbook.docx")
    document = load_document(path, tmp_path)
    assert document.text.split("\n\n") == [
        "Refunds",
        "Customers may return items within 30 days.",
        "Region | Window | Fee\nEU | 30 days | none\nUS | 14 days | 5 USD",
        "Exceptions",
        "Gift cards are final sale.",
    ]
    assert document.metadata["title"] == "Refund Handbook"
    assert document.metadata["doc_type"] == "docx"
    assert document.metadata["source"] == "handbook.docx"


def test_docx_without_title_property_falls_back_to_file_name(tmp_path: Path) -> None:
    path = _make_docx(tmp_path / "untitled.docx", title=None)
    assert load_document(path, tmp_path).metadata["title"] == "untitled"


def test_docx_merged_cell_appears_once(tmp_path: Path) -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "Plan"
    table.cell(0, 1).merge(table.cell(0, 2)).text = "Limits"
    for column, value in enumerate(("Pro", "10 GB", "5 users")):
        table.cell(1, column).text = value
    document.save(tmp_path / "merged.docx")
    text = load_document(tmp_path / "merged.docx", tmp_path).text
    assert text == "Plan | Limits\nPro | 10 GB | 5 users"


def _not_a_word_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


def _truncated_docx(path: Path) -> None:
    _make_docx(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _spreadsheet_renamed(path: Path) -> None:
    _make_docx(path)
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    with zipfile.ZipFile(path, "w") as archive:
        for name in source.namelist():
            data = source.read(name)
            if name == "[Content_Types].xml":
                data = data.replace(b"wordprocessingml.document.main", b"spreadsheetml.sheet.main")
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "malformed DOCX: not a ZIP package"),
        (lambda p: p.write_bytes(b""), "malformed DOCX: not a ZIP package"),
        (_truncated_docx, "malformed DOCX: not a ZIP package"),
        (_not_a_word_zip, "malformed DOCX: not a Word package"),
        (_spreadsheet_renamed, "not a Word file"),
        (lambda p: p.write_bytes(OLE_HEADER), "legacy Word 97-2003 (.doc)"),
        (lambda p: p.write_bytes(OLE_HEADER + "EncryptedPackage".encode("utf-16-le")), "encrypted"),
    ],
    ids=["random-bytes", "empty", "truncated", "zip-not-docx", "xlsx-renamed", "legacy-doc", "encrypted-ole"],
)
def test_bad_docx_raises_load_error_with_reason(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad.docx"
    make(path)
    with pytest.raises(LoadError) as caught:
        load_document(path, tmp_path)
    assert reason in caught.value.reason
    assert caught.value.path == path


def test_container_check_tells_encrypted_from_legacy_ole() -> None:
    encrypted = OLE_HEADER + "EncryptedPackage".encode("utf-16-le") + "EncryptionInfo".encode("utf-16-le")
    assert "encrypted" in (_docx_container_problem(encrypted) or "")
    assert "legacy" in (_docx_container_problem(OLE_HEADER) or "")
    assert "not a ZIP" in (_docx_container_problem(b"PK\x03\x04 truncated") or "")


def test_docx_encrypted_with_a_password_is_reported(tmp_path: Path) -> None:
    """A real password-protected DOCX; msoffcrypto-tool is not a project dependency, so this runs where it exists."""
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    plain = _make_docx(tmp_path / "plain.docx")
    encrypted = io.BytesIO()
    with plain.open("rb") as handle:
        ooxml.OOXMLFile(handle).encrypt("secret", encrypted)
    path = tmp_path / "locked.docx"
    path.write_bytes(encrypted.getvalue())
    with pytest.raises(LoadError, match="encrypted"):
        load_document(path, tmp_path)


def test_csv_rows_become_self_describing_lines(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        'name,city,note\n"Smith, Jane",Berlin,"says ""hi"", often"\nLee,,\n\nDoe,"Paris","multi\nline"\n',
        encoding="utf-8",
    )
    document = load_document(path, tmp_path)
    assert document.text.splitlines() == [
        'name: Smith, Jane; city: Berlin; note: says "hi", often',
        "name: Lee",
        "name: Doe; city: Paris; note: multi line",
    ]
    assert document.metadata["structured"] == "table"
    assert document.metadata["rows"] == 3
    assert document.metadata["columns"] == "name, city, note"
    assert document.metadata["doc_type"] == "csv"


def test_csv_delimiter_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("sku;price\nA-1;3,50\nB-2;4,00\n", encoding="utf-8")
    assert load_document(path, tmp_path).text == "sku: A-1; price: 3,50\nsku: B-2; price: 4,00"


def test_single_column_csv_falls_back_to_comma(tmp_path: Path) -> None:
    path = tmp_path / "terms.csv"
    path.write_text("term\nrefund\nchargeback\n", encoding="utf-8")
    document = load_document(path, tmp_path)
    assert document.text == "term: refund\nterm: chargeback"
    assert document.metadata["columns"] == "term"


def test_tsv_uses_tabs_and_names_blank_headers(tmp_path: Path) -> None:
    path = tmp_path / "codes.tsv"
    path.write_text("code\tmeaning\t\nNW-422\tbad, request\textra\n", encoding="utf-8")
    document = load_document(path, tmp_path)
    assert document.text == "code: NW-422; meaning: bad, request; column 3: extra"
    assert document.metadata["columns"] == "code, meaning, column 3"
    assert document.metadata["doc_type"] == "tsv"


def test_trailing_empty_fields_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text("a,b\n1,2,\n", encoding="utf-8")
    assert load_document(path, tmp_path).text == "a: 1; b: 2"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("quote.csv", b'a,b\n1,"unterminated\n2,3\n', "malformed CSV at line 2: unexpected end of data"),
        ("binary.csv", b"a,b\n\x00\x01\x02", "binary"),
        ("latin1.csv", "a,b\ncaf\u00e9,1\n".encode("latin-1"), "not valid UTF-8"),
        ("empty.csv", b"", "empty table file"),
        ("blank.tsv", b"\n\t\n  \n", "empty table file"),
        ("header-only.csv", b"a,b,c\n", "no data rows"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields but the header has 2"),
        ("ragged-after-multiline.csv", b'a,b\n"x\ny",2\n3,4,5\n', "line 4 has 3 fields"),
        ("stray-quote.csv", b'a,b\n"x"y,2\n', "malformed CSV at line 2"),
        ("wide.csv", (",".join(f"c{i}" for i in range(MAX_TABLE_COLUMNS + 1)) + "\n1\n").encode(), "columns (limit"),
        ("huge-field.csv", b'a\n"' + b"x" * 200_000 + b'"\n', "malformed CSV at line 2"),
    ],
)
def test_bad_tables_raise_load_error_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as caught:
        load_document(path, tmp_path)
    assert reason in caught.value.reason
