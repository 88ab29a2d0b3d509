"""Records of a CSV file with fewer fields than its header.

pandas pads such a record with empty values, so ``A1,120.3,31.5`` under a four-column
header reads exactly like ``A1,120.3,31.5,`` — and an unquoted line break inside a value
becomes two short records, the first written with its value cut. Neither may pass
silently. pandas already refuses records with *more* fields than the header.

Files without a quote character are checked by counting separators, a byte pass at about
a tenth of a second a million rows; only files with quotes (or a miscount to locate) are
parsed again with :mod:`csv`, which reads like pandas' default dialect.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridgov.layers.io.errors import UnreadableFileError

_BLOCK = 1 << 24
# Codecs in which separator, quote and line-break bytes never occur inside another
# character (GB18030's trailing bytes are 0x30-0x39 and 0x40-0xFE), so bytes can be counted.
_BYTE_SAFE = {"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "ascii", "iso8859-1"}


@dataclass(frozen=True)
class ShortRecord:
    line: int  # physical line where the record starts, the header being line 1
    fields: int
    header_fields: int
    unclosed_quote: bool  # the record runs to the end of the file inside quotes


def refuse_short_records(
    source: Path | io.StringIO, name: str, sep: str, codec: str, skip: int = 0
) -> None:
    """Raise :class:`UnreadableFileError` naming the first record shorter than the header
    (the first non-blank record after ``skip``, pandas' ``skiprows``)."""
    short = first_short_record(source, sep, codec, skip)
    if short is None:
        return
    if short.unclosed_quote:
        raise UnreadableFileError(
            f"{name} 第 {short.line} 行（含表头）的英文双引号没有闭合，此后的内容都成了一个值",
            f"{name} line {short.line} (counting the header) opens a double quote that is "
            "never closed, so the rest of the file became one value",
        )
    raise UnreadableFileError(
        f"{name} 第 {short.line} 行（含表头）只有 {short.fields} 个字段，表头有 "
        f"{short.header_fields} 个；值中的换行或逗号须用英文双引号括起，空值也要保留分隔符",
        f"{name} line {short.line} (counting the header) has {short.fields} fields, the "
        f"header {short.header_fields}; quote values that contain line breaks or commas, "
        "and keep the separators of empty values",
    )


def first_short_record(
    source: Path | io.StringIO, sep: str, codec: str, skip: int = 0
) -> ShortRecord | None:
    """The first non-blank record after the header with fewer fields than the header;
    the header is the first non-blank record after the first ``skip`` (title rows)."""
    if isinstance(source, io.StringIO):
        blocks: Iterator[bytes] = iter([source.getvalue().encode("utf-8")])
        countable = True
    else:
        blocks = _file_blocks(source)
        countable = codec.lower().replace("_", "-") in _BYTE_SAFE
    if countable and len(sep) == 1 and _all_full_by_count(blocks, sep.encode("ascii"), skip):
        return None
    return _parse_for_short(source, sep, codec, skip)


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            yield block


def _all_full_by_count(blocks: Iterator[bytes], sep: bytes, skip: int) -> bool:
    """True when no quote occurs and every non-blank line after the header has as many
    separators as the header. Since pandas refuses longer lines, equal totals suffice:
    no line can make up for a short one."""
    header_seps: int | None = None
    lines = seps = 0
    carry = b""
    for block in blocks:
        if b'"' in block:
            return False
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry, data = data[cut:], data[:cut]
        if header_seps is None:
            header_seps, data, skip = _take_header(data, sep, skip)
        counted = _counts(data, sep, header_seps)
        lines += counted[0]
        seps += counted[1]
    if not _blank(carry):
        if header_seps is None:
            return True  # a header alone
        lines += 1
        seps += carry.count(sep)
    return header_seps is None or seps == lines * header_seps


def _blank(line: bytes) -> bool:
    """pandas skips lines of nothing but spaces and tabs."""
    return not line.strip(b" \t\r")


def _take_header(data: bytes, sep: bytes, skip: int) -> tuple[int | None, bytes, int]:
    """The header's separators (None if ``data`` has no non-blank line after the ``skip``
    first lines yet), the rest, and the lines still to skip."""
    start = 0
    while (end := data.find(b"\n", start)) != -1:
        line = data[start:end]
        start = end + 1
        if skip:
            skip -= 1
        elif not _blank(line):
            return line.count(sep), data[start:], 0
    return None, b"", skip


def _counts(data: bytes, sep: bytes, header_seps: int | None) -> tuple[int, int]:
    """Non-blank lines and separators in ``data`` (complete lines); lines are looked at
    one by one only when blank lines may be there (the totals disagree)."""
    lines, seps = data.count(b"\n"), data.count(sep)
    if header_seps is not None and seps != lines * header_seps:
        lines = sum(1 for line in data.split(b"\n")[:-1] if not _blank(line))
    return lines, seps


def _parse_for_short(
    source: Path | io.StringIO, sep: str, codec: str, skip: int
) -> ShortRecord | None:
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # pandas has no such limit
    text = (
        io.StringIO(source.getvalue())
        if isinstance(source, io.StringIO)
        else source.open(encoding=codec, newline="")
    )
    with text:
        try:
            return _first_short(text, sep, skip)
        except UnicodeDecodeError:
            return None  # pandas names the place when it reads that far


def _first_short(text: io.TextIOBase, sep: str, skip: int) -> ShortRecord | None:
    reader = csv.reader(text, delimiter=sep)
    for _ in range(skip):
        next(reader, None)
    header = next((r for r in reader if not _blank_record(r)), None)
    if header is None:
        return None
    start = reader.line_num + 1
    for record in reader:
        if len(record) < len(header) and not _blank_record(record):
            unclosed = _runs_off_end(text, start, sep)
            return ShortRecord(start, len(record), len(header), unclosed)
        start = reader.line_num + 1
    return None


def _blank_record(record: list[str]) -> bool:
    return len(record) <= 1 and not "".join(record).strip(" \t")


def _runs_off_end(text: io.TextIOBase, start: int, sep: str) -> bool:
    """Whether the file ends inside quotes from line ``start`` on: the record just read
    was the last (non-strict :mod:`csv` ends it there quietly) and a strict reading of
    its text fails."""
    if text.read(1):
        return False
    text.seek(0)
    for _ in range(start - 1):
        text.readline()
    try:
        for _ in csv.reader(text, delimiter=sep, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False
