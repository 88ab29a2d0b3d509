"""``gridgov``: the one command-line entry point for operators.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

from gridgov.cli import db, demo, incidents, layer, layers, serve
from gridgov.cli.common import app

app.add_typer(db.app, name="db")
app.add_typer(layers.app, name="layers")
app.add_typer(layer.app, name="layer")
app.add_typer(demo.app, name="demo")
app.add_typer(incidents.app, name="incidents")
app.command()(serve.serve)

__all__ = ["app"]
