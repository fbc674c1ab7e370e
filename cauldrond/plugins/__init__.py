"""The plugin system: pluggy hooks (``hookspecs``) and the plugin manager factory (``manager``)."""
