"""``python -m convarith`` runs the CLI."""

from .cli import main

main()
