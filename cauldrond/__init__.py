"""Shadow Cauldron daemon: runs image-generation experiments on the local GPU."""

__version__ = "0.1.0"
