"""The streaming GeoJSON reader: the same answer as ``json.loads``, in bounded memory."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from gridgov.layers.io.errors import UnreadableFileError
from gridgov.layers.io.geojson_stream import FeatureStream


def _feature(i: int, note: str = "") -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": i,
        "geometry": {"type": "Point", "coordinates": [120.3 + i * 1e-6, -31.5e-1]},
        "properties": {"n": i, "名称": f"网格{i}", "note": note, "ok": i % 2 == 0, "x": None},
    }


def _read(text: str, read_chars: int = 1 << 20, **kw: int) -> tuple[list[Any], FeatureStream]:
    stream = FeatureStream(io.StringIO(text), read_chars=read_chars, **kw)
    return list(stream.features()), stream


@pytest.mark.parametrize("read_chars", [1, 2, 3, 7, 64, 1 << 20])
def test_any_block_size_reads_what_json_loads_reads(read_chars: int) -> None:
    # Members before and after the features, numbers that may end a block, nesting.
    document = {
        "type": "FeatureCollection",
        "count": 1234567,
        "bbox": [120.1, 31.2, 120.9, 31.8],
        "features": [_feature(i) for i in range(40)],
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "scale": -2.5e-3,
    }
    text = json.dumps(document, ensure_ascii=False, indent=1)
    features, stream = _read(text, read_chars)
    assert features == document["features"]
    assert stream.members == {k: v for k, v in document.items() if k != "features"}
    assert stream.features_read == 40


def test_memory_holds_one_block_and_one_feature_not_the_file() -> None:
    text = json.dumps({"type": "FeatureCollection", "features": [_feature(i) for i in range(3000)]})
    features, stream = _read(text, read_chars=4096)
    assert len(features) == 3000
    assert len(text) > 100 * 4096
    assert stream.largest_buffer < 3 * 4096


def test_a_feature_longer_than_a_block_is_read_whole() -> None:
    long = _feature(1, note="长" * 50_000)
    text = json.dumps({"type": "FeatureCollection", "features": [_feature(0), long, _feature(2)]})
    features, _ = _read(text, read_chars=1000)
    assert features[1]["properties"]["note"] == "长" * 50_000
    assert [f["id"] for f in features] == [0, 1, 2]


def test_features_before_a_syntax_error_arrive_before_the_error() -> None:
    good = ",".join(json.dumps(_feature(i)) for i in range(5))
    text = '{"type": "FeatureCollection", "features": [' + good + ', {"type": "Feature",, }]}'
    stream = FeatureStream(io.StringIO(text), read_chars=64)
    features = stream.features()
    seen = [next(features)["id"] for _ in range(5)]
    with pytest.raises(UnreadableFileError) as caught:
        next(features)
    assert seen == [0, 1, 2, 3, 4]
    assert "第 6 个要素" in caught.value.detail_zh
    assert "feature 6" in caught.value.detail_en


def test_a_file_cut_short_is_called_unfinished() -> None:
    text = json.dumps({"type": "FeatureCollection", "features": [_feature(0), _feature(1)]})
    with pytest.raises(UnreadableFileError) as caught:
        _read(text[: len(text) // 2 + 20], read_chars=16)
    assert "不完整" in caught.value.detail_zh


def test_a_value_beyond_the_limit_is_refused_not_buffered() -> None:
    text = json.dumps({"type": "FeatureCollection", "features": [_feature(0, note="x" * 5000)]})
    stream = FeatureStream(io.StringIO(text), read_chars=100, max_value_chars=1000)
    with pytest.raises(UnreadableFileError):
        list(stream.features())
    assert stream.largest_buffer < 2 * 1000 + 100 < len(text)


def test_a_single_feature_file_is_one_feature() -> None:
    features, stream = _read(json.dumps(_feature(7)))
    assert features == [_feature(7)]
    assert stream.features_read == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "GeoJSON 对象"),
        ('{"type": "FeatureCollection"}', "FeatureCollection"),
        ('{"type": "Topology", "objects": {}}', "FeatureCollection"),
        ('{"type": "FeatureCollection", "features": {}}', "数组"),
        ('{"type": "FeatureCollection", "features": [], "features": []}', "两次"),
        ('{"type": "FeatureCollection", "features": [1,]}', "JSON"),
        ('{"type": "FeatureCollection", "features": []} {"more": 1}', "结束后还有内容"),
        ('{"type": "FeatureCollection" "features": []}', "逗号"),
        ("{1: 2}", "JSON"),
        ("", "GeoJSON 对象"),
    ],
)
def test_what_is_not_a_feature_collection_is_refused_by_name(text: str, words: str) -> None:
    with pytest.raises(UnreadableFileError) as caught:
        _read(text, read_chars=5)
    assert words in caught.value.detail_zh, caught.value.detail_zh
