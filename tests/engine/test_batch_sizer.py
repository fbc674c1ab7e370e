"""The auto batch size's decisions, batch by batch: the sizes it asks for and the one it keeps, with throughputs
given as denoising seconds so each expected choice is a hand calculation (engine/batch_sizing.py's GAIN of 5%)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cauldrond.engine.batch_sizing import BatchSizer
from cauldrond.store import NewImage, Store

CELL = {"model": "tiny-sd", "width": 64, "height": 64}


def images(count: int, seconds: float, chunk: int | None = None, cell: dict[str, Any] = CELL) -> list[NewImage]:
    """A finished batch of ``count`` images that took ``seconds`` of denoising in all, run in chunks of
    ``chunk`` (the provider's split after running out of memory)."""
    return [
        NewImage(
            path=f"{index}.png",
            sha256="0" * 64,
            size_bytes=1,
            seed=index,
            params=dict(cell),
            metadata={"batch_size": chunk or count},
            wall_time_s=seconds / count,
            peak_memory_bytes=None,
        )
        for index in range(count)
    ]


async def test_it_keeps_the_largest_size_that_still_gains_five_percent() -> None:
    sizer = BatchSizer(max_batch_size=8, enabled=True, store=None, device="cpu:test")
    asked = []
    # images/s: 8 -> 8/2.0 = 4.0; 4 -> 4/1.1 = 3.64 (8 gains 10% over 4: keep 8)
    for count, seconds in [(8, 2.0), (4, 1.1)]:
        asked.append(sizer.size_for(CELL))
        choice = await sizer.observe(count, images(count, seconds))
    assert asked == [8, 4]
    assert choice is not None and choice.batch_size == 8 and choice.probed_up_to == 8
    assert sizer.size_for(CELL) == 8 and sizer.probe_batches == 2


async def test_it_goes_down_while_halving_costs_under_five_percent() -> None:
    sizer = BatchSizer(max_batch_size=8, enabled=True, store=None, device="cpu:test")
    # images/s: 8 -> 4.0, 4 -> 3.9 (8 gains 2.6%: go on), 2 -> 3.0 (4 gains 30%: keep 4)
    outcomes = []
    for count, seconds in [(8, 2.0), (4, 4 / 3.9), (2, 2 / 3.0)]:
        assert sizer.size_for(CELL) == count
        outcomes.append(await sizer.observe(count, images(count, seconds)))
    assert outcomes[:2] == [None, None]
    assert outcomes[2] is not None and outcomes[2].batch_size == 4
    assert sizer.planned_size(CELL) == 4 and sizer.planned_size({**CELL, "width": 128}) == 8


async def test_size_one_wins_when_nothing_larger_helps() -> None:
    sizer = BatchSizer(max_batch_size=2, enabled=True, store=None, device="cpu:test")
    assert sizer.size_for(CELL) == 2
    assert await sizer.observe(2, images(2, 2.0)) is None  # 1.0 images/s
    assert sizer.size_for(CELL) == 1
    choice = await sizer.observe(1, images(1, 1.0))  # 1.0 images/s: 2 gains nothing
    assert choice is not None and choice.batch_size == 1


async def test_a_short_batch_measures_nothing() -> None:
    sizer = BatchSizer(max_batch_size=4, enabled=True, store=None, device="cpu:test")
    assert sizer.size_for(CELL) == 4
    assert await sizer.observe(3, images(3, 0.1)) is None  # the queue had only 3 such cells
    assert sizer.size_for(CELL) == 4, "still probing the bound"


async def test_out_of_memory_makes_what_fit_the_top() -> None:
    sizer = BatchSizer(max_batch_size=8, enabled=True, store=None, device="cpu:test")
    assert sizer.size_for(CELL) == 8
    # The provider split the 8 into chunks of 2 after 8 (and 4) ran out of memory: 8 images in 2.0 s.
    assert await sizer.observe(8, images(8, 2.0, chunk=2)) is None
    assert sizer.size_for(CELL) == 1, "below what fit"
    choice = await sizer.observe(1, images(1, 0.5))  # 2.0 images/s against 4.0 at 2
    assert choice is not None and choice.batch_size == 2


async def test_disabled_is_always_the_bound() -> None:
    sizer = BatchSizer(max_batch_size=4, enabled=False, store=None)
    assert sizer.size_for(CELL) == 4 and sizer.planned_size(CELL) == 4
    assert await sizer.observe(4, images(4, 1.0)) is None and sizer.probe_batches == 0


async def test_choices_persist_and_a_higher_bound_probes_again_only_where_the_bound_stopped_it(
    tmp_path: Path,
) -> None:
    async with await Store.open(tmp_path / "db.sqlite3") as store:
        first = BatchSizer(max_batch_size=2, enabled=True, store=store.batch_sizes, device="cpu:test")
        for count, seconds in [(2, 1.0), (1, 1.0)]:  # 2.0 vs 1.0 images/s: keep 2, the bound
            assert first.size_for(CELL) == count
            await first.observe(count, images(count, seconds))
        small = {**CELL, "width": 32}
        for count, seconds in [(2, 1.0), (1, 0.5)]:  # equal: keep 1, below the bound
            assert first.size_for(small) == count
            await first.observe(count, images(count, seconds, cell=small))

        same_bound = BatchSizer(max_batch_size=2, enabled=True, store=store.batch_sizes, device="cpu:test")
        await same_bound.load()
        assert same_bound.size_for(CELL) == 2 and same_bound.size_for(small) == 1
        assert same_bound.probe_batches == 0

        lower = BatchSizer(max_batch_size=1, enabled=True, store=store.batch_sizes, device="cpu:test")
        await lower.load()
        assert lower.size_for(CELL) == 1 and lower.probe_batches == 0, "never above the bound"

        higher = BatchSizer(max_batch_size=4, enabled=True, store=store.batch_sizes, device="cpu:test")
        await higher.load()
        assert higher.size_for(small) == 1 and higher.probe_batches == 0
        assert higher.size_for(CELL) == 4 and higher.probe_batches == 1, "2 was the old bound: probe again"

        other_device = BatchSizer(max_batch_size=2, enabled=True, store=store.batch_sizes, device="cuda:test")
        await other_device.load()
        assert other_device.size_for(small) == 2 and other_device.probe_batches == 1
