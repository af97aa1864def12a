"""``python -m cidadao`` runs the ``cidadao`` command."""

from cidadao.cli import main

main()
