"""gridgov: GIS service for city grid management (网格化服务管理)."""

__version__ = "0.1.0"
