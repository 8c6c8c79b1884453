"""Opening ZIP containers that strangers send (DOCX, XLSX and ODT evidence, XLSX imports) without letting
them inflate us: the zip-bomb guard, shared by the evidence sniffer and the XLSX import reader.

- Before a byte is inflated, the end record and the central directory are checked: a bounded directory
  and number of entries, no duplicate names, only the methods OOXML and ODF use (stored, deflate), no
  encryption, no entry declaring more than ``max_entry_bytes`` or — above :data:`RATIO_GRACE` — more than
  ``max_ratio`` times its compressed size, at most ``max_total_bytes`` for all entries together, and
  compressed sizes that fit in the file (overlapping entries are how a 42 KB zip declares petabytes).
- Entries are then read :data:`CHUNK` bytes at a time through a budget: an entry is stopped as soon as it
  inflates past the size its directory declares, or the archive past its total, whatever the headers say.
- XML parts are fed to expat chunk by chunk; a DTD (``<!DOCTYPE``) is refused before anything in it takes
  effect, so no entity can be declared, expanded or fetched.

Limits are 413 (:class:`ArchiveTooLarge`); an archive that is not one we read, or a DTD, is 415
(:class:`UnreadableArchive`); an entry that fails to inflate or to parse is :class:`DamagedEntry` (a 415
too, unless the caller reports it otherwise).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any
from xml.parsers import expat

from app.core.errors import PayloadTooLarge, UnsupportedMediaType

CHUNK = 64 * 1024
# Below this, an entry may compress as well as it likes: a small part cannot hurt whatever its ratio.
RATIO_GRACE = 1024 * 1024
# The central directory is read whole by zipfile (one object per entry): bound it before it is read.
DIRECTORY_BYTES_PER_ENTRY = 256
MAX_TOKEN_BYTES = 1024 * 1024  # one tag with its attributes, one comment: a real one is under 1 KB
MAX_DEPTH = 256  # nesting of XML elements; OOXML goes a few dozen deep at most
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_LENGTHS = struct.Struct("<2H")  # its name and extra field lengths, at offset 26
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_entry_bytes: int  # inflated, per entry
    max_total_bytes: int  # inflated, all entries together (declared, and actually read)
    max_ratio: int = 100  # inflated / compressed, per entry above RATIO_GRACE (Apache POI's default)


class ArchiveTooLarge(PayloadTooLarge):
    """A limit of :class:`ZipLimits` was hit; ``details`` names it."""


class UnreadableArchive(UnsupportedMediaType):
    """Not a ZIP archive we read (damaged, encrypted, another compression method, a DTD inside)."""


class DamagedEntry(UnreadableArchive):
    """One entry fails to inflate (bad data, checksum) or its XML is not well-formed."""


def size_text(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class SafeZip:
    """A ZIP archive whose directory passed :class:`ZipLimits`; read its entries with :meth:`chunks`,
    :meth:`head` or :func:`parse_xml`. ``label`` starts the error messages ("The workbook")."""

    def __init__(self, file: str | os.PathLike[str] | IO[bytes], limits: ZipLimits, label: str) -> None:
        self.limits, self.label = limits, label
        self.inflated = 0  # bytes actually read out of the archive so far
        self._zip: zipfile.ZipFile | None = None
        self._owned: IO[bytes] | None = None
        handle: IO[bytes]
        if isinstance(file, str | os.PathLike):
            handle = self._owned = open(file, "rb")  # noqa: SIM115 - closed by close()
        else:
            handle = file
        self._handle = handle
        try:
            size = handle.seek(0, io.SEEK_END)
            self._check_end_record(handle, size)
            handle.seek(0)
            try:
                self._zip = zipfile.ZipFile(handle)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
                raise UnreadableArchive(f"{label} is not a readable ZIP archive.") from exc
            self.entries = self._zip.infolist()
            self._by_name = {info.filename: info for info in self.entries}
            self._check_directory(size)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()  # leaves a file object it was given open
        if self._owned is not None:
            self._owned.close()

    # ------------------------------------------------------------------------------------------ checks

    def _too_large(self, message: str, limit: str, maximum: int, entry: str | None = None) -> ArchiveTooLarge:
        details: dict[str, Any] = {"limit": limit, "max": maximum}
        if entry is not None:
            details["entry"] = entry
        return ArchiveTooLarge(f"{self.label} {message}", details=details)

    def _check_end_record(self, handle: IO[bytes], size: int) -> None:
        """Bound the central directory from the end record, before zipfile reads it whole."""
        tail_start = max(0, size - (_END.size + 0xFFFF))
        handle.seek(tail_start)
        tail = handle.read()
        # Most archives have no comment: the record is the last 22 bytes (else search, as zipfile does).
        at = len(tail) - _END.size if tail[-_END.size :][:4] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _END.size:
            raise UnreadableArchive(f"{self.label} is not a readable ZIP archive.")
        _, _, _, _, entries, directory, _, _ = _END.unpack_from(tail, at)
        locator_at = at - _END64_LOCATOR.size
        if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
            _, _, end64_offset, _ = _END64_LOCATOR.unpack_from(tail, locator_at)
            handle.seek(end64_offset)
            record = handle.read(_END64.size)
            if len(record) < _END64.size or record[:4] != b"PK\x06\x06":
                raise UnreadableArchive(f"{self.label} is not a readable ZIP archive.")
            fields = _END64.unpack(record)
            entries, directory = fields[7], fields[8]  # entries in total, directory size
        limit = self.limits.max_entries
        if entries > limit or directory > limit * DIRECTORY_BYTES_PER_ENTRY:
            raise self._too_large(f"holds more than {limit:,} entries.", "entries", limit)

    def _check_directory(self, archive_size: int) -> None:
        limits = self.limits
        if len(self.entries) > limits.max_entries:
            raise self._too_large(
                f"holds more than {limits.max_entries:,} entries.", "entries", limits.max_entries
            )
        if len(self._by_name) != len(self.entries):
            raise UnreadableArchive(f"{self.label} names the same entry twice.")
        total = packed = 0
        offsets = set()
        for info in self.entries:
            name = info.filename
            if info.flag_bits & 0x1:
                raise UnreadableArchive(f"{self.label} is encrypted (entry {name!r}).")
            if info.compress_type not in _METHODS:
                raise UnreadableArchive(
                    f"{self.label} uses compression method {info.compress_type} (entry {name!r}); "
                    "only stored and deflated entries are read."
                )
            # The ratio first: it is what gives a bomb away, whatever its size.
            if info.file_size > RATIO_GRACE and info.file_size > limits.max_ratio * info.compress_size:
                ratio = info.file_size // max(info.compress_size, 1)
                raise self._too_large(
                    f"has an entry ({name!r}) that inflates {ratio:,} times over "
                    f"({size_text(info.compress_size)} to {size_text(info.file_size)}); "
                    f"at most {limits.max_ratio} times is accepted.",
                    "ratio",
                    limits.max_ratio,
                    name,
                )
            if info.file_size > limits.max_entry_bytes:
                raise self._too_large(
                    f"has an entry ({name!r}) that inflates to {info.file_size:,} bytes "
                    f"({size_text(info.file_size)}); at most {limits.max_entry_bytes:,} are read.",
                    "entry_bytes",
                    limits.max_entry_bytes,
                    name,
                )
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise UnreadableArchive(f"{self.label}'s entry {name!r} declares two sizes.")
            total += info.file_size
            packed += info.compress_size
            offsets.add(info.header_offset)
        if total > limits.max_total_bytes:
            raise self._too_large(
                f"inflates to {size_text(total)}; at most {size_text(limits.max_total_bytes)} is read.",
                "total_bytes",
                limits.max_total_bytes,
            )
        if packed > archive_size or len(offsets) != len(self.entries):
            raise UnreadableArchive(f"{self.label}'s entries overlap: it is not a plain ZIP archive.")

    # ----------------------------------------------------------------------------------------- reading

    def info(self, name: str) -> zipfile.ZipInfo | None:
        return self._by_name.get(name)

    @property
    def first(self) -> zipfile.ZipInfo | None:
        """The entry stored first in the file (where ODF wants its ``mimetype``)."""
        return min(self.entries, key=lambda i: i.header_offset, default=None)

    def chunks(self, name: str) -> Generator[bytes]:
        """The entry's bytes, at most :data:`CHUNK` at a time. Inflated here, from the raw data (not by
        zipfile): more than the directory declares is :class:`ArchiveTooLarge` at the first chunk past
        it, as is the archive's total budget; a short, unfinished or mis-summed entry is
        :class:`DamagedEntry` once it has been read to the end."""
        info = self._by_name.get(name)
        if info is None:
            raise DamagedEntry(f"{self.label} has no entry {name!r}.")
        position, left = self._data_start(info), info.compress_size
        inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
        seen = crc = 0
        pending = b""  # compressed input zlib has not taken yet
        try:
            while left or pending:
                if not pending:
                    self._handle.seek(position)
                    pending = self._handle.read(min(CHUNK, left))
                    if not pending:
                        break
                    position, left = position + len(pending), left - len(pending)
                if inflater is None:
                    data, pending = pending, b""
                else:
                    data = inflater.decompress(pending, CHUNK)
                    pending = inflater.unconsumed_tail
                seen += len(data)
                self.inflated += len(data)
                if seen > info.file_size:
                    raise self._too_large(
                        f"has an entry ({name!r}) that inflates past the {size_text(info.file_size)} "
                        "it declares.",
                        "entry_bytes",
                        info.file_size,
                        name,
                    )
                if self.inflated > self.limits.max_total_bytes:
                    raise self._too_large(
                        f"inflates past {size_text(self.limits.max_total_bytes)}.",
                        "total_bytes",
                        self.limits.max_total_bytes,
                    )
                crc = zlib.crc32(data, crc)
                if data:
                    yield data
                if inflater is not None and inflater.eof:
                    break
        except (zlib.error, OSError) as exc:
            raise DamagedEntry(f"{self.label}'s entry {name!r} is damaged.") from exc
        if (inflater is not None and not inflater.eof) or seen != info.file_size or crc != info.CRC:
            raise DamagedEntry(f"{self.label}'s entry {name!r} is damaged (cut short or mis-summed).")

    def _data_start(self, info: zipfile.ZipInfo) -> int:
        """Where the entry's data starts: after its local header, whose name must be the directory's."""
        self._handle.seek(info.header_offset)
        header = self._handle.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise DamagedEntry(f"{self.label}'s entry {info.filename!r} is damaged.")
        name_length, extra_length = _LENGTHS.unpack_from(header, 26)
        raw_name = self._handle.read(name_length)
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if raw_name.decode(encoding, "replace") != info.orig_filename:
            raise UnreadableArchive(
                f"{self.label} names an entry {info.filename!r} in its directory and otherwise in the entry."
            )
        return int(info.header_offset) + _LOCAL.size + int(name_length) + int(extra_length)

    def head(self, name: str, size: int) -> bytes:
        """At most the first ``size`` bytes of the entry (never more is inflated, give or take a chunk)."""
        out = b""
        parts = self.chunks(name)
        try:
            for data in parts:
                out += data[: size - len(out)]
                if len(out) >= size:
                    break
        finally:
            parts.close()
        return out


def local_name(name: str) -> str:
    """``"{uri} local"`` (expat with a space as namespace separator) → ``"local"``."""
    return name.rpartition(" ")[2]


def parse_xml(
    archive: SafeZip,
    name: str,
    start: Callable[[str, dict[str, str]], None] | None = None,
    end: Callable[[str], None] | None = None,
    text: Callable[[str], None] | None = None,
) -> Generator[int]:
    """Feed the entry to a namespace-aware expat parser calling the handlers (element names as
    :func:`local_name` gives them); yields the bytes fed after each chunk, so the caller can hand out
    what its handlers collected and watch its clock.

    Besides the archive's limits: a DTD is :class:`UnreadableArchive`; a single piece of markup (a tag with
    its attributes, a comment) longer than :data:`MAX_TOKEN_BYTES`, or elements nested deeper than
    :data:`MAX_DEPTH`, is :class:`ArchiveTooLarge` (expat would buffer the one, stack the other);
    malformed XML is :class:`DamagedEntry`."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    names: dict[str, str] = {}
    depth = 0

    def refuse_dtd(*_: object) -> None:
        raise UnreadableArchive(
            f"{archive.label}'s part {name!r} declares a DTD (<!DOCTYPE …>); files with a DTD are not read.",
            details={"entry": name, "limit": "dtd"},
        )

    def on_start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise archive._too_large(
                f"nests XML elements more than {MAX_DEPTH} deep (part {name!r}).",
                "xml_depth",
                MAX_DEPTH,
                name,
            )
        if start is not None:
            local = names.get(tag)
            if local is None:
                local = local_name(tag)
                if len(names) < 1024:  # a hostile file may use endless distinct names
                    names[tag] = local
            start(local, attrs)

    def on_end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        if end is not None:
            end(names.get(tag) or local_name(tag))

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd  # cannot happen without a DOCTYPE; kept as a second lock
    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    if text is not None:
        parser.CharacterDataHandler = text
    fed = 0
    try:
        for data in archive.chunks(name):
            parser.Parse(data, False)
            fed += len(data)
            # Outside a handler, CurrentByteIndex is just past the last complete piece of markup.
            if fed - parser.CurrentByteIndex > MAX_TOKEN_BYTES:
                raise archive._too_large(
                    f"has a single XML tag or comment longer than {size_text(MAX_TOKEN_BYTES)} "
                    f"(part {name!r}).",
                    "xml_token_bytes",
                    MAX_TOKEN_BYTES,
                    name,
                )
            yield len(data)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise DamagedEntry(
            f"{archive.label}'s part {name!r} is not well-formed XML "
            f"({expat.ErrorString(exc.code)}, line {exc.lineno})."
        ) from exc
