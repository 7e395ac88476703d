"""``python -m bench`` runs the command line."""
from .console import main

main()
