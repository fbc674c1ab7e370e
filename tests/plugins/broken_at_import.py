"""A plugin module that raises while it is imported: the daemon must skip it and list it as failed."""

raise RuntimeError("this plugin is broken at import")
