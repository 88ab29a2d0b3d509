"""Conversion and checking of attribute values, column by column, against the spec.

A value arrives as whatever the reader produced (text from CSV, numbers and dates from
Excel or GeoPackage); it leaves as the Python value the column stores, or as a problem
naming the row, the column and why. Nothing here guesses: a value that is not clearly of
the column's type is refused.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any

from gridgov.layers.spec import AdminLevel, ColumnType, LayerSpec

# Naive timestamps in Chinese government data are Beijing time.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
_TRUE = {"true", "t", "1", "yes", "y", "是", "真", "对"}
_FALSE = {"false", "f", "0", "no", "n", "否", "假", "错"}
_TYPE_ZH = {
    ColumnType.TEXT: "文本",
    ColumnType.INTEGER: "整数",
    ColumnType.BIGINT: "整数",
    ColumnType.FLOAT: "数值",
    ColumnType.BOOLEAN: "是/否",
    ColumnType.DATE: "日期",
    ColumnType.TIMESTAMP: "时间",
}


@dataclass(frozen=True)
class Target:
    """A destination column as the importer sees it (attribute, admin code or period)."""

    name: str
    type: ColumnType
    title_zh: str
    required: bool = False
    has_default: bool = False
    pattern: str | None = None
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, title_zh, title_en)
    minimum: float | None = None
    maximum: float | None = None
    level: AdminLevel | None = None


# Characters PostgreSQL text cannot hold: NUL, and UTF-16 surrogates that a JSON
# ``\\ud800`` escape can produce alone (they have no UTF-8 form).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_ZH = "含有无法保存的字符（NUL 或单独的代理项 \\ud800–\\udfff）"
UNSTORABLE_EN = "contains a character that cannot be stored (NUL or a lone surrogate)"


def unstorable_rows(texts: list[str]) -> list[int]:
    """Indexes of the texts holding an :data:`UNSTORABLE` character: one scan of them
    all (a pure-ASCII text is only searched for NUL), row by row only when one is found."""
    joined = "".join(texts)
    if "\x00" not in joined and (joined.isascii() or not UNSTORABLE.search(joined)):
        return []
    return [i for i, t in enumerate(texts) if UNSTORABLE.search(t)]


@dataclass(frozen=True)
class ValueProblem:
    index: int  # 0-based
    column: str
    kind: str
    reason_zh: str
    reason_en: str


def targets(spec: LayerSpec) -> list[Target]:
    """Every column an import may fill, in table order."""
    out: list[Target] = []
    for level in spec.admin_levels:
        own = level is spec.level
        out.append(
            Target(
                name=spec.admin_column(level),
                type=ColumnType.TEXT,
                title_zh=f"{level.title_zh}代码",
                required=own or level in spec.required_levels,
                pattern=f"^[0-9]{{{level.code_length}}}$",
                level=level,
            )
        )
    for col in spec.columns:
        out.append(
            Target(
                name=col.name,
                type=col.type,
                title_zh=col.title_zh,
                required=col.required,
                has_default=col.default is not None,
                pattern=col.pattern,
                choices=tuple((c.value, c.title_zh, c.title_en) for c in col.choices),
                minimum=col.minimum,
                maximum=col.maximum,
            )
        )
    if spec.versioned:
        out.append(Target("valid_from", ColumnType.TIMESTAMP, "生效时间", has_default=True))
        out.append(Target("valid_to", ColumnType.TIMESTAMP, "失效时间"))
    return out


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


class _BadValueError(ValueError):
    """A value that is not of the column's type."""


def _integral(value: float) -> int:
    if not math.isfinite(value) or value != int(value):
        raise _BadValueError
    return int(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel and DBF store codes as numbers: 320213001.0 is the code "320213001".
        return str(_integral(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise _BadValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _integral(value)
    text = str(value).strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[+-]?[0-9]+\.0*", text):
        return int(text.split(".")[0])
    raise _BadValueError


def _float(value: object) -> float:
    if isinstance(value, bool):
        raise _BadValueError
    number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    if not math.isfinite(number):
        raise _BadValueError
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _BadValueError


# Year-first dates as spreadsheets in China write them (Excel and WPS save 2025/5/1 10:00
# in a CSV): 2025/5/1, 2025-5-1, 2025.5.1 or 2025年5月1日, then maybe a time 9:05,
# 9:05:03.5 or 9时5分3秒, on the 24-hour clock or on the 12-hour clock with 上午/下午
# (AM/PM) before or after it, as a cell formatted "上午/下午h:mm" or "h:mm AM/PM" is
# saved (2025/5/1 下午3:05, 2025/5/1 3:05 PM); or the compact date and time of
# public-security and hotline systems (GA/T data elements), 20250501090503 or
# 202505010905. Year first, so never ambiguous (epoch times are 10 or 13 digits, a date
# alone 8); anything else is refused.
_HALF_DAY = r"上午|下午|[AaPp][Mm]"
LOOSE_TIME = re.compile(
    r"(?P<y>[0-9]{4})(?:(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
    r"|年(?P<cm>[0-9]{1,2})月(?P<cd>[0-9]{1,2})日"
    r"|(?P<km>[0-9]{2})(?P<kd>[0-9]{2})(?P<kH>[0-9]{2})(?P<kM>[0-9]{2})(?P<kS>[0-9]{2})?)"
    rf"(?(km)|(?:(?:\s+|T|(?<=日))(?:(?<!T)(?P<ap>{_HALF_DAY})\s*)?(?P<H>[0-9]{{1,2}})"
    r"(?::(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<F>[0-9]{1,6}))?)?"
    r"|时(?P<cM>[0-9]{1,2})分(?:(?P<cS>[0-9]{1,2})秒)?)"
    rf"(?(ap)|(?:\s*(?P<pa>{_HALF_DAY}))?))?)"
)
# The groups of LOOSE_TIME that may hold each part, one of them matched.
LOOSE_PARTS = {
    "month": ("m", "cm", "km"),
    "day": ("d", "cd", "kd"),
    "hour": ("H", "kH"),
    "minute": ("M", "cM", "kM"),
    "second": ("S", "cS", "kS"),
}


def loose_part(found: re.Match[str], part: str) -> str | None:
    """The group of ``found`` (a :data:`LOOSE_TIME` match) that holds ``part``, if any."""
    return next((g for g in LOOSE_PARTS[part] if found[g] is not None), None)


def half_day(found: re.Match[str]) -> str | None:
    """``"am"`` or ``"pm"`` when ``found`` (a :data:`LOOSE_TIME` match) is on the 12-hour clock
    (上午/下午, AM/PM), else None."""
    marker = found["ap"] or found["pa"]
    if marker is None:
        return None
    return "am" if marker.lower() in ("上午", "am") else "pm"


def hour_of_day(hour: int, half: str | None) -> int | None:
    """The 24-hour clock's hour of ``hour`` on the 12-hour clock's ``half`` (12 上午 is
    midnight, 12 下午 noon); None when no 12-hour clock shows it (0, 13 下午): a
    typing error, not to be guessed at."""
    if half is None:
        return hour
    if not 1 <= hour <= 12:
        return None
    return hour % 12 + (12 if half == "pm" else 0)


def loose_time_iso(text: str) -> str | None:
    """``text`` in :data:`LOOSE_TIME`'s forms as ISO 8601 (not checked for a real day or
    hour: ``fromisoformat`` does that), else None."""
    found = LOOSE_TIME.fullmatch(text)
    if found is None:
        return None

    def number(part: str) -> int:
        group = loose_part(found, part)
        return 0 if group is None else int(found[group])

    iso = f"{found['y']}-{number('month'):02d}-{number('day'):02d}"
    if loose_part(found, "hour") is None:
        return iso
    hour = hour_of_day(number("hour"), half_day(found))
    if hour is None:
        return None
    fraction = f".{found['F']}" if found["F"] else ""
    clock = f"{hour:02d}:{number('minute'):02d}:{number('second'):02d}"
    return f"{iso}T{clock}{fraction}"


# Epoch times as ArcGIS (its GeoJSON and REST answers) and Java systems export them: 13
# digits of milliseconds or 10 of seconds since 1970-01-01 UTC. Either length spans
# 2001-09-09 to 2286-11-20, so the length alone says which unit: never a guess between
# the two. Other lengths are no time (20250501 is read as a date, by ISO 8601).
EPOCH_TIME = re.compile(r"[0-9]{10}|[0-9]{13}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def real_utc_offset(offset: timedelta | None) -> bool:
    """Whether a time's UTC offset is one a real zone has (-12:00 to +14:00): +20:00 is a
    typo, never a place."""
    return offset is None or timedelta(hours=-12) <= offset <= timedelta(hours=14)


def epoch_instant(value: object) -> datetime | None:
    """``value`` as an :data:`EPOCH_TIME` (an integer or its digits), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | str):
        return None
    text = str(int(value)) if isinstance(value, numbers.Integral) else value.strip()
    if not EPOCH_TIME.fullmatch(text):
        return None
    unit = timedelta(milliseconds=1) if len(text) == 13 else timedelta(seconds=1)
    return _EPOCH + int(text) * unit


def _epoch_date(instant: datetime) -> date:
    """The day of an epoch time given for a date: a midnight in Beijing or in UTC (how
    ArcGIS stores a date entered in China, or one written without a zone); else not a
    date."""
    local = instant.astimezone(CHINA_TZ)
    if local.time() == time(0):
        return local.date()
    if instant.time() == time(0):
        return instant.date()
    raise _BadValueError


def _iso_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        loose = loose_time_iso(text)
        if loose is None:
            raise
        return datetime.fromisoformat(loose)


def _date(value: object) -> date:
    if isinstance(value, datetime):
        if value.time() != time(0):
            raise _BadValueError
        return value.date()
    if isinstance(value, date):
        return value
    instant = epoch_instant(value)
    if instant is not None:
        return _epoch_date(instant)
    parsed = _iso_datetime(str(value).strip())
    if parsed.time() != time(0):
        raise _BadValueError
    return parsed.date()


def timestamp(value: object) -> datetime:
    """A time as every importer reads it (Beijing time without a zone): an epoch time by
    :data:`EPOCH_TIME`, ISO 8601 (``20250501`` too) or :data:`LOOSE_TIME`; ValueError
    otherwise. The API reads numbers and digit strings with it, so both paths agree."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0))
    else:
        parsed = epoch_instant(value) or _iso_datetime(str(value).strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CHINA_TZ)
    if not real_utc_offset(parsed.utcoffset()):
        raise _BadValueError
    return parsed


_CONVERTERS: dict[ColumnType, Any] = {
    ColumnType.TEXT: _text,
    ColumnType.INTEGER: _integer,
    ColumnType.BIGINT: _integer,
    ColumnType.FLOAT: _float,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: timestamp,
}


def convert_column(
    target: Target, values: Sequence[object] | None, count: int
) -> tuple[list[object], list[ValueProblem]]:
    """Values of one column converted and checked; ``values`` None: the file lacks it."""
    out: list[object] = [None] * count
    problems: list[ValueProblem] = []
    if values is None:
        return out, problems
    convert = _CONVERTERS[target.type]
    pattern = re.compile(target.pattern) if target.pattern else None
    by_label = {label: value for value, zh, en in target.choices for label in (value, zh, en)}
    name = target.name

    def refuse(i: int, kind: str, zh: str, en: str) -> None:
        problems.append(ValueProblem(i, name, kind, f"{target.title_zh}（{name}）{zh}", en))

    for i, raw in enumerate(values):
        if is_blank(raw):
            continue
        try:
            value = convert(raw)
        except (_BadValueError, ValueError, TypeError, OverflowError):
            refuse(
                i,
                "type",
                f"不是有效的{_TYPE_ZH[target.type]}",
                f"{name}: not a valid {target.type.value}",
            )
            continue
        if isinstance(value, str) and UNSTORABLE.search(value):
            refuse(i, "unstorable-text", UNSTORABLE_ZH, f"{name}: {UNSTORABLE_EN}")
            continue
        if isinstance(value, str) and by_label:
            if value not in by_label:
                allowed = "、".join(f"{v}（{zh}）" for v, zh, _ in target.choices)
                refuse(
                    i, "choice", f"取值不在允许范围内：{allowed}", f"{name}: not one of the choices"
                )
                continue
            value = by_label[value]
        if isinstance(value, str) and pattern is not None and not pattern.search(value):
            kind = "code-format" if target.level else "pattern"
            if target.level:
                zh = f"应为 {target.level.code_length} 位数字"
                en = f"{name}: must be {target.level.code_length} digits"
            else:
                zh, en = "格式不正确", f"{name}: does not match the required format"
            refuse(i, kind, zh, en)
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if target.minimum is not None and value < target.minimum:
                refuse(
                    i,
                    "minimum",
                    f"不能小于 {target.minimum:g}",
                    f"{name}: below {target.minimum:g}",
                )
                continue
            if target.maximum is not None and value > target.maximum:
                refuse(
                    i,
                    "maximum",
                    f"不能大于 {target.maximum:g}",
                    f"{name}: above {target.maximum:g}",
                )
                continue
        out[i] = value
    return out, problems


def require(target: Target, values: list[object], bad: set[int]) -> list[ValueProblem]:
    """A problem for each row missing a required value (rows already refused excepted)."""
    if not target.required or target.has_default:
        return []
    return [
        ValueProblem(
            i,
            target.name,
            "required",
            f"缺少必填字段{target.title_zh}（{target.name}）",
            f"required field {target.name} is missing",
        )
        for i, value in enumerate(values)
        if value is None and i not in bad
    ]


def derive_codes(spec: LayerSpec, data: dict[str, list[object]], count: int) -> None:
    """Fill missing upper admin codes from a lower code's prefix (they nest by definition:
    a grid code starts with its community, township and district codes)."""
    levels = spec.admin_levels
    for i in range(count):
        for upper_index, upper in enumerate(levels):
            column = spec.admin_column(upper)
            if data[column][i] is not None:
                continue
            for lower in levels[upper_index + 1 :]:
                code = data[spec.admin_column(lower)][i]
                if isinstance(code, str):
                    data[column][i] = code[: upper.code_length]
                    break


def check_nesting(spec: LayerSpec, data: dict[str, list[object]], count: int) -> list[ValueProblem]:
    """Codes must nest by prefix: a community code starts with its township code, etc."""
    problems: list[ValueProblem] = []
    levels = spec.admin_levels
    for upper, lower in pairwise(levels):
        up_col, low_col = spec.admin_column(upper), spec.admin_column(lower)
        for i in range(count):
            up, low = data[up_col][i], data[low_col][i]
            if isinstance(up, str) and isinstance(low, str) and not low.startswith(up):
                problems.append(
                    ValueProblem(
                        i,
                        low_col,
                        "code-nesting",
                        f"{lower.title_zh}代码 {low} 不以{upper.title_zh}代码 {up} 开头"
                        "（代码须逐级嵌套）",
                        f"{low_col} {low} does not start with {up_col} {up}",
                    )
                )
    return problems


def check_period(data: dict[str, list[object]], count: int) -> list[ValueProblem]:
    """A version ends after it starts (the table's CHECK valid_period)."""
    problems: list[ValueProblem] = []
    for i in range(count):
        start, end = data["valid_from"][i], data["valid_to"][i]
        if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
            problems.append(
                ValueProblem(
                    i,
                    "valid_to",
                    "period",
                    "失效时间须晚于生效时间",
                    "valid_to must be after valid_from",
                )
            )
    return problems
