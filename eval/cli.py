"""`rag eval ...` commands."""

import typer

eval_app = typer.Typer(help="Evaluate retrieval and answers.", no_args_is_help=True)
