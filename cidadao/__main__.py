"""``python -m cidadao`` runs the ``cidadao`` command."""

from cidadao.cli import main

if __name__ == "__main__":  # a spawned child process imports this module without running the command
    main()
