"""The columns of the import files and the words accepted in them: English names of API.md, plus the
Vietnamese headings and values that education offices' spreadsheets use.

Headings and values are compared *folded*: Unicode NFC, lower case, Vietnamese diacritics and ``đ``
removed, ``_ - .`` read as spaces, runs of spaces collapsed, a trailing ``*`` or ``:`` dropped. So
"Họ và tên", "HO VA TEN", "ho_va_ten" and "Họ và tên *" are the same heading.

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

Any other column (``STT``, notes) is ignored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from app.orgs.models import OrgKind
from app.people.models import Gender, Group

_SEPARATORS = re.compile(r"[\s_\-.]+")


def fold(text: str) -> str:
    """The comparison form of a heading or a vocabulary word (see the module docstring)."""
    text = unicodedata.normalize("NFD", text.replace("\ufeff", "").replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = _SEPARATORS.sub(" ", text.lower()).strip(" *:")
    return text


@dataclass(frozen=True)
class Column:
    field: str
    required: bool
    aliases: tuple[str, ...]

    def names(self) -> set[str]:
        return {fold(self.field), *(fold(a) for a in self.aliases)}


@dataclass(frozen=True)
class Spec:
    """The columns of one kind of import file."""

    kind: str
    columns: tuple[Column, ...]

    def lookup(self) -> dict[str, str]:
        """Folded heading → field."""
        return {name: c.field for c in self.columns for name in c.names()}


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
