"""The synthetic Wuxi demo city: deterministic from a seed, plausible, nested correctly.

Everything here is pure (numpy / shapely / geopandas) and works in metres in CGCS2000 /
Gauss-Kruger CM 120E (EPSG:4549); :mod:`gridgov.gis.demo.city` converts to lon/lat at the end.
"""
