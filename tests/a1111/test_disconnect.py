"""A client that goes away mid-request: the experiment runs to its end, its images are kept, nothing is queued
twice or left behind (docs/a1111-api.md, "When the client goes away")."""

from __future__ import annotations

import json
import socket
from typing import Any

import requests

from tests.a1111.conftest import DaemonThread, a1111_experiments, poll

DEADLINE_S = 180.0


def send_and_leave_open(daemon: DaemonThread, body: dict[str, Any]) -> socket.socket:
    """A raw HTTP/1.1 request on a socket the test closes itself, so the disconnect is a real one."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1:{daemon.daemon.bound_port}\r\n"
        f"Authorization: {daemon.basic()['Authorization']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", daemon.daemon.bound_port), timeout=DEADLINE_S)
    connection.sendall(head + payload)
    return connection


def test_a_client_that_leaves_does_not_orphan_or_duplicate_its_request(a1111: DaemonThread) -> None:
    before = {e["id"] for e in a1111_experiments(a1111)}
    body = {"prompt": "left behind", "seed": 11, "steps": 2, "width": 64, "height": 64, "n_iter": 2}
    # The queue is held while the client leaves, so it leaves with its request certainly unfinished.
    a1111.rpc("queue.pause")
    connection = send_and_leave_open(a1111, body)

    def created() -> list[dict[str, Any]]:
        return [e for e in a1111_experiments(a1111) if e["id"] not in before]

    try:
        new = poll(created, timeout=DEADLINE_S)
    finally:
        connection.close()  # the client leaves while its request is queued
        a1111.rpc("queue.resume")
    assert len(new) == 1
    experiment_id = new[0]["id"]

    def ended() -> dict[str, Any] | None:
        shown: dict[str, Any] = a1111.rpc("experiments.get", experiment_id=experiment_id)
        counts = shown["experiment"]["counts"]
        return shown if counts["queued"] == 0 and counts["running"] == 0 else None

    shown = poll(ended, timeout=DEADLINE_S)
    counts = shown["experiment"]["counts"]
    assert counts["done"] == counts["total"] == 2  # ran to its end, both images kept
    assert [job["params"]["seed"] for job in shown["jobs"]] == [11, 12]
    assert all(job["image_id"] is not None for job in shown["jobs"])
    # Exactly one experiment for the one request, and nothing left in the queue.
    assert [e["id"] for e in a1111_experiments(a1111) if e["id"] not in before] == [experiment_id]
    queue = a1111.rpc("queue.list")
    assert queue["total"] == 0 and queue["running"] == []

    # The API still answers, and reports idle once the abandoned handler has seen the end.
    def idle() -> bool:
        reply = requests.get(f"{a1111.api}/progress", auth=("u", a1111.token), timeout=30)
        return bool(reply.status_code == 200 and reply.json()["state"]["job_count"] == 0)

    assert poll(idle, timeout=DEADLINE_S)
