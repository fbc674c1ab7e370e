"""The built-in provider: HuggingFace diffusers pipelines, registered through the ``cauldron`` plugin hook
like any third-party provider."""
