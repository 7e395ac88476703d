"""``python -m bench`` runs the command line."""
from .cli import main

main()
