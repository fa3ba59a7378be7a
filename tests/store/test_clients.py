"""API clients: keys stored hashed only, authentication, revocation, scopes, grants."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.store import clients


def _all_text(engine: Engine) -> str:
    """Every value of every column of every table, as one string (where a leaked key would show)."""
    with engine.connect() as conn:
        names = ["cases", "banks", "signals", "signal_removals", "api_clients", "client_banks", "webhooks"]
        rows = [conn.execute(text(f"SELECT * FROM {name}")).all() for name in names]
    return "\n".join(repr(r) for table in rows for r in table)


def test_key_format_and_authentication(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        client, key = store.create_client(session, "platform", "match manage", rate_limit_per_minute=120)
    prefix, secret = key.removeprefix("tbk_").split("_", 1)
    assert key.startswith("tbk_") and prefix == client.key_prefix and len(prefix) == clients.KEY_PREFIX_LENGTH
    assert len(secret) >= 43  # 256 random bits, base64url
    assert client.scopes == {"match", "manage"} and client.rate_limit_per_minute == 120 and not client.revoked
    with sessions.begin() as session:
        assert store.authenticate(session, key) == client
        assert store.get_client(session, client.id) == client


def test_keys_are_stored_hashed_never_in_plaintext(engine: Engine, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        client, key = store.create_client(session, "platform", "admin")
    dump = _all_text(engine)
    secret = key.split("_", 2)[2]
    assert key not in dump and secret not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump
    assert client.key_prefix in dump  # the lookup prefix is not secret


def test_wrong_malformed_and_unknown_keys_fail(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        client, key = store.create_client(session, "platform", "match")
    prefix = client.key_prefix
    bad = [
        "",
        "tbk_",
        "tbk__",
        key[:-1],
        key + "x",
        key.upper(),
        key.replace("tbk_", "tbx_"),
        f"tbk_{prefix}_",
        f"tbk_{prefix}_{'A' * 43}",
        f"tbk_{'0' * 12}_{key.split('_', 2)[2]}",
        f"tbk_{prefix[:-1]}_{key.split('_', 2)[2]}",
        "tbk_zzzzzzzzzzzz_secret",
        "tbk_" + prefix + "_\x00",
        "tbk_\x00" * 3,
        key + "a" * 500,
        " " + key,
    ]
    with sessions.begin() as session:
        for candidate in bad:
            assert store.authenticate(session, candidate) is None, candidate
        assert store.authenticate(session, None) is None  # type: ignore[arg-type]
        assert store.authenticate(session, key) == client


def test_revoked_keys_fail(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        doomed, doomed_key = store.create_client(session, "doomed", "match")
        kept, kept_key = store.create_client(session, "kept", "match")
    with sessions.begin() as session:
        assert store.revoke_client(session, doomed.id) is True
        assert store.revoke_client(session, doomed.id) is False
        assert store.revoke_client(session, 999_999) is False
    with sessions.begin() as session:
        assert store.authenticate(session, doomed_key) is None
        assert store.authenticate(session, kept_key) == kept
        revoked = store.get_client(session, doomed.id)
        assert revoked is not None and revoked.revoked and revoked.revoked_at is not None
        assert [c.id for c in store.list_clients(session)] == [doomed.id, kept.id]
        assert [c.id for c in store.list_clients(session, include_revoked=False)] == [kept.id]


def test_scopes_are_validated(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for scopes in ["", [], "match superuser", ["root"], "  "]:
            with pytest.raises(store.InvalidInput):
                store.create_client(session, "x", scopes)
        with pytest.raises(ValueError):
            store.create_client(session, "x", "match", rate_limit_per_minute=0)
        client, _ = store.create_client(session, "x", ["admin", "match", "admin"])
        assert client.scopes == {"admin", "match"}


def test_count_clients_for_bootstrap(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert store.count_clients(session) == 0
        assert store.count_clients(session, scope="admin") == 0
        admin, _ = store.create_client(session, "admin", "admin")
        store.create_client(session, "m", "match")
        assert store.count_clients(session) == 2
        assert store.count_clients(session, scope="admin") == 1
        store.revoke_client(session, admin.id)
        assert store.count_clients(session, scope="admin") == 0
        assert store.count_clients(session, scope="admin", include_revoked=True) == 1


def test_grants(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        a = store.create_bank(session, "a")
        b = store.create_bank(session, "b")
        client, _ = store.create_client(session, "platform", "match", bank_ids=[a.id])
        assert store.client_bank_ids(session, client.id) == {a.id}
        assert store.grant_bank(session, client.id, b.id) is True
        assert store.grant_bank(session, client.id, b.id) is False
        assert store.client_bank_ids(session, client.id) == {a.id, b.id}
        assert store.ungrant_bank(session, client.id, a.id) is True
        assert store.ungrant_bank(session, client.id, a.id) is False
        assert store.client_bank_ids(session, client.id) == {b.id}
        with pytest.raises(store.UnknownBank):
            store.grant_bank(session, client.id, 424242)
        with pytest.raises(store.UnknownClient):
            store.grant_bank(session, 424242, a.id)
        with pytest.raises(store.UnknownBank):
            store.create_client(session, "p2", "match", bank_ids=[424242])
