"""Evidence files on disk: streamed in with a size cap, typed by their content (never by the client's
name or header), stored under generated names, and cleaned up when the change that wrote them is lost.

- DOCX, XLSX and ODT are recognised by their structure, through :mod:`app.core.zipsafe` (the directory is
  checked before anything inflates, and no part is read more than a few bytes deep): DOCX has
  ``[Content_Types].xml`` and ``word/document.xml``, XLSX ``[Content_Types].xml`` and ``xl/workbook.xml``
  (neither declared as another type, e.g. macro-enabled), ODT its ``mimetype`` entry first in the file,
  holding exactly the ODF text type, and a ``content.xml``. A document that would inflate past
  :data:`EVIDENCE_ZIP` is 413.
- The name shown and used for the download always carries the extension of the detected type: an upload
  named ``x.pdf`` that holds a PNG is kept as ``x.png`` (renamed rather than refused: phones and scanners
  mislabel files, and the content decides anyway).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi import UploadFile

from app.core.errors import PayloadTooLarge, UnsupportedMediaType
from app.core.zipsafe import SafeZip, UnreadableArchive, ZipLimits, parse_xml

CHUNK = 1024 * 1024

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
ALLOWED_TYPES = (PDF, JPEG, PNG, WEBP, DOCX, XLSX, ODT)

# Evidence is read only a few bytes deep, but assessors open it: a document that inflates past these is
# refused at the door (10 MB of DOCX is rarely more than 50 MB of parts; images inside are stored as is).
EVIDENCE_ZIP = ZipLimits(max_entries=5_000, max_entry_bytes=256 * 1024**2, max_total_bytes=256 * 1024**2)
OOXML_MAIN = {  # the main part each accepted OOXML type must have, and the content type it declares
    DOCX: (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    XLSX: ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
}
CONTENT_TYPES = "[Content_Types].xml"
MAX_CONTENT_TYPES_BYTES = 256 * 1024  # a real one is a few KB
MAX_MIMETYPE_BYTES = 256  # ODF's is the media type alone (39 bytes for a text document)
EXTENSIONS = {
    PDF: ".pdf",
    JPEG: ".jpg",
    PNG: ".png",
    WEBP: ".webp",
    DOCX: ".docx",
    XLSX: ".xlsx",
    ODT: ".odt",
}
ALSO_ACCEPTED = {JPEG: (".jpeg", ".jpe")}


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str
    content_type: str
    filename: str  # the client's name, made safe, with the extension of ``content_type``


def sniff(path: Path, head: bytes) -> str | None:
    """The file's type from its bytes, or None when it is not one we accept."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    return None


def _sniff_zip(path: Path) -> str | None:
    """DOCX, XLSX or ODT by their structure, read a few bytes deep; a zip bomb is 413 (ArchiveTooLarge)."""
    try:
        with SafeZip(path, EVIDENCE_ZIP, "The file") as archive:
            if archive.info("mimetype") is not None:
                return _odt(archive)
            if archive.info(CONTENT_TYPES) is not None:
                return _ooxml(archive)
    except UnreadableArchive:
        return None
    return None


def _odt(archive: SafeZip) -> str | None:
    """ODF: ``mimetype`` first in the file, holding exactly the type, and a ``content.xml``."""
    first = archive.first
    if first is None or first.filename != "mimetype" or archive.info("content.xml") is None:
        return None
    if first.file_size > MAX_MIMETYPE_BYTES:
        return None
    # Read whole (it is tiny): its size and checksum are checked too, so it cannot hide a bomb.
    if b"".join(archive.chunks("mimetype")).strip() != ODT.encode():
        return None
    return ODT if _looks_like_xml(archive, "content.xml") else None


def _ooxml(archive: SafeZip) -> str | None:
    """OOXML: the main part is there, starts like XML, and is not declared as something else (a
    macro-enabled ``.docm``/``.xlsm`` or a template declares another content type)."""
    declared = _content_types(archive)
    if declared is None:
        return None
    for kind, (part, main_type) in OOXML_MAIN.items():
        if archive.info(part) is None:
            continue
        overrides, defaults = declared
        content_type = overrides.get("/" + part.lower(), defaults.get("xml"))
        if content_type not in (None, main_type):
            return None
        return kind if _looks_like_xml(archive, part) else None
    return None


def _content_types(archive: SafeZip) -> tuple[dict[str, str], dict[str, str]] | None:
    """``[Content_Types].xml``: its Override (by part name, lower case) and Default (by extension)
    content types; None when it is not a ``Types`` document."""
    info = archive.info(CONTENT_TYPES)
    if info is None or info.file_size > MAX_CONTENT_TYPES_BYTES:
        return None
    overrides: dict[str, str] = {}
    defaults: dict[str, str] = {}
    roots: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if not roots:
            roots.append(tag)
        elif tag == "Override" and len(overrides) < 10_000:
            overrides[attrs.get("PartName", "").lower()] = attrs.get("ContentType", "")
        elif tag == "Default" and len(defaults) < 10_000:
            defaults[attrs.get("Extension", "").lower()] = attrs.get("ContentType", "")

    for _ in parse_xml(archive, CONTENT_TYPES, start):
        pass
    return (overrides, defaults) if roots == ["Types"] else None


def _looks_like_xml(archive: SafeZip, part: str) -> bool:
    head = archive.head(part, 64).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<")


def named_for_type(name: str, content_type: str) -> str:
    """The display name with the extension of the detected type: ``x.pdf`` holding a PNG is ``x.png``,
    ``scan`` holding a PDF is ``scan.pdf``; a name that already agrees is kept."""
    extension = EXTENSIONS.get(content_type)
    if extension is None:
        return name
    stem, dot, suffix = name.rpartition(".")
    suffix = "." + suffix.lower()
    if dot and suffix in (extension, *ALSO_ACCEPTED.get(content_type, ())):
        return name
    # Replace what looks like an extension (".pdf", ".jpg"); keep anything else (".2025") as part of the name.
    if dot and stem and 2 <= len(suffix) <= 6 and suffix[1:].isalnum() and not suffix[1:].isdigit():
        return stem + extension
    return name + extension


def human_size(size: int) -> str:
    """A byte count as people write it (10 MB, 1.5 MB, 512 KB): never rounded down to "0 MB"."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def safe_filename(name: str | None) -> str:
    """The client's file name for display only: no path, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().strip(".") or "evidence"
    return base[-200:]


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / key

    async def save(self, upload: UploadFile, max_bytes: int) -> StoredFile:
        """Stream the upload to its place, hashing and typing it on the way: one trip to a worker thread
        for the whole file (reads, writes, the type check and the rename), not one per call."""
        return await anyio.to_thread.run_sync(self._save, upload.file, upload.filename, max_bytes)

    def _save(self, source: BinaryIO, name: str | None, max_bytes: int) -> StoredFile:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex
        tmp = tmp_dir / f"{key}.part"
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with tmp.open("wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"Evidence files are limited to {human_size(max_bytes)}.",
                            details={"max_bytes": max_bytes},
                        )
                    if len(head) < 64:
                        head += chunk[: 64 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise UnsupportedMediaType("The file is empty.")
            content_type = sniff(tmp, head)
            if content_type is None:
                raise UnsupportedMediaType("Evidence must be a PDF, JPEG, PNG, WebP, DOCX, XLSX or ODT file.")
            final = self.path_for(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        filename = named_for_type(safe_filename(name), content_type)
        return StoredFile(
            key=key, size=size, sha256=digest.hexdigest(), content_type=content_type, filename=filename
        )

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path_for(key))
