"""The generation params that have a command-line option: a copy of what ``cauldrond.params.cli_options()``
derives from the daemon's params model, where each field is declared once.

A copy, because the client installs without the daemon (no torch on a laptop) and its options must exist
without a connection (``--help``, completion, experiment files checked offline); ``rpc.describe`` could give them
only at run time. ``tests/test_params.py`` holds this table equal to the daemon's, so a field declared there
with an option fails the tests until it is copied here, and then ``generate`` and ``sweep`` offer it.
"""

from __future__ import annotations

# (params field, option, value type, help) in the params model's declaration order.
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("negative_prompt", "--negative", "str", "Negative prompt."),
    ("model", "--model", "str", "Model name (see `cauldronctl models`) [default: the daemon's default_model]."),
    ("vae", "--vae", "str", "VAE name (see `cauldronctl vaes`) [default: the model's own]."),
    ("sampler", "--sampler", "str", 'A1111 sampler name, e.g. "Euler a" (see `cauldronctl samplers`).'),
    ("schedule", "--schedule", "str", "Automatic, Karras or Exponential."),
    ("steps", "--steps", "int", ""),
    ("cfg_scale", "--cfg", "float", "CFG scale."),
    ("seed", "--seed", "int", "-1 draws a random seed (the one used is recorded)."),
    ("width", "--width", "int", ""),
    ("height", "--height", "int", ""),
    ("clip_skip", "--clip-skip", "int", ""),
    ("eta", "--eta", "float", "DDIM's eta (0 deterministic, 1 as DDPM); other samplers ignore it."),
)
