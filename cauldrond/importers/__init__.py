"""Built-in importers: other tools' files turned into generation params. Each registers through the
``cauldron_register_importers`` hook, exactly as a third-party plugin's importer does (``plugin.py``)."""
