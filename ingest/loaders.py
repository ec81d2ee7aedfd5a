"""Turn files into ``Document``s: one loader per format, chosen by suffix, plus metadata from front matter or a
sidecar ``<file>.meta.json``.

A file that cannot be read raises ``LoadError`` with the reason; the ingestion job reports it and goes on with
the rest of the batch, so one bad file never stops an ingest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ingest.document import Document

SIDECAR_SUFFIX = ".meta.json"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


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
    import lxml.html

    raw = path.read_bytes()
    if not raw.strip():
        return Loaded("", {})
    try:
        tree = lxml.html.document_fromstring(raw)
    except Exception as exc:  # lxml raises several parser error types
        raise LoadError(path, f"malformed HTML: {exc}") from None
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
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise LoadError(path, "encrypted PDF; decrypt it before ingesting")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise LoadError(path, f"malformed PDF: {exc}") from None
    metadata: dict[str, Any] = {"pages": len(pages)}
    if title:
        metadata["title"] = str(title)
    return Loaded("\n\n".join(p.strip() for p in pages if p.strip()), metadata)


def load_json(path: Path) -> Loaded:
    """JSON stays JSON (pretty-printed): it is structured text that later stages must not rewrite."""
    text = _decode(path, path.read_bytes())
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    metadata: dict[str, Any] = {"structured": "json"}
    if isinstance(data, dict) and isinstance(data.get("title"), str):
        metadata["title"] = data["title"]
    return Loaded(json.dumps(data, indent=2, ensure_ascii=False), metadata)


LOADERS: dict[str, Callable[[Path], Loaded]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".json": load_json,
}


def _sidecar_metadata(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
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
