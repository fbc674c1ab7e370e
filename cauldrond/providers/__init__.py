"""Providers turn generation parameters into images. Each is registered through the plugin hook
``cauldron_register_providers``; the diffusers provider is the built-in one."""
