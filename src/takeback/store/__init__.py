"""Storage: SQLAlchemy models, Alembic migrations shipped in the package, and repositories.

Repositories are plain functions taking a ``Session`` and returning frozen dataclasses (``records``).  They flush
but never commit: the caller owns the transaction (``with factory.begin() as session: ...``).  Everything below
is importable from ``takeback.store`` directly.

Errors (``errors``, all ``StoreError``): BankExists · UnknownBank · UnknownClient · UnknownWebhook · InvalidInput
(also a ValueError; ``.field``/``.message``): text with NUL characters or over its column's length, integers over
32 bits — refused up front so SQLite and PostgreSQL behave alike (PostgreSQL would raise DataError).  Ids that
cannot exist (not an int, <= 0, beyond the column's range) are simply "not found", never a database error.

Engine (``db``): make_engine(url) · session_factory(engine, *, read_only=False) · upgrade(url|engine, revision="head")
  · downgrade(url|engine, revision="base") · open_store(settings) -> (engine, session_factory)
Cases/banks (``banks``): create_case · get_case · list_cases ·
  create_bank(session, name, description="", *, case_id=None, grant_to=None) -> BankInfo (raises BankExists) ·
  get_bank(session, id) · get_bank_by_name(session, name) · get_banks_by_names(session, names) -> {name: BankInfo} ·
  list_banks(session, client_id=None) · delete_bank(session, id) -> bool (journals ONE removal, signal_id None)
Signals (``signals``): add_signals(session, bank_id, [(type, value, quality, note)]) -> AddResult(added, duplicates)
  (raises UnknownBank) · remove_signals(session, bank_id, ids) -> list[int] removed ·
  get_signals(session, ids) -> {id: StoredSignal} · list_signals(session, bank_id, after_id=0, limit=1000) ·
  iter_signals(session, after_id=0, chunk=50_000, *, bank_id=None) -> Iterator[list[StoredSignal]] ·
  iter_signal_rows(session, after_id=0, chunk=50_000) -> Iterator[list[(id, bank_id, type, value)]] (fast loading) ·
  count_signals(session, bank_id=None) · max_signal_id(session) ·
  removals_since(session, seq, limit=None) -> ([(signal_id | None, bank_id)], last_seq) · last_removal_seq(session)
Clients (``clients``): create_client(session, name, scopes, *, rate_limit_per_minute=None, bank_ids=())
  -> (ClientInfo, key) · authenticate(session, key) -> ClientInfo | None · get_client · list_clients(session, *,
  include_revoked=True) · count_clients(session, *, scope=None, include_revoked=False) · revoke_client -> bool ·
  grant_bank(session, client_id, bank_id) -> bool (raises UnknownClient/UnknownBank) · ungrant_bank -> bool ·
  client_bank_ids(session, client_id) -> frozenset[int]
Webhooks (``webhooks``): create_webhook(session, client_id, url, secret=None) · get_webhook ·
  list_webhooks(session, client_id=None, *, active_only=False) · set_webhook_active · delete_webhook(session, id, *,
  client_id=None) -> bool · create_delivery(session, webhook_id, event_id, payload) -> DeliveryInfo ·
  update_delivery(session, id, *, status=None, attempts=None, response_status=UNSET, last_error=UNSET) ·
  get_delivery · list_deliveries(session, webhook_id, *, status=None, limit=100) (newest first) ·
  pending_deliveries(session, *, limit=100) (oldest first)
Findings (``findings``, ``case_names``; discover): record_finding · record_check · get_finding · get_finding_by_url ·
  list_findings · count_findings · findings_due · list_finding_events · url_key · start/update/get/list_crawl_run(s) ·
  add_case_name · list_case_names · remove_case_name
Takedown (``parties``, ``notices``, ``evidence``): upsert_party · get_party(_by_key) · list_parties · create_notice ·
  get_notice · list_notices · notice_urls · transition (state machine) · due_notices · append_evidence · verify_evidence
"""

from takeback.store.banks import (
    create_bank,
    create_case,
    delete_bank,
    get_bank,
    get_bank_by_name,
    get_banks_by_names,
    get_case,
    list_banks,
    list_cases,
)
from takeback.store.clients import (
    SCOPES,
    authenticate,
    client_bank_ids,
    count_clients,
    create_client,
    get_client,
    grant_bank,
    list_clients,
    revoke_client,
    ungrant_bank,
)
from takeback.store.db import downgrade, make_engine, open_store, session_factory, upgrade
from takeback.store.errors import BankExists, InvalidInput, StoreError, UnknownBank, UnknownClient, UnknownWebhook
from takeback.store.records import (
    AddResult,
    BankInfo,
    CaseInfo,
    ClientInfo,
    DeliveryInfo,
    StoredSignal,
    WebhookInfo,
)
from takeback.store.signals import (
    add_signals,
    count_signals,
    get_signals,
    iter_signal_rows,
    iter_signals,
    last_removal_seq,
    list_signals,
    max_signal_id,
    removals_since,
    remove_signals,
    value_digest,
)
from takeback.store.webhooks import (
    UNSET,
    create_delivery,
    create_webhook,
    delete_webhook,
    get_delivery,
    get_webhook,
    list_deliveries,
    list_webhooks,
    pending_deliveries,
    set_webhook_active,
    update_delivery,
)

__all__ = [
    "SCOPES",
    "UNSET",
    "AddResult",
    "BankExists",
    "BankInfo",
    "CaseInfo",
    "ClientInfo",
    "DeliveryInfo",
    "InvalidInput",
    "StoreError",
    "StoredSignal",
    "UnknownBank",
    "UnknownClient",
    "UnknownWebhook",
    "WebhookInfo",
    "add_signals",
    "authenticate",
    "client_bank_ids",
    "count_clients",
    "count_signals",
    "create_bank",
    "create_case",
    "create_client",
    "create_delivery",
    "create_webhook",
    "delete_bank",
    "delete_webhook",
    "downgrade",
    "get_bank",
    "get_bank_by_name",
    "get_banks_by_names",
    "get_case",
    "get_client",
    "get_delivery",
    "get_signals",
    "get_webhook",
    "grant_bank",
    "iter_signal_rows",
    "iter_signals",
    "last_removal_seq",
    "list_banks",
    "list_cases",
    "list_clients",
    "list_deliveries",
    "list_signals",
    "list_webhooks",
    "make_engine",
    "max_signal_id",
    "open_store",
    "pending_deliveries",
    "removals_since",
    "remove_signals",
    "revoke_client",
    "session_factory",
    "set_webhook_active",
    "ungrant_bank",
    "update_delivery",
    "upgrade",
    "value_digest",
]

from takeback.store.case_names import CaseNameInfo, add_case_name, list_case_names, remove_case_name
from takeback.store.findings import (
    CrawlRunInfo,
    FindingEventInfo,
    FindingInfo,
    count_findings,
    findings_due,
    get_crawl_run,
    get_finding,
    get_finding_by_url,
    list_crawl_runs,
    list_finding_events,
    list_findings,
    record_check,
    record_finding,
    start_crawl_run,
    update_crawl_run,
    url_key,
)

__all__ += [  # discover
    "CaseNameInfo", "CrawlRunInfo", "FindingEventInfo", "FindingInfo", "add_case_name", "count_findings",
    "findings_due", "get_crawl_run", "get_finding", "get_finding_by_url", "list_case_names", "list_crawl_runs",
    "list_finding_events", "list_findings", "record_check", "record_finding", "remove_case_name",
    "start_crawl_run", "update_crawl_run", "url_key",
]

from takeback.store.evidence import (  # noqa: E402 (after the discover block's __all__ +=)
    EvidenceCheck,
    EvidenceRecord,
    UnknownCase,
    append_evidence,
    count_evidence,
    evidence_digest,
    evidence_head,
    list_evidence,
    log_finding,
    verify_evidence,
)
from takeback.store.notices import (  # noqa: E402
    IntakeInfo,
    InvalidTransition,
    NoticeEventInfo,
    NoticeInfo,
    NoticeUrlInfo,
    UnknownNotice,
    add_notice_event,
    child_notices,
    count_notices,
    create_intake,
    create_notice,
    decide_intake,
    due_notices,
    get_intake,
    get_intake_by_reference,
    get_notice,
    list_intake,
    list_notice_events,
    list_notices,
    notice_urls,
    notices_for_url,
    notices_lacking_events,
    notices_to_recheck,
    queued_notices,
    reappeared_notices,
    set_url_status,
    transition,
)
from takeback.store.parties import (  # noqa: E402
    PartyInfo,
    finding_parties,
    get_party,
    get_party_by_key,
    link_finding_party,
    list_parties,
    upsert_party,
)

__all__ += [  # takedown
    "EvidenceCheck", "EvidenceRecord", "IntakeInfo", "InvalidTransition", "NoticeEventInfo", "NoticeInfo",
    "NoticeUrlInfo", "PartyInfo", "UnknownCase", "UnknownNotice", "add_notice_event", "append_evidence",
    "child_notices",
    "count_evidence", "count_notices", "create_intake", "create_notice", "decide_intake", "due_notices",
    "evidence_digest", "evidence_head", "finding_parties",
    "get_intake", "get_intake_by_reference", "get_notice", "get_party",
    "get_party_by_key", "link_finding_party", "list_evidence", "list_intake", "list_notice_events", "list_notices",
    "list_parties", "log_finding", "notice_urls", "notices_for_url", "notices_lacking_events", "notices_to_recheck",
    "queued_notices", "reappeared_notices",
    "set_url_status", "transition", "upsert_party", "verify_evidence",
]

from takeback.store.accounts import (  # noqa: E402
    AuditInfo,
    UiSessionInfo,
    UnknownUser,
    UserExists,
    UserInfo,
    add_member,
    audit,
    case_members,
    case_role,
    count_audit_since,
    create_ui_session,
    create_user,
    delete_ui_session,
    delete_user_sessions,
    get_ui_session,
    get_user,
    get_user_by_email,
    list_audit,
    list_users,
    mark_ui_session_verified,
    purge_expired_sessions,
    remove_member,
    update_user,
    user_cases,
)

__all__ += [  # accounts (dashboard)
    "AuditInfo", "UiSessionInfo", "UnknownUser", "UserExists", "UserInfo", "add_member", "audit", "case_members",
    "case_role", "count_audit_since", "create_ui_session", "create_user", "delete_ui_session", "delete_user_sessions",
    "get_ui_session", "get_user", "get_user_by_email", "list_audit", "list_users", "mark_ui_session_verified",
    "purge_expired_sessions", "remove_member", "update_user", "user_cases",
]
