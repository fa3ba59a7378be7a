"""The SSRF guard refuses every way of pointing a URL at the server itself or its private network."""

from __future__ import annotations

import pytest

from takeback.discover.urlguard import UnsafeURL, check_url, is_public_address, system_resolver


def fixed(*addresses: str):
    return lambda host, port: list(addresses)


def refuse(host: str, port: int) -> list[str]:
    raise OSError("no such host")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1.2.3:8080/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd00:ec2::254]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::7f00:1]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[::]/",
    ],
)
def test_private_literals_refused(url: str) -> None:
    with pytest.raises(UnsafeURL) as info:
        check_url(url, resolver=refuse)
    assert info.value.code == "unsafe_url"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pw@example.com/",
        "http://user@example.com/",
        "http:///nohost",
        "http://example.com:0/",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "",
        "http://" + "a" * 3000 + ".com/",
        "javascript:alert(1)",
    ],
)
def test_bad_shapes_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, resolver=fixed("93.184.216.34"))


def test_hostname_resolving_to_loopback_refused() -> None:
    with pytest.raises(UnsafeURL, match="non-public"):
        check_url("https://rebind.example.com/x", resolver=fixed("93.184.216.34", "127.0.0.1"))


def test_localhost_name_refused_with_real_resolver() -> None:
    with pytest.raises(UnsafeURL):
        check_url("http://localhost:8080/")
    with pytest.raises(UnsafeURL):
        check_url("http://LocalHost./")


def test_unresolvable_refused() -> None:
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example.com/", resolver=refuse)
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example.com/", resolver=fixed())


def test_public_allowed() -> None:
    checked = check_url("https://hooks.example.com/takeback?x=1", resolver=fixed("93.184.216.34", "2606:2800::1"))
    assert checked.host == "hooks.example.com"
    assert checked.port == 443
    assert checked.addresses == ("93.184.216.34", "2606:2800::1")
    assert check_url("http://8.8.8.8:8080/", resolver=refuse).port == 8080


def test_allow_private_keeps_shape_rules() -> None:
    assert check_url("http://127.0.0.1:9/", allow_private=True).addresses == ("127.0.0.1",)
    assert check_url("http://localhost:9/", allow_private=True, resolver=fixed("127.0.0.1")).host == "localhost"
    with pytest.raises(UnsafeURL):
        check_url("http://u:p@127.0.0.1/", allow_private=True)
    with pytest.raises(UnsafeURL):
        check_url("ftp://127.0.0.1/", allow_private=True)


def test_no_resolver_checks_literals_only() -> None:
    assert check_url("https://example.com/", resolver=None).addresses == ()
    with pytest.raises(UnsafeURL):
        check_url("https://10.1.1.1/", resolver=None)


def test_is_public_address() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:4700::1111")
    assert not is_public_address("not an address")
    assert not is_public_address("::ffff:169.254.169.254")
    assert not is_public_address("fe80::1%eth0")


def test_system_resolver_loopback() -> None:
    assert "127.0.0.1" in system_resolver("localhost", 80) or "::1" in system_resolver("localhost", 80)
