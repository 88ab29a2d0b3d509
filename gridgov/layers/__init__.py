"""The data model: layer specs and registry, tables, migrations, and every SQL statement."""
