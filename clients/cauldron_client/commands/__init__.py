"""cauldronctl subcommands, one module per noun; cli.py assembles them into the group."""
