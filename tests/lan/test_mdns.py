"""The advertisement, found by a real zeroconf browser on the loopback interface only."""

from __future__ import annotations

import os

from cauldron_client.discovery import discover

from cauldrond.daemon import Daemon
from cauldrond.discovery.mdns import Advertiser
from tests.conftest import token_of
from tests.lan.conftest import access_of, local_call, mdns_name
from tests.waiting import until


async def test_the_daemon_is_found_with_its_txt_and_no_secret(lan_daemon: Daemon) -> None:
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    found = await discover(timeout=2.5, interfaces=["127.0.0.1"])
    (daemon,) = [d for d in found if d.name == mdns_name(lan_daemon)]
    tls = access_of(lan_daemon).tls
    assert tls is not None
    assert daemon.port == lan_daemon.frontend.lan_port  # type: ignore[union-attr]
    assert daemon.addresses == ["127.0.0.1"]
    assert daemon.tls and daemon.api == "1" and daemon.fingerprint == tls.fingerprint
    assert set(daemon.properties) == {"api", "version", "tls", "fp"}
    everything = " ".join([daemon.name, *daemon.properties, *daemon.properties.values()])
    assert token_of(lan_daemon) not in everything and code not in everything


async def test_nothing_is_advertised_without_lan(daemon: Daemon) -> None:
    found = await discover(timeout=1.5, interfaces=["127.0.0.1"])
    assert not [d for d in found if d.name.startswith(f"lan-test-{os.getpid()}") or d.port == daemon.bound_port]


async def test_the_advertisement_is_withdrawn_on_stop(lan_daemon: Daemon) -> None:
    name = mdns_name(lan_daemon)
    assert [d.name for d in await discover(timeout=2.0, interfaces=["127.0.0.1"])].count(name) == 1
    await lan_daemon.stop()
    assert name not in [d.name for d in await discover(timeout=1.5, interfaces=["127.0.0.1"])]


async def test_a_changed_address_is_re_announced() -> None:
    addresses = [["127.0.0.1"]]
    advertiser = Advertiser(
        f"moving-box-{os.getpid()}",
        7861,
        "ab" * 32,
        interfaces=["127.0.0.1"],
        addresses=lambda: addresses[-1],
        poll_s=0.2,
    )
    await advertiser.start()
    try:
        (first,) = [d for d in await discover(timeout=1.5, interfaces=["127.0.0.1"]) if d.name == advertiser.instance]
        assert first.addresses == ["127.0.0.1"]
        addresses.append(["127.0.0.1", "10.9.8.7"])  # DHCP gave the box another address

        async def re_announced() -> bool:
            found = [d for d in await discover(timeout=1.5, interfaces=["127.0.0.1"]) if d.name == advertiser.instance]
            return len(found) == 1 and sorted(found[0].addresses) == ["10.9.8.7", "127.0.0.1"]

        assert await until(re_announced, timeout=30)
    finally:
        await advertiser.stop()
