"""The broker's TLS certificates: a private CA of the operator's own and the broker's server certificate.

``pisces broker init`` makes both unless the operator brings their own. Phones
verify the broker against the CA (``ca.crt``: the one file to give them); the
CA's key (``ca.key``) signs nothing but broker certificates and should be kept
offline once the server certificate exists.

Keys are ECDSA P-256 (small, fast on phones, supported by every TLS 1.2+
stack). Validity: the CA 10 years, a server certificate 825 days, the longest
Apple's platforms accept for a TLS server certificate. A server certificate is
reissued (signed by the same CA) when it misses one of the requested names or
expires within :data:`RENEW_BEFORE_DAYS`; the CA is never replaced by itself,
so phones keep trusting the broker across re-inits.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_BEFORE_DAYS = 30
CA_NAME = "pisces broker CA"


class CertificateError(Exception):
    """Files that cannot serve as the broker's CA or certificate (unreadable, mismatched, wrong kind)."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the broker's TLS listener.

    Attributes:
        cert: the server certificate (chain) Mosquitto presents.
        key: its private key (mode 0600).
        ca: the CA certificate phones verify the broker with; None when the
            operator brought a certificate of a public CA (phones then use the
            system's CAs).
    """

    cert: Path
    key: Path
    ca: Path | None


def split_names(names: list[str] | tuple[str, ...]) -> list[x509.GeneralName]:
    """Subject alternative names for host names and IP addresses (an IP gets an IP entry, as clients check)."""
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def ensure_ca(cert_path: Path, key_path: Path, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA at these paths, or create it there if neither file exists."""
    if cert_path.exists() or key_path.exists():
        return load_ca(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (
        _builder(name, name, key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """An existing CA: its certificate must be a CA's and match its EC key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"cannot read the CA {cert_path} / {key_path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_path}: the CA key must be an EC key (as `pisces broker init` makes)")
    if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise CertificateError(f"{cert_path} does not belong to the key {key_path}")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateError(f"{cert_path} is not a CA certificate")
    return cert, key


def ensure_server_certificate(
    cert_path: Path, key_path: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], names: list[str],
    now: dt.datetime,
) -> bool:
    """Issue the broker's certificate for ``names`` unless a valid one for them exists; True if issued."""
    if not names:
        raise CertificateError("the broker's certificate needs at least one host name or address")
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, key_path, ca[0], names, now):
        return False
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName(split_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def certificate_names(cert_path: Path) -> list[str]:
    """The host names and addresses a certificate is valid for (its subject alternative names)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in san]


def _still_good(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: list[str],
                now: dt.datetime) -> bool:  # fmt: skip
    """The broker's certificate can stay: readable, far from expiry, from this CA, for these names, and
    of the key beside it (a run stopped between writing the two leaves a pair Mosquitto would refuse)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError):
        return False
    fresh = cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)
    ours = cert.public_key().public_bytes(*_SPKI) == key.public_key().public_bytes(*_SPKI)
    return fresh and ours and cert.issuer == ca_cert.subject and set(names) <= set(certificate_names(cert_path))


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # a phone whose clock is a little behind
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, 0o600)
