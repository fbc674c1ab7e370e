"""The engine: the only user of the GPU. It takes batches from the queue and runs them in one worker thread."""

from cauldrond.engine.engine import Engine

__all__ = ["Engine"]
