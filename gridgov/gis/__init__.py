"""Pure spatial logic over shapely / geopandas / numpy: no web, no database imports."""
