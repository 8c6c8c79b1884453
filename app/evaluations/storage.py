"""Evidence files on disk: streamed in with a size cap, typed by their content (never by the client's
name or header), stored under generated names, and cleaned up when the change that wrote them is lost."""

from __future__ import annotations

import contextlib
import hashlib
import os
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import UploadFile

from app.core.errors import PayloadTooLarge, UnsupportedMediaType

CHUNK = 1024 * 1024

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
ALLOWED_TYPES = (PDF, JPEG, PNG, WEBP, DOCX, XLSX, ODT)


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str
    content_type: str


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
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype")[:100].strip() == ODT.encode():
                return ODT
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return DOCX
            if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
                return XLSX
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None


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
        tmp_dir = self.root / "tmp"
        await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex
        tmp = tmp_dir / f"{key}.part"
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                while chunk := await upload.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"Evidence files are limited to {human_size(max_bytes)}.",
                            details={"max_bytes": max_bytes},
                        )
                    if len(head) < 64:
                        head += chunk[: 64 - len(head)]
                    digest.update(chunk)
                    await out.write(chunk)
            if size == 0:
                raise UnsupportedMediaType("The file is empty.")
            content_type = await anyio.to_thread.run_sync(sniff, tmp, head)
            if content_type is None:
                raise UnsupportedMediaType("Evidence must be a PDF, JPEG, PNG, WebP, DOCX, XLSX or ODT file.")
            final = self.path_for(key)
            await anyio.Path(final.parent).mkdir(parents=True, exist_ok=True)
            await anyio.Path(tmp).rename(final)
        except BaseException:
            await anyio.Path(tmp).unlink(missing_ok=True)
            raise
        return StoredFile(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path_for(key))
