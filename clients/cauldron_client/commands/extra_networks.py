"""``cauldronctl loras``, ``vaes`` and ``embeddings``: what the daemon's models folders hold, by the name that
``--lora``, ``--vae`` or a prompt uses, with each file's short hash as A1111's infotext writes it and, for a file
the daemon will not load (a pickle), why not."""

from __future__ import annotations

import click

from cauldron_client.commands._common import call, emit_json, options, table


def _listing(name: str, what: str, folder: str, use: str) -> click.Command:
    """The command ``name``: the RPC method ``<name>.list``, whose result holds the list under ``name``."""

    def show() -> None:
        result = call(f"{name}.list")
        if options().json:
            emit_json(result)
            return
        rows = [
            (item.get("name"), item.get("short_hash"), "yes" if item.get("usable") else "no", item.get("note") or None)
            for item in result.get(name, [])
        ]
        if not rows:
            click.echo(f"no {what}: put .safetensors files in the daemon's models folder, under {folder}/", err=True)
            return
        click.echo(table(["name", "hash", "usable", "note"], rows))

    summary = f"{what[0].upper()}{what[1:]} in the daemon's models folder ({folder}/), {use}."
    return click.command(name, help=summary)(show)


loras = _listing("loras", "LoRAs", "loras", "by the name --lora NAME:WEIGHT takes")
vaes = _listing("vaes", "VAEs", "vae", "by the name --vae takes")
embeddings = _listing("embeddings", "textual-inversion embeddings", "embeddings", "by the word a prompt uses")
