"""HTTPS: the server's certificate, given or self-signed on first start (as a fresh xapi host).

A generated certificate and its key live in the state directory (`server-cert.pem`, and
`server-key.pem` readable by its owner only) and are reused by later starts, so clients
that pinned the certificate keep working across restarts.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from xenmem.db.sqlite import private_dir
from xenmem.files import write_atomically

__all__ = ["CERT_FILENAME", "KEY_FILENAME", "self_signed"]

CERT_FILENAME = "server-cert.pem"
KEY_FILENAME = "server-key.pem"
_VALIDITY = datetime.timedelta(days=3650)


def _names(listen: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    addresses = {"127.0.0.1", "::1"}
    try:
        ipaddress.ip_address(listen)
        addresses.add(listen)
    except ValueError:
        names.append(x509.DNSName(listen))
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses)]
    return names


def self_signed(state_dir: Path, listen: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) in `state_dir`, generated on the first call (EC P-256, 10 years)."""
    cert_path, key_path = state_dir / CERT_FILENAME, state_dir / KEY_FILENAME
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    private_dir(state_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname() or "xenmem")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(listen)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomically(key_path, key_pem, 0o600)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path
