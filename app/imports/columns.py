"""The columns of the import files and the words accepted in them: English names of API.md, plus the
Vietnamese headings and values that education offices' spreadsheets use.

Headings are compared in their *heading form*: Unicode NFC, lower case, ``_ - .`` read as spaces, runs of
spaces collapsed, a trailing ``*`` or ``:`` dropped — but diacritics kept. So "Họ và tên", "HỌ VÀ TÊN" and
"Họ và tên *" are the same heading, while "Ho va ten" is not: without its marks a Vietnamese heading is
ambiguous ("Nam sinh" could be "Năm sinh" or nothing at all), so it is reported, naming the heading it
probably meant ("did you mean "Họ và tên"?"), and nothing is imported. Every column of the header row must
be known: an unknown one is an error too (with a suggestion when one is close: difflib on the *folded*
forms, diacritics and ``đ`` removed), never silently dropped. Values (kinds, groups, genders) are still
compared folded: "Nu" is "Nữ".

| field | heading (English) | Vietnamese headings accepted |
|---|---|---|
| org units: ``code`` | code | Mã đơn vị, Mã, Mã ĐVHC, Mã đơn vị hành chính |
| org units: ``name`` | name | Tên đơn vị, Tên |
| org units: ``kind`` | kind | Loại, Loại đơn vị, Cấp |
| org units: ``parent_code`` | parent_code | Mã đơn vị cấp trên, Mã cấp trên, Mã đơn vị cha |
| people: ``full_name`` | full_name | Họ và tên, Họ tên |
| people: ``unit_code`` | unit_code | Mã đơn vị |
| people: ``group`` | group | Nhóm, Đối tượng, Nhóm đối tượng |
| people: ``birth_year`` | birth_year | Năm sinh |
| people: ``citizen_id`` | citizen_id | Số CCCD, CCCD, Số căn cước, Số định danh (cá nhân), Mã định danh |
| people: ``gender`` | gender | Giới tính |
| reorganisation: ``old_code`` | old_code | Mã cũ, Mã đơn vị cũ, Mã ĐVHC cũ |
| reorganisation: ``new_code`` | new_code | Mã mới, Mã đơn vị mới, Mã ĐVHC mới |
| reorganisation: ``new_name`` | new_name | Tên mới, Tên đơn vị mới |
| reorganisation: ``new_kind`` | new_kind | Loại mới, Cấp mới |
| reorganisation: ``new_parent_code`` | new_parent_code | Mã cấp trên mới, Mã đơn vị cấp trên mới |

Columns read and ignored in every file: a row number (``STT``, ``TT``, ``Số TT``, ``Số thứ tự``, ``No.``,
``#``) and notes (``Ghi chú``, ``note``, ``notes``). Any other column is an error.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field

from app.orgs.models import OrgKind
from app.people.models import Gender, Group

_SEPARATORS = re.compile(r"[\s_\-.]+")


SUGGEST_CUTOFF = 0.75  # how alike (difflib's ratio of the folded forms) a heading must be to be suggested
IGNORED = ("STT", "TT", "Số TT", "Số thứ tự", "No.", "#", "Ghi chú", "note", "notes")


def heading_form(text: str) -> str:
    """The comparison form of a heading: diacritics kept (see the module docstring)."""
    text = unicodedata.normalize("NFC", text.replace("\ufeff", ""))
    return _SEPARATORS.sub(" ", text.lower()).strip(" *:")


def fold(text: str) -> str:
    """The folded form of a vocabulary word, or of a heading to suggest (see the module docstring)."""
    text = unicodedata.normalize("NFD", text.replace("\ufeff", "").replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = _SEPARATORS.sub(" ", text.lower()).strip(" *:")
    return text


@dataclass(frozen=True)
class Column:
    field: str
    required: bool
    aliases: tuple[str, ...]

    def headings(self) -> tuple[str, ...]:
        """The headings accepted, as the documentation writes them."""
        return (self.field, *self.aliases)

    def names(self) -> set[str]:
        return {fold(h) for h in self.headings()}


@dataclass(frozen=True)
class Unknown:
    """A heading that is not one of the file's columns, and the known heading (with its field, None for
    an ignored column) it probably means."""

    index: int
    heading: str
    suggestion: str | None = None
    field: str | None = None


@dataclass
class Header:
    """What one row says when read as the header."""

    fields: dict[str, int] = field(default_factory=dict)  # field → index of its column
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)  # field, first and second index
    unknown: list[Unknown] = field(default_factory=list)
    missing: list[Column] = field(default_factory=list)  # required, neither present nor suggested

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.unknown or self.missing)

    @property
    def meant(self) -> bool:
        """The row is meant as the header (every required column is there, or suggested): its problems are
        the file's, even if a row further down would do."""
        return not self.missing


@dataclass(frozen=True)
class Spec:
    """The columns of one kind of import file."""

    kind: str
    columns: tuple[Column, ...]
    ignored: tuple[str, ...] = IGNORED

    def lookup(self) -> dict[str, str]:
        """Folded heading → field: how much a line looks like this file's header (choosing a delimiter)."""
        return {name: c.field for c in self.columns for name in c.names()}

    def exact(self) -> dict[str, str | None]:
        """Heading form → field (None for the columns read and ignored)."""
        found: dict[str, str | None] = {heading_form(h): None for h in self.ignored}
        found.update({heading_form(h): c.field for c in self.columns for h in c.headings()})
        return found

    def suggest(self, heading: str) -> tuple[str, str | None] | None:
        """The known heading that ``heading`` probably means, with its field: the same letters without
        their marks, or the closest within :data:`SUGGEST_CUTOFF`."""
        known: dict[str, tuple[str, str | None]] = {}
        for c in self.columns:
            for h in c.headings():
                known.setdefault(fold(h), (h, c.field))
        for h in self.ignored:
            known.setdefault(fold(h), (h, None))
        folded = fold(heading)
        close = difflib.get_close_matches(folded, list(known), n=1, cutoff=SUGGEST_CUTOFF)
        return known[folded] if folded in known else known[close[0]] if close else None

    def read_header(self, cells: list[str]) -> Header:
        exact = self.exact()
        header = Header()
        suggested: set[str] = set()
        for index, heading in enumerate(cells):
            form = heading_form(heading)
            if not form:
                continue  # a blank heading: the column is not read
            if form not in exact:
                found = self.suggest(heading)
                if found is None:
                    header.unknown.append(Unknown(index, heading))
                else:
                    header.unknown.append(Unknown(index, heading, *found))
                    suggested.add(found[1] or "")
                continue
            name = exact[form]
            if name is None:
                continue
            if name in header.fields:
                header.duplicates.append((name, header.fields[name], index))
            else:
                header.fields[name] = index
        header.missing = [
            c
            for c in self.columns
            if c.required and c.field not in header.fields and c.field not in suggested
        ]
        return header

    def field_names(self) -> str:
        return ", ".join(c.field for c in self.columns)


UNITS = Spec(
    "org_units",
    (
        Column("code", True, ("Mã đơn vị", "Mã", "Mã ĐVHC", "Mã đơn vị hành chính")),
        Column("name", True, ("Tên đơn vị", "Tên")),
        Column("kind", True, ("Loại", "Loại đơn vị", "Cấp")),
        Column("parent_code", False, ("parent code", "Mã đơn vị cấp trên", "Mã cấp trên", "Mã đơn vị cha")),
    ),
)

REORGANISATION = Spec(
    "reorganisation",
    (
        Column("old_code", False, ("Mã cũ", "Mã đơn vị cũ", "Mã ĐVHC cũ")),
        Column("new_code", False, ("Mã mới", "Mã đơn vị mới", "Mã ĐVHC mới")),
        Column("new_name", False, ("Tên mới", "Tên đơn vị mới")),
        Column("new_kind", False, ("Loại mới", "Cấp mới")),
        Column("new_parent_code", False, ("Mã cấp trên mới", "Mã đơn vị cấp trên mới")),
    ),
)

PEOPLE = Spec(
    "people",
    (
        Column("full_name", True, ("Họ và tên", "Họ tên")),
        Column("unit_code", True, ("Mã đơn vị",)),
        Column("group", True, ("Nhóm", "Đối tượng", "Nhóm đối tượng")),
        Column("birth_year", False, ("Năm sinh",)),
        Column(
            "citizen_id",
            False,
            (
                "Số CCCD",
                "CCCD",
                "Số căn cước",
                "Số định danh",
                "Số định danh cá nhân",
                "Mã định danh",
            ),
        ),
        Column("gender", False, ("Giới tính",)),
    ),
)


def _vocabulary(pairs: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold(word): value for value, words in pairs.items() for word in (value, *words)}


KINDS = _vocabulary(
    {
        OrgKind.NATION.value: ("Quốc gia",),
        OrgKind.PROVINCE.value: ("Tỉnh", "Thành phố", "Tỉnh/Thành phố"),
        OrgKind.DISTRICT.value: ("Huyện", "Quận", "Thị xã"),
        OrgKind.COMMUNE.value: ("Xã", "Phường", "Thị trấn", "Đặc khu"),
        OrgKind.SCHOOL.value: ("Trường", "Trường học"),
        OrgKind.AGENCY.value: ("Cơ quan",),
        OrgKind.ENTERPRISE.value: ("Doanh nghiệp",),
        OrgKind.VILLAGE.value: ("Thôn", "Bản", "Ấp", "Tổ dân phố", "Khu phố"),
        OrgKind.UNIT.value: ("Đơn vị", "Tổ", "Phòng"),
    }
)

GROUPS = _vocabulary(
    {
        Group.RESIDENT.value: ("Người dân",),
        Group.WORKER.value: ("Người lao động", "Công nhân"),
        Group.STAFF.value: (
            "Cán bộ",
            "CBCNV",
            "Cán bộ công nhân viên",
            "Công chức",
            "Viên chức",
            "Giáo viên",
        ),
        Group.STUDENT.value: ("Học sinh", "Sinh viên", "Người học", "Học viên"),
    }
)

GENDERS = _vocabulary(
    {
        Gender.FEMALE.value: ("Nữ", "F"),
        Gender.MALE.value: ("Nam", "M"),
        Gender.OTHER.value: ("Khác",),
    }
)


def choices(vocabulary: dict[str, str]) -> str:
    return ", ".join(sorted(set(vocabulary.values())))
