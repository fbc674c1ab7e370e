"""LoRA, VAE and embedding hashes in the store: A1111's values (computed here with hashlib from A1111's definition:
a LoRA's is the sha256 of the bytes after the safetensors header, a VAE's or embedding's of the whole file), kept
per file version (path, size, mtime) and algorithm, and reused by a second store opened on the same SQLite file
without reading the file again."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from cauldrond.models.hash_cache import StoreExtraHashCache
from cauldrond.providers.diffusers.extras_catalogue import FILE_SHA256, TENSOR_DATA_SHA256, ExtraHashes
from cauldrond.store import Store


def _tensor_data_sha256(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little") :]).hexdigest()


def _write(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_file({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.randn(4, 8)}, str(path))
    return path


async def test_a_hash_is_found_only_for_its_algorithm_size_and_mtime(store: Store) -> None:
    repo = store.extra_network_hashes
    await repo.put("/m/a.safetensors", TENSOR_DATA_SHA256, 10, 1, "ab" * 32)
    await repo.put("/m/a.safetensors", FILE_SHA256, 10, 1, "cd" * 32)  # a second algorithm: a second row
    assert await repo.get("/m/a.safetensors", TENSOR_DATA_SHA256, 10, 1) == "ab" * 32
    assert await repo.get("/m/a.safetensors", FILE_SHA256, 10, 1) == "cd" * 32
    assert await repo.get("/m/a.safetensors", TENSOR_DATA_SHA256, 11, 1) is None
    assert await repo.get("/m/a.safetensors", TENSOR_DATA_SHA256, 10, 2) is None
    await repo.put("/m/a.safetensors", TENSOR_DATA_SHA256, 11, 2, "ef" * 32)  # the file changed: row replaced
    assert await repo.get("/m/a.safetensors", TENSOR_DATA_SHA256, 10, 1) is None
    assert await repo.get("/m/a.safetensors", TENSOR_DATA_SHA256, 11, 2) == "ef" * 32


async def test_a_second_store_reuses_the_row_until_the_file_changes(tmp_path: Path) -> None:
    lora = _write(tmp_path / "detail.safetensors", seed=1)
    expected_lora, expected_file = _tensor_data_sha256(lora), hashlib.sha256(lora.read_bytes()).hexdigest()
    assert expected_lora != expected_file  # the two definitions differ on the same file
    database = tmp_path / "cauldron.db"

    async with await Store.open(database) as first:
        hashes = ExtraHashes(StoreExtraHashCache(first.extra_network_hashes, asyncio.get_running_loop()))
        assert await asyncio.to_thread(hashes.lora, lora) == expected_lora
        assert await asyncio.to_thread(hashes.whole_file, lora) == expected_file

    # Other bytes of the same size under the same mtime: a hash that read the file would change.
    stat = lora.stat()
    _write(lora, seed=2)
    os.utime(lora, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert lora.stat().st_size == stat.st_size and _tensor_data_sha256(lora) != expected_lora

    async with await Store.open(database) as second:
        hashes = ExtraHashes(StoreExtraHashCache(second.extra_network_hashes, asyncio.get_running_loop()))
        assert await asyncio.to_thread(hashes.lora, lora) == expected_lora  # the row, not the file
        assert await asyncio.to_thread(hashes.whole_file, lora) == expected_file
        # A new mtime is a new version of the file: hashed again, and the row replaced.
        os.utime(lora, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert await asyncio.to_thread(hashes.lora, lora) == _tensor_data_sha256(lora)
        assert await asyncio.to_thread(hashes.whole_file, lora) == hashlib.sha256(lora.read_bytes()).hexdigest()
        now = lora.stat()
        row = await second.extra_network_hashes.get(
            str(lora.resolve()), TENSOR_DATA_SHA256, now.st_size, now.st_mtime_ns
        )
        assert row == _tensor_data_sha256(lora)
