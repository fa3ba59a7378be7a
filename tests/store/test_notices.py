"""Takedown storage on SQLite and PostgreSQL: parties, the notice state machine, due notices, the evidence chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.store.evidence import GENESIS

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _case_with_finding(session: Session) -> tuple[int, int]:
    case = store.create_case(session, "c")
    finding, _ = store.record_finding(session, case.id, "https://bad.example/x.jpg", "media", evidence={})
    return case.id, finding.id


def _draft(session: Session, case_id: int, finding_id: int | None = None, **kw: object) -> store.NoticeInfo:
    return store.create_notice(
        session, case_id, "takeitdown", subject="s", body="b", data={"k": 1},
        urls=[("https://bad.example/x.jpg", finding_id), ("https://bad.example/x.jpg", finding_id)], now=T0, **kw,
    )


def test_party_upsert_keeps_one_row_per_key(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        a = store.upsert_party(session, "host", "host:rdap:NET-1", "Host A", email="abuse@a.example", source="rdap",
                               resolution=[{"step": "rdap", "status": 200}])
        b = store.upsert_party(session, "host", "host:rdap:NET-1", "Host A2", email=None, web_form="https://a/f")
        assert a.id == b.id and b.name == "Host A2" and b.email is None and b.resolution == []
        assert store.get_party_by_key(session, "host:rdap:NET-1") == b
        assert [p.id for p in store.list_parties(session, kind="host")] == [a.id]
        with pytest.raises(store.InvalidInput):
            store.upsert_party(session, "pirate", "k", "n")


def test_notice_lifecycle_and_transitions(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        case_id, finding_id = _case_with_finding(session)
        notice = _draft(session, case_id, finding_id)
        assert notice.state == "drafted" and notice.data == {"k": 1}
        urls = store.notice_urls(session, notice.id)
        assert [(u.url, u.finding_id, u.status) for u in urls] == [("https://bad.example/x.jpg", finding_id, "listed")]
        with pytest.raises(store.InvalidTransition) as info:
            store.transition(session, notice.id, "removed", now=T0)
        assert "drafted" in str(info.value) and "sent" in str(info.value)
        queued = store.transition(session, notice.id, "queued", error="SMTP down", now=T0)
        assert queued.attempts == 1 and queued.last_error == "SMTP down"
        sent = store.transition(session, notice.id, "sent", now=T0, due_at=T0 + timedelta(hours=48), message_id="<m@x>")
        assert sent.attempts == 2 and sent.last_error is None and sent.sent_at == T0 and sent.message_id == "<m@x>"
        assert store.due_notices(session, T0 + timedelta(hours=47)) == []
        assert [n.id for n in store.due_notices(session, T0 + timedelta(hours=48))] == [notice.id]
        store.transition(session, notice.id, "expired", now=T0 + timedelta(hours=49))
        closed = store.transition(session, notice.id, "escalated", now=T0 + timedelta(hours=50))
        assert closed.closed_at == T0 + timedelta(hours=50)
        kinds = [e.kind for e in store.list_notice_events(session, notice.id)]
        assert kinds == ["drafted", "queued", "sent", "expired", "escalated"]
        assert store.list_notice_events(session, notice.id)[2].detail["from"] == "queued"
        assert [n.id for n in store.notices_for_url(session, case_id, "https://bad.example/x.jpg")] == [notice.id]
        assert store.set_url_status(session, notice.id, "https://bad.example/x.jpg", "removed", checked_at=T0)
        assert store.notice_urls(session, notice.id)[0].status == "removed"
        assert store.count_notices(session, case_id) == {"escalated": 1}


def test_bad_input_is_refused_by_name(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        case_id, _ = _case_with_finding(session)
        for kwargs, field in (
            ({"urls": []}, "urls"),
            ({"basis": "magic"}, "basis"),
            ({"case_id": 999}, "case_id"),
            ({"urls": [("https://x.example/", 12345)]}, "finding_id"),
            ({"subject": "x\x00y"}, "subject"),
        ):
            args = {"case_id": case_id, "basis": "dmca", "subject": "s", "body": "b", "data": {},
                    "urls": [("https://x.example/", None)], **kwargs}
            with pytest.raises(store.InvalidInput) as info:
                store.create_notice(session, **args)  # type: ignore[arg-type]
            assert info.value.field == field
        assert store.get_notice(session, 2**70) is None
        with pytest.raises(store.UnknownNotice):
            store.transition(session, 424242, "sent")
        with pytest.raises(store.InvalidInput):
            store.transition(session, 1, "flying")


def test_evidence_chain_verifies_and_detects_tampering(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        case_id, _ = _case_with_finding(session)
        other = store.create_case(session, "other").id
        assert store.verify_evidence(session, case_id) == store.EvidenceCheck(True, 0, GENESIS)
        entries = [
            store.append_evidence(session, case_id, "note", {"n": i, "text": "é ✓"}, at=T0 + timedelta(seconds=i))
            for i in range(5)
        ]
        store.append_evidence(session, other, "note", {"n": 0})
        assert entries[0].prev_hash == GENESIS and entries[1].prev_hash == entries[0].hash
        assert [e.position for e in store.list_evidence(session, case_id)] == [1, 2, 3, 4, 5]
        check = store.verify_evidence(session, case_id)
        assert check.ok and check.entries == 5 and check.head == entries[-1].hash
        assert store.evidence_head(session, case_id) == entries[-1].hash
        with pytest.raises(store.UnknownCase):
            store.append_evidence(session, 9999, "note", {})
    head = entries[-1].hash

    # Each tampering is rolled back after checking so the next starts from an intact log.
    for sql, bad, reason in (
        ("UPDATE evidence_log SET payload = 'changed' WHERE position = 3", 3, "changed"),
        ("UPDATE evidence_log SET kind = 'fetch' WHERE position = 2", 2, "changed"),
        (f"DELETE FROM evidence_log WHERE position = 4 AND case_id = {case_id}", 4, "missing"),
        (f"DELETE FROM evidence_log WHERE position = 5 AND case_id = {case_id}", 5, "expected head"),
    ):
        session = sessions()
        try:
            session.begin()
            session.execute(text(sql + ("" if "case_id" in sql else f" AND case_id = {case_id}")))
            check = store.verify_evidence(session, case_id, expected_head=head)
        finally:
            session.rollback()
            session.close()
        assert not check.ok and check.first_bad_position == bad and reason in check.reason, (sql, check)
    with sessions.begin() as session:
        assert store.verify_evidence(session, case_id, expected_head=head).ok
        assert store.verify_evidence(session, other).ok


def test_relinked_forgery_is_caught(sessions: sessionmaker[Session]) -> None:
    """Rewriting an entry and recomputing its own hash still breaks the next entry's link."""
    from takeback.store.evidence import entry_hash

    with sessions.begin() as session:
        case_id, _ = _case_with_finding(session)
        for i in range(3):
            store.append_evidence(session, case_id, "note", {"n": i}, at=T0)
    with sessions.begin() as session:
        e = store.list_evidence(session, case_id)[1]
        forged = entry_hash(case_id, 2, e.at, "note", '{"n":42}', e.prev_hash)
        session.execute(text("UPDATE evidence_log SET payload = :p, hash = :h WHERE case_id = :c AND position = 2"),
                        {"p": '{"n":42}', "h": forged, "c": case_id})
        check = store.verify_evidence(session, case_id)
        assert not check.ok and check.first_bad_position == 3 and "link" in check.reason


def test_finding_parties_and_intake(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _, finding_id = _case_with_finding(session)
        host = store.upsert_party(session, "host", "host:x", "Host", email="a@h.example")
        registrar = store.upsert_party(session, "registrar", "registrar:x", "Reg")
        store.link_finding_party(session, finding_id, host.id, "host", at=T0)
        store.link_finding_party(session, finding_id, registrar.id, "registrar", at=T0 + timedelta(seconds=1))
        store.link_finding_party(session, finding_id, host.id, "host", at=T0 + timedelta(seconds=2))  # refresh
        assert [p.id for p in store.finding_parties(session, finding_id)] == [registrar.id, host.id]
        with pytest.raises(store.InvalidInput):
            store.link_finding_party(session, 10**9, host.id, "host")

        intake = store.create_intake(session, "TID-abc", {"k": "v"}, [("pdq", "0" * 64)], received_at=T0,
                                     due_at=T0 + timedelta(hours=48))
        assert intake.status == "received" and intake.signals == [("pdq", "0" * 64)]
        assert store.get_intake_by_reference(session, "TID-abc") == intake
        assert store.get_intake_by_reference(session, "x" * 100) is None
        decided = store.decide_intake(session, intake.id, "accepted", at=T0 + timedelta(hours=1), signals_added=1)
        assert decided.status == "accepted" and decided.decided_at == T0 + timedelta(hours=1)
        with pytest.raises(store.InvalidTransition):
            store.decide_intake(session, intake.id, "rejected", at=T0)
        assert store.list_intake(session, status="received") == []
        assert [i.id for i in store.list_intake(session, status="accepted")] == [intake.id]
