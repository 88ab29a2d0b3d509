"""Every gridgov layer, declared once (see PRODUCT.md, "Layers").

The ids are public: they appear in URLs, commands and table names, so never rename one.
"""

from __future__ import annotations

from gridgov.layers.spec import (
    AdminLevel,
    Column,
    ColumnType,
    GeometryKind,
    LayerGroup,
    LayerSpec,
    Style,
    choices,
)

D, T, C, G = AdminLevel.DISTRICT, AdminLevel.TOWNSHIP, AdminLevel.COMMUNITY, AdminLevel.GRID
TEXT, INT, FLOAT = ColumnType.TEXT, ColumnType.INTEGER, ColumnType.FLOAT
BOOL, DATE, TS = ColumnType.BOOLEAN, ColumnType.DATE, ColumnType.TIMESTAMP

# Risk colours of Article 16 practice: 重大 red, 较大 orange, 一般 yellow, 低 blue.
RISK_LEVELS = choices(
    ("major", "重大风险", "major", "#e60012"),
    ("high", "较大风险", "high", "#f39800"),
    ("moderate", "一般风险", "moderate", "#f5c400"),
    ("low", "低风险", "low", "#0068b7"),
)

# Article 33: key places (重点部位、重点场所).
KEY_SITE_CATEGORIES = choices(
    ("airport", "机场", "airport", "#6a3d9a"),
    ("railway_station", "火车站", "railway station", "#1f78b4"),
    ("metro_station", "地铁站", "metro station", "#a6cee3"),
    ("bus_station", "汽车站", "bus station", "#33a02c"),
    ("dock", "码头", "dock", "#b2df8a"),
    ("school", "学校", "school", "#ff7f00"),
    ("kindergarten", "幼儿园", "kindergarten", "#fdbf6f"),
    ("financial", "金融机构", "financial institution", "#e31a1c"),
    ("hospital", "医院", "hospital", "#fb9a99"),
    ("theatre", "影剧院", "theatre", "#cab2d6"),
    ("heritage", "文物古迹", "heritage site", "#b15928"),
)

INCIDENT_CATEGORIES = choices(
    ("dispute", "矛盾纠纷", "dispute", "#e41a1c"),
    ("safety_hazard", "安全隐患", "safety hazard", "#ff7f00"),
    ("public_order", "治安", "public order", "#377eb8"),
    ("city_management", "城市管理", "city management", "#4daf4a"),
    ("environment", "生态环境", "environment", "#a65628"),
    ("livelihood", "民生服务", "residents' needs", "#984ea3"),
    ("other", "其他", "other", "#999999"),
)

# Lifecycle of 数字化城管 practice, in order.
INCIDENT_STATUSES = choices(
    ("reported", "信息收集", "reported"),
    ("registered", "立案", "registered"),
    ("dispatched", "派遣", "dispatched"),
    ("handling", "处置", "handling"),
    ("handled", "反馈", "handled"),
    ("closed", "核查结案", "verified and closed"),
    ("evaluated", "评价", "evaluated"),
)

# How an incident was placed on its grid (see gridgov.layers.assignment).
ASSIGN_METHODS = choices(
    ("inside", "网格内", "inside a grid"),
    ("boundary", "网格边界", "on a shared boundary"),
    ("nearest", "就近网格", "nearest grid within tolerance"),
    ("fallback", "属地兜底", "township fallback"),
)

INCIDENT_SOURCES = choices(
    ("grid_worker", "网格员上报", "grid worker"),
    ("hotline", "12345热线", "12345 hotline"),
    ("police", "110警情", "110 police call"),
    ("public", "群众上报", "resident report"),
    ("video", "视频巡查", "video patrol"),
    ("department", "部门移交", "department referral"),
)

UNIT_CODE = r"^[0-9A-Za-z_-]{1,32}$"
ID_NUMBER = r"^[0-9]{17}[0-9Xx]$"  # GB 11643 citizen identity number
PHONE = r"^\+?[0-9 -]{5,20}$"


def _name(title_zh: str = "名称", required: bool = True) -> Column:
    return Column("name", TEXT, title_zh, "name", required=required, filterable=True)


def _count(name: str, title_zh: str, title_en: str, required: bool = False) -> Column:
    return Column(name, INT, title_zh, title_en, required=required, minimum=0)


def _unit_columns(level: Column) -> tuple[Column, ...]:
    return (
        Column(
            "code",
            TEXT,
            "编码",
            "code",
            required=True,
            unique=True,
            pattern=UNIT_CODE,
            filterable=True,
        ),
        _name(),
        level,
    )


DISTRICT = LayerSpec(
    id="district",
    title_zh="区县",
    title_en="District",
    description_zh="县级行政区（区、县级市），代码为 GB/T 2260 六位代码。",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.ADMIN,
    level=D,
    columns=(_name(),),
    style=Style(stroke="#4b0082", fill=None, weight=3.0),
    min_zoom=0,
    max_zoom=16,
)

TOWNSHIP = LayerSpec(
    id="township",
    title_zh="镇街",
    title_en="Township / street",
    description_zh="乡镇、街道，九位代码。",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.ADMIN,
    level=T,
    carries=(D,),
    required_levels=(D,),
    columns=(
        _name(),
        Column(
            "kind",
            TEXT,
            "类型",
            "kind",
            filterable=True,
            choices=choices(
                ("town", "镇", "town"),
                ("street", "街道", "street"),
                ("other", "其他（开发区等）", "other"),
            ),
        ),
    ),
    style=Style(stroke="#7b3294", weight=2.0, dash="6 4"),
    min_zoom=8,
    max_zoom=18,
)

COMMUNITY = LayerSpec(
    id="community",
    title_zh="村社区",
    title_en="Village / community",
    description_zh="村（居）委会辖区，十二位代码。",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.ADMIN,
    level=C,
    carries=(D, T),
    required_levels=(D, T),
    columns=(
        _name(),
        Column(
            "kind",
            TEXT,
            "城乡类型",
            "urban / rural",
            required=True,
            filterable=True,
            choices=choices(("urban", "社区", "urban community"), ("rural", "村", "village")),
        ),
    ),
    style=Style(stroke="#c2a5cf", weight=1.5),
    min_zoom=10,
    max_zoom=20,
)

GRID = LayerSpec(
    id="grid",
    title_zh="网格",
    title_en="Grid",
    description_zh="网格化服务管理的基本单元；编码为村社区代码加三位序号；网格可随时间调整，多个版本并存。",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.GRIDS,
    level=G,
    carries=(D, T, C),
    required_levels=(D, T, C),
    versioned=True,
    columns=(
        _name(required=False),
        Column(
            "kind",
            TEXT,
            "网格类型",
            "kind",
            required=True,
            filterable=True,
            default="'base'",
            choices=choices(
                ("base", "基础网格", "base grid", "#1b9e77"),
                ("dedicated", "专属网格", "dedicated grid", "#d95f02"),
            ),
        ),
        Column("dedicated_to", TEXT, "专属对象", "dedicated to (school, station, …)"),
        _count("households", "户数", "households"),
        _count("population", "人口", "population"),
        Column("worker_name", TEXT, "专职网格员", "grid worker"),
    ),
    style=Style(stroke="#1b9e77", fill="#1b9e77", fill_opacity=0.08, by="kind"),
    min_zoom=12,
    max_zoom=22,
)

BUILDING = LayerSpec(
    id="building",
    title_zh="楼栋",
    title_en="Building",
    description_zh="住宅楼栋；网格户数为其楼栋户数之和。",
    geometry=GeometryKind.POINT,
    group=LayerGroup.GRIDS,
    carries=(D, T, C, G),
    required_levels=(D, T, C),
    columns=(
        Column("address", TEXT, "地址", "address", filterable=True),
        _count("households", "户数", "households", required=True),
        _count("residents", "居住人口", "residents", required=True),
        _count("floors", "层数", "floors"),
    ),
    style=Style(stroke="#636363", fill="#bdbdbd", radius=3.0),
    min_zoom=15,
    max_zoom=22,
)

POLICE_UNIT = LayerSpec(
    id="police_unit",
    title_zh="警务责任区",
    title_en="Police unit",
    description_zh="派出所辖区、社区警务区与巡逻单元。",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.UNITS,
    carries=(D, T),
    required_levels=(D,),
    columns=(
        *_unit_columns(
            Column(
                "level",
                TEXT,
                "层级",
                "level",
                required=True,
                filterable=True,
                choices=choices(
                    ("station", "派出所辖区", "police station", "#08519c"),
                    ("policing_area", "社区警务区", "community policing area", "#3182bd"),
                    ("patrol", "巡逻单元", "patrol unit", "#9ecae1"),
                ),
            )
        ),
        Column(
            "parent_code",
            TEXT,
            "上级单位编码",
            "parent unit code",
            pattern=UNIT_CODE,
            filterable=True,
        ),
    ),
    style=Style(stroke="#08519c", fill="#3182bd", fill_opacity=0.05, weight=2.0, by="level"),
    min_zoom=9,
    max_zoom=20,
)

URBAN_UNIT = LayerSpec(
    id="urban_unit",
    title_zh="城管责任区",
    title_en="Urban-management unit",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.UNITS,
    carries=(D, T),
    required_levels=(D,),
    columns=(
        *_unit_columns(
            Column("department", TEXT, "责任部门", "department", required=True, filterable=True)
        ),
    ),
    style=Style(stroke="#238b45", fill="#74c476", fill_opacity=0.05, weight=2.0, dash="4 4"),
    min_zoom=9,
    max_zoom=20,
)

EMERGENCY_UNIT = LayerSpec(
    id="emergency_unit",
    title_zh="应急网格",
    title_en="Emergency unit",
    geometry=GeometryKind.MULTIPOLYGON,
    group=LayerGroup.UNITS,
    carries=(D, T),
    required_levels=(D,),
    columns=(
        *_unit_columns(
            Column("department", TEXT, "责任部门", "department", required=True, filterable=True)
        ),
    ),
    style=Style(stroke="#cb181d", fill="#fb6a4a", fill_opacity=0.05, weight=2.0, dash="2 4"),
    min_zoom=9,
    max_zoom=20,
)

HAZARD_ZONE = LayerSpec(
    id="hazard_zone",
    title_zh="危险源与危险区域",
    title_en="Hazard zone",
    description_zh="重大危险源、危险区域的登记、评估与公布（条例第十六条）。",
    geometry=GeometryKind.POINT_OR_POLYGON,
    group=LayerGroup.SITES,
    carries=(D, T, C, G),
    required_levels=(D, T),
    columns=(
        _name(),
        Column(
            "hazard_class",
            TEXT,
            "危险类别",
            "hazard class",
            required=True,
            filterable=True,
            choices=choices(
                ("hazardous_chemicals", "危险化学品", "hazardous chemicals"),
                ("gas", "燃气", "gas"),
                ("fire", "消防", "fire"),
                ("flood", "防汛", "flood"),
                ("geological", "地质灾害", "geological"),
                ("construction", "建设施工", "construction"),
                ("traffic", "交通", "traffic"),
                ("other", "其他", "other"),
            ),
        ),
        Column(
            "risk_level",
            TEXT,
            "风险等级",
            "risk level",
            required=True,
            filterable=True,
            choices=RISK_LEVELS,
        ),
        Column("assessed_at", DATE, "评估日期", "assessed at", required=True),
        Column("next_assessment_at", DATE, "下次评估日期", "next assessment"),
        Column(
            "published",
            BOOL,
            "已公布",
            "published",
            required=True,
            default="false",
            filterable=True,
        ),
        Column("responsible_unit", TEXT, "责任单位", "responsible unit"),
    ),
    style=Style(stroke="#e60012", fill="#e60012", fill_opacity=0.3, by="risk_level"),
    min_zoom=10,
    max_zoom=22,
)

RENTAL_HOUSING = LayerSpec(
    id="rental_housing",
    title_zh="出租房屋",
    title_en="Rental housing",
    description_zh="出租房屋与群租房的登记与检查（条例第三十八条）；房东、租客身份属个人信息。",
    geometry=GeometryKind.POINT,
    group=LayerGroup.SITES,
    carries=(D, T, C, G),
    required_levels=(D, T, C),
    personal_data=True,
    columns=(
        Column("address", TEXT, "地址", "address", required=True),
        Column(
            "is_group_rental",
            BOOL,
            "群租房",
            "group rental",
            required=True,
            default="false",
            filterable=True,
        ),
        _count("rooms", "房间数", "rooms"),
        _count("tenants", "租客人数", "tenants"),
        Column("last_inspected_at", DATE, "最近检查日期", "last inspection"),
        Column("findings", TEXT, "检查发现", "inspection findings"),
        Column("landlord_name", TEXT, "房东姓名", "landlord name", personal=True),
        Column(
            "landlord_id_number",
            TEXT,
            "房东身份证号",
            "landlord ID number",
            personal=True,
            pattern=ID_NUMBER,
        ),
        Column("landlord_phone", TEXT, "房东电话", "landlord phone", personal=True, pattern=PHONE),
    ),
    style=Style(stroke="#8c510a", fill="#d8b365", radius=4.0),
    min_zoom=14,
    max_zoom=22,
)

KEY_SITE = LayerSpec(
    id="key_site",
    title_zh="重点场所",
    title_en="Key site",
    description_zh="重点部位、重点场所（条例第三十三条）。",
    geometry=GeometryKind.POINT_OR_POLYGON,
    group=LayerGroup.SITES,
    carries=(D, T, C, G),
    required_levels=(D, T),
    columns=(
        _name(),
        Column(
            "category",
            TEXT,
            "类别",
            "category",
            required=True,
            filterable=True,
            choices=KEY_SITE_CATEGORIES,
        ),
        Column("responsible_unit", TEXT, "责任单位", "responsible unit"),
    ),
    style=Style(stroke="#6a3d9a", fill="#cab2d6", radius=6.0, by="category"),
    min_zoom=11,
    max_zoom=22,
)

SHELTER = LayerSpec(
    id="shelter",
    title_zh="应急避难场所",
    title_en="Emergency shelter",
    description_zh="应急避难场所（条例第二十三条）。",
    geometry=GeometryKind.POINT_OR_POLYGON,
    group=LayerGroup.SITES,
    carries=(D, T, C, G),
    required_levels=(D, T),
    columns=(
        _name(),
        _count("capacity", "容纳人数", "capacity", required=True),
        Column("area_m2", FLOAT, "面积（平方米）", "area (m²)", minimum=0),
    ),
    style=Style(stroke="#006d2c", fill="#41ab5d", fill_opacity=0.3, radius=6.0),
    min_zoom=10,
    max_zoom=22,
)

INCIDENT = LayerSpec(
    id="incident",
    title_zh="事件",
    title_en="Incident",
    description_zh="矛盾纠纷、安全隐患等事件，分派至网格及各责任单位，按生命周期办理。",
    geometry=GeometryKind.POINT,
    group=LayerGroup.INCIDENTS,
    carries=(D, T, C, G),
    columns=(
        Column(
            "category",
            TEXT,
            "事件类别",
            "category",
            required=True,
            filterable=True,
            choices=INCIDENT_CATEGORIES,
        ),
        Column(
            "status",
            TEXT,
            "状态",
            "status",
            required=True,
            filterable=True,
            default="'reported'",
            choices=INCIDENT_STATUSES,
        ),
        Column(
            "source",
            TEXT,
            "来源",
            "source",
            required=True,
            filterable=True,
            choices=INCIDENT_SOURCES,
        ),
        Column("external_id", TEXT, "外部编号", "external id", unique=True),
        Column("reported_at", TS, "上报时间", "reported at", required=True, filterable=True),
        Column("deadline_at", TS, "办理时限", "deadline"),
        # Lifecycle timestamps (数字化城管): set by each transition.
        Column("registered_at", TS, "立案时间", "registered at"),
        Column("dispatched_at", TS, "派遣时间", "dispatched at"),
        Column("handling_at", TS, "处置开始时间", "handling since"),
        Column("handled_at", TS, "反馈时间", "handled at"),
        Column("closed_at", TS, "结案时间", "closed at"),
        Column("evaluated_at", TS, "评价时间", "evaluated at"),
        # The assignment (分派) and how it was made, so that it can always be explained.
        Column("grid_id", ColumnType.BIGINT, "网格版本", "grid version", references="grid.id"),
        Column(
            "assign_method",
            TEXT,
            "分派方式",
            "assignment rule",
            filterable=True,
            choices=ASSIGN_METHODS,
        ),
        Column("assign_distance_m", FLOAT, "距网格距离（米）", "distance to grid (m)", minimum=0),
        Column("assigned_at", TS, "分派时间", "assigned at"),
        Column(
            "police_station_code",
            TEXT,
            "派出所",
            "police station",
            references="police_unit.code",
            filterable=True,
        ),
        Column(
            "policing_area_code",
            TEXT,
            "社区警务区",
            "community policing area",
            references="police_unit.code",
            filterable=True,
        ),
        Column(
            "urban_unit_code",
            TEXT,
            "城管责任区",
            "urban-management unit",
            references="urban_unit.code",
            filterable=True,
        ),
        Column(
            "emergency_unit_code",
            TEXT,
            "应急网格",
            "emergency unit",
            references="emergency_unit.code",
            filterable=True,
        ),
        Column("description", TEXT, "描述", "description"),
    ),
    style=Style(stroke="#e41a1c", fill="#e41a1c", radius=3.0, by="category"),
    min_zoom=12,
    max_zoom=22,
    cluster_max_zoom=14,
)

ALL_LAYERS: tuple[LayerSpec, ...] = (
    DISTRICT,
    TOWNSHIP,
    COMMUNITY,
    GRID,
    BUILDING,
    POLICE_UNIT,
    URBAN_UNIT,
    EMERGENCY_UNIT,
    HAZARD_ZONE,
    RENTAL_HOUSING,
    KEY_SITE,
    SHELTER,
    INCIDENT,
)
