"""The ``rupture`` command line: a thin layer over the Python API."""

from __future__ import annotations

import os
import sys

from ..errors import RuptureError
from .app import app, report_error

# Each module registers its commands on ``app`` when imported.
from . import basic  # noqa: F401,E402  validate, labels, corpus stats, corpus agreement
from . import corpus_asr  # noqa: F401,E402  corpus render-asr
from . import segment  # noqa: F401,E402  segment
from . import model  # noqa: F401,E402  train, tag
from . import labelstudio  # noqa: F401,E402  ls ...
from . import evaluate  # noqa: F401,E402  evaluate
from . import report  # noqa: F401,E402  report


def main() -> None:
    """Console entry point: user errors and interrupts end in one line, never a traceback."""
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and not isinstance(rc, bool):
            sys.exit(rc)
    except RuptureError as e:
        report_error(e)
        sys.exit(1)
    except KeyboardInterrupt:
        report_error(RuptureError("interrupted; no output file was left half-written"))
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - last line of defence for the CLI only
        import click
        import typer

        try:  # typer vendors its own click: its usage errors are not click's classes
            from typer._click.exceptions import ClickException as TyperClickException
        except ImportError:
            TyperClickException = click.ClickException
        if isinstance(e, (click.exceptions.Exit, typer.Exit)):
            sys.exit(e.exit_code)
        if isinstance(e, (click.ClickException, TyperClickException)):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, (click.exceptions.Abort, typer.Abort)):
            report_error(RuptureError("aborted"))
            sys.exit(130)
        if os.environ.get("RUPTURE_DEBUG"):
            raise
        report_error(RuptureError(f"internal error ({type(e).__name__}); rerun with RUPTURE_DEBUG=1 for details"))
        sys.exit(2)
