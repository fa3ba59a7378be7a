"""A small HTTP client for the takeback match service (`takeback serve`), used by the CLI.

It speaks the `/v1` JSON API with httpx and turns every failure into one of two named exceptions, so the CLI can
print one clear line instead of a traceback:

* `ServiceUnreachable` — nothing answered (connection refused, timeout, bad address);
* `ApiError` — the server answered with an error; carries the HTTP status and the server's machine-readable
  `code` and `message` from the error envelope ``{"error": {"code": ..., "message": ...}}``.

Only hashes ever travel: hashing media happens on the device (see `takeback.cli_service`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from takeback import __version__

DEFAULT_URL = "http://127.0.0.1:8700"
#: Generous: a large import or export runs inside one request.
DEFAULT_TIMEOUT_S = 300.0


class ServiceError(Exception):
    """Base class: a request to the match service did not succeed."""


class ServiceUnreachable(ServiceError):
    """No HTTP answer at all: the server is not running, the address is wrong, or it took too long."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the takeback server at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(ServiceError):
    """The server answered with an error status; `code` is the machine-readable reason from its error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        detail: Any = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.retry_after = retry_after


def _error_from_response(response: httpx.Response) -> ApiError:
    """Read the error envelope; fall back to the status line when the body is not one (e.g. a proxy's page)."""
    code, message, detail = f"http_{response.status_code}", response.reason_phrase or "error", None
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = str(err.get("code") or code)
        message = str(err.get("message") or message)
        detail = err.get("detail")
    elif isinstance(body, dict) and "detail" in body:  # a bare FastAPI/Starlette error
        detail = body["detail"]
        message = detail if isinstance(detail, str) else message
    elif response.text:
        message = " ".join(response.text.split())[:200]
    return ApiError(response.status_code, code, message, detail, response.headers.get("retry-after"))


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    """A list endpoint's items, whether the server wraps them (``{"banks": [...]}``) or not."""
    if isinstance(body, dict):
        body = body.get(key, body.get("items", []))
    return list(body) if isinstance(body, list) else []


class TakebackClient:
    """One connection pool to one server; use as a context manager.

    `http` lets a caller pass a ready `httpx.Client` (for example an in-process test client); the client then
    does not own it and does not close it.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        headers = {"User-Agent": f"takeback-cli/{__version__}", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._owned = http is None
        if http is None:
            try:
                http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, trust_env=False)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
                raise ServiceUnreachable(url, f"not a usable URL ({exc})") from None
        else:
            http.headers.update(headers)
        self._http = http

    def __enter__(self) -> TakebackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    # --- plumbing --------------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ServiceUnreachable(self.url, _connect_reason(exc)) from None
        except httpx.TimeoutException:
            raise ServiceUnreachable(self.url, "the server did not answer in time") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ServiceUnreachable(self.url, f"not a usable URL ({exc})") from None
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, f"{type(exc).__name__}: {exc or 'connection failed'}") from None
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, "bad_response", "the server's answer is not JSON") from None

    # --- service ---------------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/v1/health")

    # --- banks -----------------------------------------------------------------------------------------------------

    def create_bank(self, name: str, description: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if description:
            body["description"] = description
        return self._json("POST", "/v1/banks", json=body)

    def list_banks(self) -> list[dict[str, Any]]:
        return _items(self._json("GET", "/v1/banks"), "banks")

    def get_bank(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/banks/{_segment(name)}")

    def delete_bank(self, name: str) -> None:
        self._json("DELETE", f"/v1/banks/{_segment(name)}")

    def add_signals(self, bank: str, signals: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """POST signals (`{"signal_type", "value", "quality"?, "note"?}`); all-or-nothing on the server."""
        return self._json("POST", f"/v1/banks/{_segment(bank)}/signals", json={"signals": list(signals)})

    def import_file(self, bank: str, path: Path, fmt: str = "auto") -> dict[str, Any]:
        """Upload a hash-list file as it is; the server parses it and reports rejected lines."""
        with path.open("rb") as fh:
            files = {"file": (path.name, fh, "application/octet-stream")}
            return self._json("POST", f"/v1/banks/{_segment(bank)}/import", files=files, data={"format": fmt})

    def list_signals(self, bank: str, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        body = self._json("GET", f"/v1/banks/{_segment(bank)}/signals", params={"after_id": after_id, "limit": limit})
        return _items(body, "signals")

    def remove_signals(self, bank: str, ids: Sequence[int]) -> dict[str, Any]:
        return self._json("POST", f"/v1/banks/{_segment(bank)}/signals/delete", json={"ids": list(ids)})

    @contextmanager
    def export(self, bank: str, fmt: str = "takeback") -> Iterator[Iterator[bytes]]:
        """Stream a bank's export; yields an iterator of byte chunks (the file is never held in memory)."""
        path = f"/v1/banks/{_segment(bank)}/export"
        try:
            with self._http.stream("GET", path, params={"format": fmt}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from_response(response)
                yield response.iter_bytes()
        except httpx.ConnectError as exc:
            raise ServiceUnreachable(self.url, _connect_reason(exc)) from None
        except httpx.TimeoutException:
            raise ServiceUnreachable(self.url, "the server did not answer in time") from None
        except httpx.TransportError as exc:
            raise ServiceUnreachable(self.url, f"{type(exc).__name__}: {exc or 'connection failed'}") from None

    # --- matching --------------------------------------------------------------------------------------------------

    def match(
        self,
        signal_type: str,
        value: str,
        *,
        threshold: int | None = None,
        banks: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"signal_type": signal_type, "value": value}
        if threshold is not None:
            body["threshold"] = threshold
        if banks:
            body["banks"] = list(banks)
        return _items(self._json("POST", "/v1/match", json=body), "matches")

    def match_batch(
        self,
        queries: Sequence[dict[str, Any]],
        *,
        banks: Sequence[str] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """One list of matches per query, in query order (queries: `{"signal_type", "value", "threshold"?}`)."""
        body: dict[str, Any] = {"queries": list(queries)}
        if banks:
            body["banks"] = list(banks)
        results = _items(self._json("POST", "/v1/match/batch", json=body), "results")
        return [_items(r, "matches") for r in results]

    # --- clients (admin) -------------------------------------------------------------------------------------------

    def create_client(
        self,
        name: str,
        scopes: Sequence[str],
        banks: Sequence[str] | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if banks:
            body["banks"] = list(banks)
        if rate_limit_per_minute is not None:
            body["rate_limit_per_minute"] = rate_limit_per_minute
        return self._json("POST", "/v1/clients", json=body)

    def list_clients(self) -> list[dict[str, Any]]:
        return _items(self._json("GET", "/v1/clients"), "clients")

    def revoke_client(self, client_id: int) -> None:
        self._json("DELETE", f"/v1/clients/{client_id}")

    def grant_banks(self, client_id: int, banks: Sequence[str]) -> Any:
        return self._json("POST", f"/v1/clients/{client_id}/banks", json={"banks": list(banks)})


def _segment(name: str) -> str:
    """A bank name as one URL path segment (names may hold spaces or slashes)."""
    return quote(name, safe="")


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused (is `takeback serve` running?)"
    if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown host name"
    return f"could not connect ({exc})" if str(exc) else "could not connect"


def dumps(value: Any) -> str:
    """JSON for `--json` output: stable key order, readable."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
