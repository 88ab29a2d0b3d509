"""The web layer: a thin FastAPI app over ``gridgov.layers`` and ``gridgov.gis``."""
