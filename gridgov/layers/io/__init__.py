"""Import and export of any registry layer: readers, validation, staging SQL and writers.

Everything is driven by the layer spec; there is no per-layer code here. The pure parts
(readers, encodings, field mapping, value conversion, writers) never touch the database;
every SQL statement lives in :mod:`gridgov.layers.io.staging`.
"""
