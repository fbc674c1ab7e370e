"""Experiments: a spec (base params plus axes, or explicit cells) expanded into one job per image cell."""
