"""``python -m cauldron_client`` runs cauldronctl."""

from cauldron_client.cli import main

main()
