"""Synthetic people for personal-data fields: names, ID numbers, phone numbers.

They look real (valid GB 11643 check digits, Wuxi region codes) so that masking and
validation are exercised, but every one is generated from the seed.
"""

from __future__ import annotations

import numpy as np

SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙朱马胡郭林何高罗郑梁谢宋唐许邓冯韩曹曾彭萧蔡潘田董袁于余叶蒋"
    "杜苏魏程吕丁沈任姚卢傅钟姜崔谭廖范汪陆金石贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙陶"
    "贺顾毛郝龚邵万钱严覃武莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌浩宇婷雪琳晨欣怡子涵"
    "梓轩诗雨佳俊博一鸣思远嘉豪"
)
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = "10X98765432"
WUXI_REGIONS = ("320213", "320211", "320214", "320205", "320206", "320281", "320282")
MOBILE_PREFIXES = (
    "138",
    "139",
    "150",
    "151",
    "152",
    "158",
    "159",
    "182",
    "187",
    "188",
    "135",
    "136",
    "177",
    "180",
    "189",
)


def name(rng: np.random.Generator) -> str:
    given = "".join(rng.choice(list(GIVEN), size=int(rng.integers(1, 3))))
    return str(rng.choice(list(SURNAMES))) + given


def id_number(rng: np.random.Generator) -> str:
    """An 18-character citizen ID with a correct check character."""
    region = str(rng.choice(WUXI_REGIONS))
    year = int(rng.integers(1950, 2000))
    month = int(rng.integers(1, 13))
    day = int(rng.integers(1, 29))
    serial = int(rng.integers(0, 1000))
    body = f"{region}{year:04d}{month:02d}{day:02d}{serial:03d}"
    check = ID_CHECK[int(np.dot(ID_WEIGHTS, [int(c) for c in body])) % 11]
    return body + check


def mobile(rng: np.random.Generator) -> str:
    return str(rng.choice(MOBILE_PREFIXES)) + f"{int(rng.integers(0, 100_000_000)):08d}"
