"""``gridgov``: the one command-line entry point for operators.

Each command group lives in its own module and is registered here.
"""

from __future__ import annotations

from gridgov.cli import audit, db, demo, incidents, layer, layers, optimise, plans, serve, users
from gridgov.cli.common import app

app.add_typer(db.app, name="db")
app.add_typer(layers.app, name="layers")
app.add_typer(layer.app, name="layer")
app.add_typer(demo.app, name="demo")
app.add_typer(incidents.app, name="incidents")
app.add_typer(users.app, name="user")
app.add_typer(plans.app, name="plan")
app.command()(serve.serve)
app.command("audit")(audit.audit)
app.command("optimise")(optimise.optimise_command)

__all__ = ["app"]
