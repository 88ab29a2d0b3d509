"""The features of a GeoJSON file one at a time: one pass, bounded memory, any size.

A million-point FeatureCollection is a quarter of a gigabyte. Parsed whole it becomes
gigabytes of Python objects; read through GDAL a slice at a time (``skip_features``) it
took 28 s. :class:`FeatureStream` walks the top-level object itself and hands every member
value and every feature to the standard library's JSON decoder, so memory holds one
buffer and one feature (2.1 s for the same file). The other top-level members (``type``,
``crs``) are kept wherever they stand, before or after ``features``: ijson streams too,
but one path per pass, so a ``crs`` written after the features would need a second pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

from gridgov.layers.io.errors import UnreadableFileError

READ_CHARS = 1 << 20
# A single member or feature larger than this is refused rather than buffered: a syntax
# error would otherwise make the reader take in the rest of the file looking for its end.
MAX_VALUE_CHARS = 64 << 20
_BLANK = re.compile(r"[ \t\n\r]*")


class FeatureStream:
    """Iterate :meth:`features`; afterwards (or as soon as they are read) ``members`` holds
    the top-level members other than ``features``."""

    def __init__(
        self, handle: TextIO, read_chars: int = READ_CHARS, max_value_chars: int = MAX_VALUE_CHARS
    ) -> None:
        self._handle = handle
        self._read_chars = read_chars
        self._max_value_chars = max_value_chars
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self._decoder = json.JSONDecoder()
        self.members: dict[str, Any] = {}
        self.features_read = 0
        self.largest_buffer = 0
        self._in_features = False

    def features(self) -> Iterator[Any]:
        """Each element of ``features`` (or the file itself when it is a single Feature)."""
        self._take("{", "文件应以 { 开始（GeoJSON 对象）", "the file must hold a GeoJSON object")
        has_features = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise self._error("成员名应为字符串", "a member name must be a string")
                self._take(":", "缺少冒号", "':' expected")
                if key == "features":
                    if has_features:
                        raise self._error("features 出现两次", "two 'features' members")
                    has_features = True
                    yield from self._array()
                else:
                    self.members[key] = self._value()
                if not self._next_or_end("}"):
                    break
        if self._peek() != "":
            raise self._error("对象结束后还有内容", "content after the end of the object")
        if not has_features:
            if self.members.get("type") != "Feature":
                raise self._error(
                    "不是 GeoJSON 要素集合 (FeatureCollection) 或要素 (Feature)",
                    "neither a GeoJSON FeatureCollection nor a Feature",
                )
            self.features_read = 1
            yield self.members

    def _array(self) -> Iterator[Any]:
        self._take("[", "features 应为数组", "'features' must be an array")
        if self._peek() == "]":
            self._pos += 1
            return
        self._in_features = True
        while True:
            feature = self._value()
            self.features_read += 1
            yield feature
            if not self._next_or_end("]"):
                self._in_features = False
                return

    def _next_or_end(self, closing: str) -> bool:
        """After a value: True at a comma (another follows), False at ``closing``."""
        found = self._peek()
        self._pos += 1
        if found == ",":
            return True
        if found == closing:
            return False
        raise self._error(f"缺少逗号或 {closing}", f"',' or '{closing}' expected")

    def _more(self, at_least: int = 0) -> bool:
        """Append the next block of text to what is left of the buffer; False at the end."""
        if self._eof:
            return False
        block = self._handle.read(max(self._read_chars, at_least))
        if not block:
            self._eof = True
            return False
        self._buffer = self._buffer[self._pos :] + block
        self._pos = 0
        self.largest_buffer = max(self.largest_buffer, len(self._buffer))
        return True

    def _peek(self) -> str:
        """The next character that is not blank ('' at the end of the file)."""
        while True:
            match = _BLANK.match(self._buffer, self._pos)
            assert match is not None  # the pattern matches the empty string
            self._pos = match.end()
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._more():
                return ""

    def _take(self, expected: str, reason_zh: str, reason_en: str) -> None:
        if self._peek() != expected:
            raise self._error(reason_zh, reason_en)
        self._pos += 1

    def _value(self) -> Any:
        """The JSON value at the cursor, reading on while it runs past the buffer's end."""
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                pending = len(self._buffer) - self._pos
                if pending < self._max_value_chars and self._more(pending):
                    continue
                if self._eof and exc.pos >= len(self._buffer.rstrip()):
                    reason = ("文件在此处结束，内容不完整", "the file ends here, unfinished")
                else:
                    reason = (f"JSON 格式错误：{exc.msg}", f"invalid JSON: {exc.msg}")
                raise self._error(*reason) from None
            if end == len(self._buffer) and self._more():
                continue  # a number that ends the block may go on in the next one
            self._pos = end
            return value

    def _error(self, reason_zh: str, reason_en: str) -> UnreadableFileError:
        if self._in_features:
            where_zh = f"第 {self.features_read + 1} 个要素处"
            where_en = f"at feature {self.features_read + 1}"
        else:
            where_zh = f"要素数组之外（已读 {self.features_read} 个要素）"
            where_en = f"outside the features array ({self.features_read} features read)"
        return UnreadableFileError(
            f"GeoJSON 文件{where_zh}无法读取：{reason_zh}",
            f"the GeoJSON file cannot be read {where_en}: {reason_en}",
        )


__all__ = ["MAX_VALUE_CHARS", "READ_CHARS", "FeatureStream"]
