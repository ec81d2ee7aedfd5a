"""Turn files into ``Document``s: one loader per format, chosen by suffix, plus metadata from front matter or a
sidecar ``<file>.meta.json``.

A file that cannot be read raises ``LoadError`` with the reason; the ingestion job reports it and goes on with
the rest of the batch, so one bad file never stops an ingest.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ingest.document import Document

if TYPE_CHECKING:
    from docx.table import Table

SIDECAR_SUFFIX = ".meta.json"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Stream name (UTF-16LE, as OLE directories store it) that holds an encrypted OOXML package (MS-OFFCRYPTO 2.3.4.4).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
MAX_TABLE_COLUMNS = 200
_CSV_SNIFF_BYTES = 64 * 1024
# JSON deeper than this is refused before parsing: ``json`` parses (and pretty-prints) recursively, so a few KB of
# brackets would otherwise raise RecursionError. 256 is libxml2's default limit for HTML, so both formats agree.
MAX_NESTING_DEPTH = 256
# The longest file name (in UTF-8 bytes) most filesystems allow; a document's sidecar name must fit it too.
MAX_NAME_BYTES = 255
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


class LoadError(ValueError):
    """A file that cannot be turned into a document; ``reason`` is shown to the user."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Loaded:
    text: str
    metadata: dict[str, Any]


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise LoadError(path, "binary content (NUL bytes) in a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not valid UTF-8 (byte {exc.start}); convert it to UTF-8") from None


def _scalar_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep values a vector store can filter on; dates become ISO strings so they compare as dates."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        if isinstance(value, str | int | float | bool):
            clean[str(key)] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            clean[str(key)] = ", ".join(value)
    return clean


def load_markdown(path: Path) -> Loaded:
    text = _decode(path, path.read_bytes())
    metadata: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise LoadError(path, f"malformed YAML front matter: {exc}") from None
        if not isinstance(front, dict):
            raise LoadError(path, "front matter is not a mapping of keys to values")
        metadata = _scalar_metadata(front)
        text = text[match.end() :]
    if "title" not in metadata:
        heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        if heading:
            metadata["title"] = heading.group(1).strip()
    return Loaded(text, metadata)


def load_text(path: Path) -> Loaded:
    return Loaded(_decode(path, path.read_bytes()), {})


def load_html(path: Path) -> Loaded:
    """Block-level text of an HTML page, script and style dropped.

    libxml2 stops building the tree at its resource limits (256 levels of nesting, oversized text nodes) and
    silently drops what lies beyond; such a page is refused with the limit rather than ingested half-read.
    """
    import lxml.etree
    import lxml.html

    raw = path.read_bytes()
    if not raw.strip():
        return Loaded("", {})
    parser = lxml.html.HTMLParser()  # one per call: its error log is per document, and parsers are not thread-safe
    try:
        tree = lxml.html.document_fromstring(raw, parser=parser)
    except Exception as exc:  # lxml raises several parser error types
        raise LoadError(path, f"malformed HTML: {exc}") from None
    limits = [error.message for error in parser.error_log if error.type == lxml.etree.ErrorTypes.ERR_RESOURCE_LIMIT]
    if limits:
        raise LoadError(path, f"HTML too deeply nested or too large for the parser ({limits[0].split(',')[0]})")
    for element in tree.xpath("//script|//style|//noscript"):
        element.drop_tree()
    title = tree.findtext(".//title")
    blocks = []
    for element in tree.iter("h1", "h2", "h3", "h4", "p", "li", "pre", "td", "th", "dt", "dd", "blockquote"):
        if (
            element.tag in {"p", "li", "td", "th", "dd", "dt"}
            and element.getparent() is not None
            and any(ancestor.tag in {"li", "td", "th", "pre"} for ancestor in element.iterancestors())
        ):
            continue
        content = element.text_content() if element.tag != "pre" else element.text_content().strip("\n")
        content = content if element.tag == "pre" else " ".join(content.split())
        if content:
            blocks.append(content)
    metadata = {"title": " ".join(title.split())} if title else {}
    return Loaded("\n\n".join(blocks), metadata)


def load_pdf(path: Path) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise LoadError(path, "encrypted PDF; decrypt it before ingesting")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except LoadError:
        raise
    except LimitReachedError as exc:  # a decompression bomb: pypdf stops at its output limit
        raise LoadError(path, f"PDF exceeds a decompression limit ({exc})") from None
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise LoadError(path, f"malformed PDF: {exc}") from None
    metadata: dict[str, Any] = {"pages": len(pages)}
    if title:
        metadata["title"] = str(title)
    return Loaded("\n\n".join(p.strip() for p in pages if p.strip()), metadata)


def _json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text``, counted without recursion (brackets inside strings
    do not count), so the depth of hostile input can be checked before a recursive parser sees it."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(1 if bracket in "[{" else -1 for bracket in brackets), default=0)


def _refuse_deep_json(path: Path, text: str, what: str) -> None:
    """``LoadError`` when ``text`` nests deeper than ``MAX_NESTING_DEPTH``; checked before ``json`` parses it."""
    depth = _json_depth(text)
    if depth > MAX_NESTING_DEPTH:
        raise LoadError(path, f"{what} nested too deeply ({depth} levels, limit {MAX_NESTING_DEPTH})")


def load_json(path: Path) -> Loaded:
    """JSON stays JSON (pretty-printed): it is structured text that later stages must not rewrite."""
    text = _decode(path, path.read_bytes())
    _refuse_deep_json(path, text, "JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    metadata: dict[str, Any] = {"structured": "json"}
    if isinstance(data, dict) and isinstance(data.get("title"), str):
        metadata["title"] = data["title"]
    return Loaded(json.dumps(data, indent=2, ensure_ascii=False), metadata)


def _docx_container_problem(raw: bytes) -> str | None:
    """Why ``raw`` cannot be a DOCX, judged from its container, or ``None`` when it is a ZIP package.

    Checked before python-docx opens the file because its own error for every non-ZIP or truncated input is a
    misleading "Package not found". An encrypted DOCX is an OLE compound file holding an ``EncryptedPackage``
    stream; any other OLE file with a .docx name is a legacy Word 97-2003 document.
    """
    if raw.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in raw:
            return "encrypted (password-protected) DOCX; remove the password in Word and save it again"
        return "malformed DOCX: this is a legacy Word 97-2003 (.doc) file; open it in Word and save it as .docx"
    if not raw.startswith(_ZIP_MAGIC) or not zipfile.is_zipfile(io.BytesIO(raw)):
        return "malformed DOCX: not a ZIP package (the file is damaged, truncated or not a Word document)"
    return None


def _docx_table_lines(table: Table) -> list[str]:
    """One line per row, cells joined by " | ", so each row's values stay together in a chunk and stay searchable.

    python-docx repeats a horizontally merged cell once per grid column; repeats are dropped.
    """
    lines = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # the same <w:tc> element: one merged cell
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def load_docx(path: Path) -> Loaded:
    """Word documents through python-docx (pinned in requirements/app.txt).

    Chosen over docx2txt (what llama-index's DocxReader wraps) because python-docx walks the body in order as
    paragraphs and tables, exposes styles and core properties, and is actively maintained; docx2txt returns one flat
    string with table cells on separate lines and no title. Each paragraph, heading included, is its own block;
    headers, footers, comments and footnotes are left out as page furniture.
    """
    import docx
    from docx.opc.exceptions import OpcError
    from docx.table import Table

    raw = path.read_bytes()
    problem = _docx_container_problem(raw)
    if problem:
        raise LoadError(path, problem)
    try:
        document = docx.Document(str(path))  # a path, not the bytes, so errors name the file rather than a buffer
    except KeyError as exc:  # a ZIP without the parts of a Word package
        raise LoadError(path, f"malformed DOCX: not a Word package ({exc.args[0] if exc.args else exc})") from None
    except (OpcError, zipfile.BadZipFile, ValueError, SyntaxError) as exc:  # SyntaxError: lxml's XML errors
        raise LoadError(path, f"malformed DOCX: {exc}") from None
    blocks = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            lines = _docx_table_lines(item)
            if lines:
                blocks.append("\n".join(lines))
        elif item.text.strip():
            blocks.append(item.text.strip())
    title = (document.core_properties.title or "").strip()
    return Loaded("\n\n".join(blocks), {"title": title} if title else {})


def _csv_format(path: Path, text: str) -> dict[str, Any]:
    """Reader options: tab for .tsv; for .csv the delimiter (and space-after-delimiter) from ``csv.Sniffer``.

    Only those two are taken from the sniffer: it reports ``doublequote=False`` whenever its sample holds no ``""``,
    which would break on an escaped quote further down the file. A sample it cannot read means a comma.
    """
    if path.suffix.lower() == ".tsv":
        return {"dialect": csv.excel_tab}
    sample = text[:_CSV_SNIFF_BYTES]
    if len(text) > _CSV_SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return {"dialect": csv.excel}
    return {"dialect": csv.excel, "delimiter": sniffed.delimiter, "skipinitialspace": sniffed.skipinitialspace}


def _table_header(path: Path, row: list[str]) -> list[str]:
    if len(row) > MAX_TABLE_COLUMNS:
        raise LoadError(
            path, f"{len(row)} columns (limit {MAX_TABLE_COLUMNS}); split the table or export it as JSON instead"
        )
    return [" ".join(cell.split()) or f"column {i}" for i, cell in enumerate(row, start=1)]


def _table_line(path: Path, header: list[str], row: list[str], line: int) -> str:
    """``header: value; ...`` so any run of rows that ends up in one chunk still says what each value means.

    Empty trailing fields past the header (a trailing delimiter) are harmless; values there mean a misparsed row.
    """
    if any(value.strip() for value in row[len(header) :]):
        raise LoadError(
            path,
            f"line {line} has {len(row)} fields but the header has {len(header)};"
            " quote values that contain the delimiter",
        )
    pairs = (f"{name}: {' '.join(value.split())}" for name, value in zip(header, row, strict=False) if value.strip())
    return "; ".join(pairs)


def load_table(path: Path) -> Loaded:
    """CSV/TSV through the standard ``csv`` module; the first row is always the header.

    Rows are rendered one per line as ``header: value`` pairs (empty cells left out) rather than kept as CSV, since a
    chunk cut from the middle of a CSV loses its header and with it the meaning of every value.
    """
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise LoadError(path, "empty table file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, **_csv_format(path, text))
    header: list[str] | None = None
    lines: list[str] = []
    start = 1  # first line of the record being read: where an unclosed quote opens, not where the file ends
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                pass  # blank line
            elif header is None:
                header = _table_header(path, row)
            else:
                lines.append(_table_line(path, header, row, start))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise LoadError(path, f"malformed {path.suffix.lower().lstrip('.').upper()} at line {start}: {exc}") from None
    if header is None or not lines:
        raise LoadError(path, "no data rows below the header row")
    return Loaded("\n".join(lines), {"structured": "table", "rows": len(lines), "columns": ", ".join(header)})


LOADERS: dict[str, Callable[[Path], Loaded]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".json": load_json,
    ".docx": load_docx,
    ".csv": load_table,
    ".tsv": load_table,
}


def _sidecar_metadata(path: Path) -> dict[str, Any]:
    """The sidecar's metadata; a file whose name is too long for a sidecar name to exist has none."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if len(sidecar.name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES or not sidecar.is_file():
        return {}
    try:
        text = sidecar.read_text(encoding="utf-8")
        _refuse_deep_json(path, text, f"sidecar {sidecar.name}")
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(path, f"sidecar {sidecar.name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise LoadError(path, f"sidecar {sidecar.name} must hold a JSON object")
    return _scalar_metadata(data)


def load_document(path: Path, root: Path, extra_metadata: Mapping[str, Any] | None = None) -> Document:
    """Load one file; metadata precedence: CLI/API values > sidecar > front matter > derived."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(path, f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(LOADERS)}")
    loaded = loader(path)
    if not loaded.text.strip():
        raise LoadError(path, "no text could be extracted (empty file or image-only content)")
    doc_id = path.relative_to(root).as_posix()
    stat = path.stat()
    metadata: dict[str, Any] = {
        "source": doc_id,
        "title": path.stem,
        "doc_type": path.suffix.lower().lstrip("."),
        "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds"),
    }
    metadata.update(loaded.metadata)
    metadata.update(_sidecar_metadata(path))
    metadata.update(_scalar_metadata(extra_metadata or {}))
    return Document(doc_id=doc_id, text=loaded.text, metadata=metadata)


def discover(root: Path) -> Iterator[Path]:
    """Files under ``root`` a loader can read, in a stable order; sidecars are metadata, not documents."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(SIDECAR_SUFFIX) and not path.name.startswith("."):
            yield path
