"""Kill -9 of a real `takeback serve` in the middle of a burst of signatures from several threads: after restart,
every signature that was acknowledged (HTTP 202) is stored, and the counts equal the rows.  Re-sending the
acknowledged requests (a client retrying after the crash) adds nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from sqlalchemy import select

from takeback.config import Settings
from takeback.petition import pow as pow_mod
from takeback.petition.emails import email_key, normalise_email
from takeback.petition.service import derive_key
from takeback.store import petitions
from takeback.store.db import open_store
from takeback.store.models_petition import Signature
from tests.petition.served import SECRET, SLUG, create_petition, free_port, serve

THREADS = 6
PER_THREAD = 150
KILL_AFTER_ACKS = 200
SETTINGS = {
    "petition_send_mail": "false",
    "petition_ip_limit_per_minute": 0,
    "petition_network_limit_per_minute": 0,
    "petition_pow_max_number": 50,
    "petition_pow_expiry_s": 3600,
}


def bodies(petition_id: int) -> list[list[dict[str, object]]]:
    key = derive_key(SECRET, "pow")
    out = []
    for t in range(THREADS):
        mine = []
        for i in range(PER_THREAD):
            challenge = pow_mod.create_challenge(key, petition_id, max_number=50, expires_s=3600)
            mine.append(
                {
                    "name": f"Signer {t}-{i}",
                    "email": f"s{t}.{i}@example.org",
                    "country": ("FR", "DE", "BR")[i % 3],
                    "pow": pow_mod.encode_solution(challenge, pow_mod.solve(challenge)),
                    "idempotency_key": f"{t}-{i}",
                }
            )
        out.append(mine)
    return out


def test_kill9_mid_burst_loses_no_acknowledged_signature(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    petition_id = create_petition(data_dir)
    work = bodies(petition_id)
    port = free_port()
    server = serve(data_dir, port, **SETTINGS)
    acked: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    cut = [0]
    url = f"{server.url}/v1/petitions/{SLUG}/signatures"

    def signer(mine: list[dict[str, object]]) -> None:
        with httpx.Client(timeout=30, trust_env=False) as client:
            for body in mine:
                try:
                    response = client.post(url, json=body)
                except httpx.TransportError:
                    with lock:
                        cut[0] += 1
                    return  # the server died: this request was never acknowledged
                assert response.status_code == 202, response.text
                with lock:
                    acked.append(str(body["email"]))
                    if len(acked) >= KILL_AFTER_ACKS:
                        enough.set()

    threads = [threading.Thread(target=signer, args=(mine,)) for mine in work]
    try:
        for t in threads:
            t.start()
        assert enough.wait(60), "the burst never reached the kill point"
        server.kill9()
        for t in threads:
            t.join(60)
        with lock:
            acknowledged = list(acked)
        assert cut[0] >= 1, "the kill did not land mid-burst"  # some request was in flight when the server died
        assert len(acknowledged) < THREADS * PER_THREAD

        # Straight from the database, before the server starts again.
        engine, sessions = open_store(Settings(data_dir=data_dir))
        try:
            with sessions.begin() as session:
                stored = set(
                    session.execute(select(Signature.email_key).where(Signature.petition_id == petition_id)).scalars()
                )
                assert petitions.counter_table(session, petition_id) == petitions.recount(session, petition_id)
                assert petitions.get_counts(session, petition_id).pending == len(stored)
        finally:
            engine.dispose()
        missing = [e for e in acknowledged if email_key(normalise_email(e)) not in stored]
        assert missing == []

        server = serve(data_dir, port, **SETTINGS)
        counts = httpx.get(f"{server.url}/v1/petitions/{SLUG}/counts", trust_env=False).json()
        assert counts["pending"] == len(stored)
        # A client retrying every request it sent: the acknowledged ones are found, the rest stored once.
        with httpx.Client(timeout=30, trust_env=False) as client:
            for mine in work:
                for body in mine[:40]:
                    assert client.post(url, json=body).status_code == 202
        counts = httpx.get(f"{server.url}/v1/petitions/{SLUG}/counts", trust_env=False).json()
        expected = stored | {email_key(normalise_email(str(b["email"]))) for mine in work for b in mine[:40]}
        assert counts["pending"] == len(expected)
    finally:
        server.stop()
