"""The case's hash-chained evidence log holds what scans and re-checks saw, not only notice events: each scan
observation (found / seen, with the digest of its evidence and the content hashes) and each re-check that changed a
finding's status (removed, reopened).  On SQLite and PostgreSQL, against a loopback site with a planted copy."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.crawl import CrawlOptions
from takeback.discover.recheck import recheck_case
from takeback.discover.scan import scan_case
from tests.discover.crawl_site import BANKED, bank_case, html, jpeg
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer

OPTIONS = CrawlOptions(max_pages=5, max_depth=1, use_sitemaps=False)


def _log(sessions: sessionmaker[Session], case_id: int) -> list[store.EvidenceRecord]:
    with sessions() as session:
        assert store.verify_evidence(session, case_id).ok
        return store.list_evidence(session, case_id)


def test_scans_and_rechecks_are_in_the_evidence_log(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    case_id, _ = bank_case(sessions, names=())
    routes = {"/": html('<img src="/a.jpg">'), "/a.jpg": Reply(body=jpeg(BANKED), content_type="image/jpeg")}
    with WebServer(routes) as site:
        first = scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        [entry] = _log(sessions, case_id)
        assert entry.kind == "finding" and entry.payload["event"] == "found" and entry.payload["by"] == "scan"
        assert entry.payload["run_id"] == first.run_id and entry.payload["url"] == site.url("/a.jpg")
        with sessions() as session:
            finding = store.get_finding(session, entry.payload["finding_id"])
        assert finding is not None and entry.payload["evidence_sha256"] == store.evidence_digest(finding.evidence)

        second = scan_case(sessions, settings, case_id, [], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        seen = _log(sessions, case_id)[-1].payload
        assert (seen["event"], seen["run_id"]) == ("seen", second.run_id)

        recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)  # still there: no status change
        assert len(_log(sessions, case_id)) == 2
        site.routes["/a.jpg"] = Reply(status=404, body=b"gone", content_type="text/plain")
        recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        removed = _log(sessions, case_id)[-1]
        assert removed.kind == "finding_check" and removed.payload["event"] == "removed"
        assert (removed.payload["from"], removed.payload["status"], removed.payload["http_status"]) == (
            "open", "removed", 404)
        recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)  # still gone: nothing new
        assert len(_log(sessions, case_id)) == 3
        site.routes["/a.jpg"] = Reply(body=jpeg(BANKED, (280, 210), 70), content_type="image/jpeg")
        recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        back = _log(sessions, case_id)[-1]
        assert (back.kind, back.payload["event"], back.payload["from"]) == ("finding_check", "reopened", "removed")
    assert [e.kind for e in _log(sessions, case_id)] == ["finding", "finding", "finding_check", "finding_check"]
