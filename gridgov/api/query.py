"""Query-string helpers shared by the OGC, tile and aggregate routes.

OGC APIs answer a parameter they cannot honour with 400 (not FastAPI's 422), and name the
parameter, never the submitted value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from starlette.datastructures import QueryParams

from gridgov.errors import InvalidParameterError
from gridgov.layers.features import TimeFilter


def bad(parameter: str, zh: str, en: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"参数 {parameter}：{zh}", f"parameter {parameter}: {en}", public={"parameter": parameter}
    )


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


def shown_name(name: str) -> str:
    """A parameter name fit to repeat in an answer; anything else is not echoed back."""
    return name if _PLAIN_NAME.fullmatch(name) else "(?)"


def reject_unknown(params: QueryParams, allowed: Iterable[str]) -> None:
    """400 naming the first query parameter the route does not know (or a repeated one)."""
    known = set(allowed)
    for name in params:
        if name not in known:
            shown = shown_name(name)
            raise InvalidParameterError(
                f"未知的查询参数：{shown}",
                f"unknown query parameter: {shown}",
                public={"parameter": shown},
            )
        if len(params.getlist(name)) > 1:
            raise bad(name, "只能出现一次", "may appear only once")


def parse_int(value: str | None, parameter: str, default: int, low: int, high: int) -> int:
    """An integer in ``low..high``; outside it is a 400 (never silently capped)."""
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", value.strip()):
        raise bad(parameter, "须为非负整数", "must be a non-negative integer")
    number = int(value)
    if not low <= number <= high:
        raise bad(parameter, f"须在 {low}–{high} 之间", f"must lie in {low}..{high}")
    return number


def parse_bool(value: str | None, parameter: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad(parameter, "须为 true 或 false", "must be true or false")


def _instant(text: str, parameter: str, end: bool) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise bad(parameter, "不是 RFC 3339 时间", "is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise bad(parameter, "须带时区（如 Z）", "needs a time zone (e.g. Z)")
    return parsed


def parse_datetime(value: str | None, parameter: str = "datetime") -> TimeFilter | None:
    """An RFC 3339 instant, or an interval ``start/end`` with ``..`` for an open end.

    A bare date stands for the whole (UTC) day.
    """
    if value is None:
        return None
    text = value.strip()
    if "/" in text:
        first, _, second = text.partition("/")
        start, end = _instant(first, parameter, False), _instant(second, parameter, True)
        if start is None and end is None:
            raise bad(parameter, "区间两端不能都开放", "an interval needs at least one end")
        if start is not None and end is not None and start > end:
            raise bad(parameter, "开始晚于结束", "starts after it ends")
        return TimeFilter(start, end)
    if text == "..":
        raise bad(parameter, "不是 RFC 3339 时间", "is not an RFC 3339 date-time")
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return TimeFilter(_instant(text, parameter, False), _instant(text, parameter, True))
    moment = _instant(text, parameter, False)
    return TimeFilter(moment, moment)


__all__ = ["bad", "parse_bool", "parse_datetime", "parse_int", "reject_unknown", "shown_name"]
