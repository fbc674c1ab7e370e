"""PairingCodes on its own clock: a code works once and within its lifetime, and a refusal says why for an hour
(within a bounded memory), after which a dead code reads as wrong again."""

from __future__ import annotations

from cauldrond.web.pairing import MAX_REMEMBERED, PairingCodes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_is_ok_once_then_used_then_forgotten() -> None:
    clock = Clock()
    codes = PairingCodes(ttl_s=60, clock=clock, remember_s=3600)
    code, ttl = codes.create()
    assert ttl == 60 and len(code) == 8
    assert codes.redeem(code.lower()[:4] + "-" + code[4:]) == "ok"  # typed in lower case with a dash
    assert codes.redeem(code) == "used"
    clock.now += 3599
    assert codes.redeem(code) == "used"
    clock.now += 2
    assert codes.redeem(code) == "wrong"


def test_a_code_expires_at_its_ttl_and_reads_expired_for_an_hour_after() -> None:
    clock = Clock()
    codes = PairingCodes(ttl_s=60, clock=clock, remember_s=3600)
    code, _ = codes.create()
    clock.now += 60  # the lifetime is [created, created + 60)
    assert codes.redeem(code) == "expired"
    clock.now += 3599  # an hour after it expired, less a second
    assert codes.redeem(code) == "expired"
    clock.now += 1
    assert codes.redeem(code) == "wrong"


def test_wrong_codes_never_enter_the_memory_and_the_memory_is_bounded() -> None:
    clock = Clock()
    codes = PairingCodes(ttl_s=60, clock=clock)
    assert codes.redeem("AAAAAAAA") == "wrong"
    assert codes.redeem("AAAAAAAA") == "wrong"
    first, _ = codes.create()
    assert codes.redeem(first) == "ok"
    for _ in range(MAX_REMEMBERED):  # bounded: MAX_REMEMBERED codes, each used once
        assert codes.redeem(codes.create()[0]) == "ok"
    assert codes.redeem(first) == "wrong"  # the oldest dead code was dropped to make room
    assert codes.remembered == MAX_REMEMBERED
