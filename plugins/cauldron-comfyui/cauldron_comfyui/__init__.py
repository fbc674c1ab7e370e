"""ComfyUI workflows for Shadow Cauldron: export an image's params as a ComfyUI graph (API and UI formats, or
embedded in its PNG) and import a ComfyUI txt2img graph back as generation params."""

from __future__ import annotations

__version__ = "0.1.0"
