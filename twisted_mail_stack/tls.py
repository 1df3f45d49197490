"""
The TLS certificate and server settings shared by every protocol: STARTTLS (SMTP, POP3, IMAP)
and the implicit-TLS listeners (submissions 465, imaps 993, pop3s 995).

With no certificate configured, a self-signed one is made on first start in C{<data>/tls} and
reused afterwards, so TLS (and with it password logins from other machines) works out of the box.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from attrs import field, frozen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.ssl import CertificateOptions, TLSVersion
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from .auth._files import atomic_write
from .errors import ConfigError
from .values import normalise_domain

__all__ = ["TLSSettings", "load_or_create_tls", "generate_self_signed"]

_log = Logger()
_VALIDITY = datetime.timedelta(days=3650)
_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


@frozen
class TLSSettings:
    """A loaded certificate chain and key, with the server options built from them once."""

    cert_path: str
    key_path: str
    #: SHA-256 of the leaf certificate (DER), as colon-separated upper-case hex.
    fingerprint: str
    #: The certificate chain as PEM: what a test client trusts.
    cert_pem: bytes
    #: When the leaf certificate expires (UTC).
    not_after: datetime.datetime
    _options: CertificateOptions = field(repr=False, eq=False)

    def server_options(self) -> CertificateOptions:
        """Server context options (TLS 1.2 or later) for C{transport.startTLS}."""
        return self._options

    def wrap_factory(self, factory: IProtocolFactory) -> TLSMemoryBIOFactory:
        """Wrap C{factory} for an implicit-TLS listener (465, 993, 995)."""
        return TLSMemoryBIOFactory(self._options, False, factory)


def load_or_create_tls(
    cert_path: str | None,
    key_path: str | None,
    data_dir: str,
    hostname: str,
    log: Logger | None = None,
) -> TLSSettings:
    """
    Load the configured PEM certificate (chain) and key or, with neither configured, the
    self-signed pair in C{<data_dir>/tls/}, generating it first if it is missing or expired.

    Raises L{ConfigError} (key C{tls}, C{hostname} or C{data_dir}) naming the file that is
    missing, unreadable, malformed, or whose key does not match the certificate.
    """
    log = log or _log
    if cert_path is not None or key_path is not None:
        if cert_path is None or key_path is None:
            raise ConfigError("tls", "give both cert and key, or neither")
        settings = _load(cert_path, key_path, "tls")
        if settings.not_after <= _now():
            log.warn("The TLS certificate {path} has expired", path=cert_path)
        return settings
    try:
        san = _san(hostname)
    except ValueError as e:
        raise ConfigError("hostname", str(e)) from None
    tls_dir = os.path.join(data_dir, "tls")
    cert_path, key_path = os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem")
    # The key is written before the certificate, so a certificate without its key is not ours
    # to overwrite, while a key without a certificate is an interrupted generation.
    if os.path.exists(cert_path):
        settings = _load(cert_path, key_path, "data_dir")
        if settings.not_after > _now():
            log.info(
                "Using the self-signed TLS certificate {path} (SHA-256 {fingerprint})",
                path=cert_path,
                fingerprint=settings.fingerprint,
            )
            _warn_if_not_for(settings, san[0], log)
            return settings
        log.warn(
            "The self-signed TLS certificate {path} has expired; making a new one", path=cert_path
        )
    try:
        os.makedirs(tls_dir, mode=0o700, exist_ok=True)
        generate_self_signed(cert_path, key_path, hostname)
    except OSError as e:
        raise ConfigError(
            "data_dir", f"cannot write the TLS certificate in {tls_dir}: {e}"
        ) from None
    settings = _load(cert_path, key_path, "data_dir")
    log.info(
        "Generated a self-signed TLS certificate for {hostname} at {path} (SHA-256 {fingerprint}); "
        "configure [tls] cert and key to use a real one",
        hostname=hostname,
        path=cert_path,
        fingerprint=settings.fingerprint,
    )
    return settings


def generate_self_signed(cert_path: str, key_path: str, hostname: str) -> None:
    """
    Write a new EC P-256 key (mode 0600) and a self-signed certificate valid for ten years for
    C{hostname}, C{localhost}, 127.0.0.1 and ::1.
    """
    san = _san(hostname)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(san[0].value)[:64])])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate clock skew
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write(key_path, key_pem.decode("ascii"), 0o600)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), 0o644)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _san(hostname: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in (hostname, "localhost", "127.0.0.1", "::1"):
        try:
            general: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            general = x509.DNSName(normalise_domain(host))
        if general not in names:
            names.append(general)
    return names


def _warn_if_not_for(settings: TLSSettings, name: x509.GeneralName, log: Logger) -> None:
    leaf = x509.load_pem_x509_certificate(settings.cert_pem)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return
    if name not in list(san):
        log.warn(
            "The TLS certificate {path} does not name {name}; delete it to make a new one",
            path=settings.cert_path,
            name=name.value,
        )


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(key, f"cannot read {path}: {e.strerror or e}") from None


def _load(cert_path: str, key_path: str, config_key: str) -> TLSSettings:
    """Load and check a PEM chain and key; the errors name the file and config key."""
    cert_pem = _read(cert_path, config_key)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as e:
        raise ConfigError(config_key, f"{cert_path} holds no PEM certificate: {e}") from None
    try:
        private_key = serialization.load_pem_private_key(_read(key_path, config_key), password=None)
    except TypeError:
        raise ConfigError(config_key, f"{key_path} is encrypted; give an unencrypted key") from None
    except ValueError as e:
        raise ConfigError(config_key, f"{key_path} holds no usable PEM private key: {e}") from None
    if not isinstance(private_key, _KEY_TYPES):
        raise ConfigError(config_key, f"{key_path}: unsupported key type")
    leaf = chain[0]
    if _spki(leaf.public_key()) != _spki(private_key.public_key()):
        raise ConfigError(config_key, f"{key_path} does not match the certificate in {cert_path}")
    # pyOpenSSL takes cryptography objects (its own X509/PKey are deprecated); Twisted's
    # annotations still name the old types.
    options = CertificateOptions(
        privateKey=private_key,  # type: ignore[arg-type]
        certificate=leaf,  # type: ignore[arg-type]
        extraCertChain=chain[1:],  # type: ignore[arg-type]
        raiseMinimumTo=TLSVersion.TLSv1_2,
    )
    fingerprint = leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return TLSSettings(cert_path, key_path, fingerprint, pem, leaf.not_valid_after_utc, options)


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
