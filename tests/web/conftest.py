"""An in-process takeback server per test, on SQLite and on PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from takeback.config import Settings
from takeback.web.app import create_app
from takeback.web.state import AppState

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def flip(hex_value: str, bits: int, start: int = 0) -> str:
    """The hash with `bits` bits flipped (starting at bit `start`): a near-duplicate at that Hamming distance."""
    value = int(hex_value, 16)
    for b in range(start, start + bits):
        value ^= 1 << b
    return f"{value:0{len(hex_value)}x}"


def random_pdq(seed: int | str) -> str:
    """A hash far (about 128 bits) from any other seed's: sha256 output looks uniformly random."""
    return hashlib.sha256(str(seed).encode()).hexdigest()


class Api:
    """A TestClient that sends one client's key."""

    def __init__(self, http: TestClient, key: str | None) -> None:
        self.http = http
        self.key = key

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers=self._headers(headers), **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


class Server:
    def __init__(self, app: Any, http: TestClient) -> None:
        self.app = app
        self.http = http

    @property
    def state(self) -> AppState:
        return self.app.state.takeback

    def client(self, scopes: list[str], banks: list[str] | None = None, rate: int = 100_000, name: str = "c") -> Api:
        ids = [self.state.store.bank_by_name(b).id for b in banks or []]  # type: ignore[union-attr]
        _, key = self.state.store.create_client(name, scopes, rate, ids)
        self.state.changed()
        return Api(self.http, key)

    def anonymous(self) -> Api:
        return Api(self.http, None)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str)
    return body["error"]["code"]


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "webhook_backoff_s": 0.0,
            "webhook_timeout_s": 5.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def start(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Server]]:
    """start(**settings) -> a running in-process server; stopped at the end of the test."""
    stack: list[TestClient] = []

    def run(app_kwargs: dict[str, Any] | None = None, **overrides: Any) -> Server:
        app = create_app(make_settings(**overrides), **(app_kwargs or {}))
        http = TestClient(app, raise_server_exceptions=False)
        http.__enter__()
        stack.append(http)
        return Server(app, http)

    yield run
    for http in reversed(stack):
        http.__exit__(None, None, None)


@pytest.fixture
def server(start: Callable[..., Server]) -> Server:
    return start()


@pytest.fixture
def admin(server: Server) -> Api:
    return server.client(["admin"], name="admin")

