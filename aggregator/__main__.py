"""``python -m aggregator`` runs the ``deepsearch`` command."""

from aggregator.cli import main

main()
