from pathlib import Path

import pytest

from ingest.loaders import LoadError, discover, load_document
from ingest.samples import sample_corpus_dir

SAMPLE = sample_corpus_dir()


@pytest.mark.parametrize(
    ("relative", "expected_text", "expected_meta"),
    [
        ("policies/refund-policy-eu-2024.md", "30 days", {"region": "EU", "effective_date": "2024-03-01"}),
        ("policies/refund-policy-us.html", "14 days", {"region": "US"}),
        ("policies/data-retention-us.pdf", "retention", {"region": "US"}),
        ("api/error-codes.json", "NW-422-07", {"structured": "json"}),
        ("policies/acceptable-use.txt", "Acceptable", {}),
    ],
)
def test_every_sample_format_loads_with_metadata(relative: str, expected_text: str, expected_meta: dict) -> None:
    document = load_document(SAMPLE / relative, SAMPLE)
    assert document.doc_id == relative
    assert expected_text.lower() in document.text.lower()
    assert document.metadata["source"] == relative
    for key, value in expected_meta.items():
        assert document.metadata[key] == value


def test_discover_skips_sidecars_and_is_stable() -> None:
    paths = list(discover(SAMPLE))
    assert paths == sorted(paths)
    assert not any(p.name.endswith(".meta.json") for p in paths)
    assert len(paths) >= 20


def test_cli_metadata_overrides_sidecar_and_front_matter() -> None:
    document = load_document(SAMPLE / "policies/refund-policy-eu-2024.md", SAMPLE, {"region": "XX", "team": "legal"})
    assert document.metadata["region"] == "XX" and document.metadata["team"] == "legal"


def test_content_hash_ignores_modification_time(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# A\nbody")
    first = load_document(path, tmp_path).content_hash
    path.touch()
    assert load_document(path, tmp_path).content_hash == first
    path.write_text("# A\nchanged")
    assert load_document(path, tmp_path).content_hash != first


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.txt", b"abc\x00\x01\x02", "binary"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "not valid UTF-8"),
        ("broken.json", b'{"a": 1,', "malformed JSON"),
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "PDF"),
        ("blank.md", b"   \n\n", "no text"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type"),
        ("front.md", b"---\n: [unclosed\n---\nbody", "front matter"),
    ],
)
def test_bad_files_raise_load_error_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=reason):
        load_document(path, tmp_path)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as sink:
        writer.write(sink)
    with pytest.raises(LoadError, match="encrypted"):
        load_document(path, tmp_path)
