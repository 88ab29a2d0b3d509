"""Text encodings of imported files: UTF-8, GB18030 (a superset of GBK / GB2312), or
UTF-16 when a byte-order mark says so (:func:`file_codec`).

Chinese government data often arrives as GBK shapefiles without a ``.cpg`` or GBK CSVs
from Excel. Detection is deliberately strict: UTF-8 if every byte decodes as UTF-8,
else GB18030 if every byte decodes as GB18030 *and* the text looks like Chinese; else
the file is refused, naming the first row that does not decode, so mojibake is never
stored.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

from gridgov.layers.io.errors import EncodingProblemError, ImportUsageError

UTF8 = "utf-8"
UTF16 = "utf-16"  # with a byte-order mark, which says the byte order
GB18030 = "gb18030"
# GBK and GB2312 decode identically as GB18030 (a strict superset), which also covers
# the rarer characters of some place names.
_SUPERSETS = {"gbk": GB18030, "gb2312": GB18030, "cp936": GB18030, "gb18030": GB18030}
_CODE_PAGES = {"936": "cp936", "65001": "utf-8", "54936": "gb18030", "1252": "cp1252"}
# Share of non-ASCII characters that must be common Chinese (GB2312) or CJK punctuation
# for GB18030 to be believed: Latin-1 text misread as GB18030 yields rare characters.
CHINESE_SHARE = 0.8


def codec_name(label: str) -> str:
    """A Python codec for an encoding label from ``--encoding`` or a ``.cpg`` file."""
    key = label.strip().lower().replace("_", "-")
    key = _CODE_PAGES.get(key.removeprefix("cp"), key) if key.removeprefix("cp").isdigit() else key
    try:
        name = codecs.lookup(key).name
    except LookupError:
        raise ImportUsageError(
            "未知的文字编码；可用 utf-8、gbk、gb18030",
            "unknown text encoding; use utf-8, gbk or gb18030",
        ) from None
    return _SUPERSETS.get(name, name)


def looks_chinese(text: str) -> bool:
    """True when the non-ASCII characters are mostly common Chinese or CJK punctuation."""
    wide = [ch for ch in text if ord(ch) > 0x7F]
    if not wide:
        return True
    common = 0
    for ch in wide:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            continue
    return common >= CHINESE_SHARE * len(wide)


def sniff(data: bytes) -> str | None:
    """UTF-8, GB18030 (only if it decodes cleanly and reads as Chinese), or None."""
    try:
        data.decode(UTF8)
    except UnicodeDecodeError:
        pass
    else:
        return UTF8
    try:
        text = data.decode(GB18030)
    except UnicodeDecodeError:
        return None
    return GB18030 if looks_chinese(text) else None


@dataclass(frozen=True)
class Cell:
    """Raw bytes of one text value and where it came from (row None: a field name)."""

    row: int | None
    field: str | None
    data: bytes


def _refuse(cell: Cell, codec: str | None) -> EncodingProblemError:
    where_zh = f"第 {cell.row} 行" if cell.row is not None else "字段名"
    where_en = f"row {cell.row}" if cell.row is not None else "field names"
    if cell.field:
        where_zh += f"字段 {cell.field}"
        where_en += f", field {cell.field}"
    if codec is None:
        return EncodingProblemError(
            f"{where_zh}的文字既不是 UTF-8，也不像 GB18030/GBK 中文；请用 --encoding 指定编码",
            f"{where_en}: text is neither UTF-8 nor GB18030/GBK Chinese; pass --encoding",
            public={"row": cell.row or 0, "field": cell.field or ""},
        )
    return EncodingProblemError(
        f"{where_zh}的文字无法按 {codec} 解码；请检查 --encoding 或 .cpg 文件",
        f"{where_en}: text does not decode as {codec}; check --encoding or the .cpg file",
        public={"row": cell.row or 0, "field": cell.field or ""},
    )


def choose(cells: Sequence[Cell], codec: str | None) -> str:
    """The codec for ``cells``: ``codec`` if given and every cell decodes, else detected."""
    if codec is not None:
        for cell in cells:
            try:
                cell.data.decode(codec)
            except UnicodeDecodeError:
                raise _refuse(cell, codec) from None
        return codec
    detected = sniff(b"\n".join(cell.data for cell in cells))
    if detected is not None:
        return detected
    for cell in cells:
        if sniff(cell.data) is None:
            raise _refuse(cell, None)
    # Each value alone is fine but together they are neither: mixed encodings.
    first = next(c for c in cells if sniff(c.data) != UTF8)
    raise _refuse(first, None)


# A UTF-16 byte-order mark and the codecs it may be named by (``codec_name``'s names).
_UTF16_BOMS = {
    codecs.BOM_UTF16_LE: (UTF16, "utf-16-le"),
    codecs.BOM_UTF16_BE: (UTF16, "utf-16-be"),
}


def file_codec(head: bytes, given: str | None) -> str | None:
    """The codec of a text file that starts with ``head``: ``given`` (a :func:`codec_name`)
    or else sniffed (:func:`sniff`); but a UTF-16 byte-order mark says UTF-16 — Excel's
    "Unicode 文本" (Unicode text) export, the one that keeps Chinese intact, is UTF-16
    with a BOM and tabs. UTF-16 named without a BOM is refused: the byte order would be a
    guess. None: the encoding cannot be told."""
    for bom, names in _UTF16_BOMS.items():
        if head.startswith(bom) and given in (None, *names):
            return UTF16  # reads the mark and drops it
    if given == UTF16:
        raise ImportUsageError(
            "文件开头没有 UTF-16 字节顺序标记 (BOM)，无法判断字节顺序；"
            "请用 --encoding utf-16-le 或 utf-16-be 指定",
            "the file does not start with a UTF-16 byte-order mark: give --encoding "
            "utf-16-le or utf-16-be",
        )
    return given or sniff(head)


def decode_text(data: bytes, codec: str | None) -> tuple[str, str]:
    """Decode a whole text file (CSV); a UTF-8 or UTF-16 BOM is honoured (:func:`file_codec`).
    Returns (text, codec).

    The row named in an error is the file's line number minus one (the header is line 1).
    """
    if data.startswith(codecs.BOM_UTF8) and codec in (None, UTF8):
        data, codec = data[len(codecs.BOM_UTF8) :], UTF8
    chosen = file_codec(data, codec)
    try:
        return data.decode(chosen or UTF8), chosen or UTF8
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _refuse(Cell(max(line - 1, 0) or None, None, b""), chosen) from None


def complete_name(raw: bytes) -> bytes:
    """A DBF field name without the broken character its 10-byte limit may have cut in
    half (GDAL truncates bytes, not characters: 网格编码 in UTF-8 ends mid-character)."""
    for cut in range(4):
        head = raw[: len(raw) - cut]
        if sniff(head) is not None:
            return head
    return raw


def decode_name(raw: bytes, codec: str) -> str:
    """Decode a (possibly cut) field name, dropping a trailing half character."""
    for cut in range(4):
        try:
            return raw[: len(raw) - cut].decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode(codec)
