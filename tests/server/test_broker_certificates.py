"""The broker's CA and certificate: made once, kept across re-inits, reissued when names change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from server.broker.certificates import (
    RENEW_BEFORE_DAYS, SERVER_DAYS, CertificateError, certificate_names, ensure_ca, ensure_server_certificate,
)  # fmt: skip
from server.broker.config import BrokerOptions, OwnTls, init_broker

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_makes_a_ca_and_a_certificate_for_the_names_and_keeps_the_ca(tmp_path: Path) -> None:
    first = init_broker(tmp_path, BrokerOptions(), ["broker.example.org", "192.0.2.7"], now=NOW)
    assert first.issued and first.tls.ca == tmp_path / "tls" / "ca.crt"
    assert certificate_names(first.tls.cert) == ["broker.example.org", "192.0.2.7"]
    server, ca = cert(first.tls.cert), cert(first.tls.ca)
    assert server.issuer == ca.subject and server.not_valid_after_utc > NOW + dt.timedelta(days=SERVER_DAYS - 1)
    server.verify_directly_issued_by(ca)
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o077 == 0 and first.tls.key.stat().st_mode & 0o077 == 0

    again = init_broker(tmp_path, BrokerOptions(), ["broker.example.org"], now=NOW)  # names covered: kept
    assert not again.issued and cert(again.tls.cert) == server
    renamed = init_broker(tmp_path, BrokerOptions(), ["mqtt.example.org"], now=NOW)
    assert renamed.issued and certificate_names(renamed.tls.cert) == ["mqtt.example.org"]
    assert cert(renamed.tls.ca) == ca  # phones keep trusting the broker
    late = NOW + dt.timedelta(days=SERVER_DAYS - RENEW_BEFORE_DAYS + 1)
    assert init_broker(tmp_path, BrokerOptions(), ["mqtt.example.org"], now=late).issued  # renewed before it expires


def test_an_operators_ca_signs_and_an_operators_certificate_is_used_as_is(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    ca = ensure_ca(theirs / "ca.pem", theirs / "ca.key", NOW)
    signed = init_broker(tmp_path / "a", names=["b.example.org"], own=OwnTls(theirs / "ca.pem", theirs / "ca.key"),
                         now=NOW)  # fmt: skip
    cert(signed.tls.cert).verify_directly_issued_by(ca[0])
    assert not (tmp_path / "a" / "tls" / "ca.crt").exists()
    ensure_server_certificate(theirs / "s.pem", theirs / "s.key", ca, ["b.example.org"], NOW)
    given = init_broker(tmp_path / "b", own=OwnTls(cert=theirs / "s.pem", key=theirs / "s.key"), now=NOW)
    assert given.tls.cert == theirs / "s.pem" and given.tls.ca is None and not given.issued
    assert f"certfile {theirs / 's.pem'}" in given.conf.read_text()


def test_unusable_files_are_refused_clearly(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca.pem", tmp_path / "ca.key", NOW)
    ensure_server_certificate(tmp_path / "s.pem", tmp_path / "s.key", ca, ["x.example.org"], NOW)
    with pytest.raises(CertificateError, match="not a CA"):
        init_broker(tmp_path / "a", own=OwnTls(tmp_path / "s.pem", tmp_path / "s.key"), now=NOW)
    with pytest.raises(CertificateError, match="does not belong"):
        init_broker(tmp_path / "b", own=OwnTls(tmp_path / "ca.pem", tmp_path / "s.key"), now=NOW)
    with pytest.raises(ValueError, match="both"):
        init_broker(tmp_path / "c", own=OwnTls(cert=tmp_path / "s.pem"), now=NOW)


def test_a_certificate_left_beside_another_key_is_issued_again(tmp_path: Path) -> None:
    first = init_broker(tmp_path, BrokerOptions(), ["broker.example.org"], now=NOW)
    init_broker(tmp_path / "other", BrokerOptions(), ["broker.example.org"], now=NOW)
    first.tls.key.write_bytes((tmp_path / "other" / "tls" / first.tls.key.name).read_bytes())  # a run cut short
    again = init_broker(tmp_path, BrokerOptions(), ["broker.example.org"], now=NOW)
    assert again.issued  # before, the names and dates looked fine and the mismatched pair was kept
    key = serialization.load_pem_private_key(again.tls.key.read_bytes(), password=None)
    assert cert(again.tls.cert).public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
