"""Remote write over TLS: a receiver with its own CA that requires a client certificate; the
writer trusts the CA from ``tls_config``, presents its certificate, checks the server name,
and sends a bearer token read from a file. A server it cannot verify is never written to."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry

from tempo_fast.config.loader import ConfigError, default_yaml, load
from tempo_fast.config.tls import TlsSettings
from tempo_fast.generator.remote_write import RemoteWriteMetrics, RemoteWriter, RemoteWriteTarget
from tests.generator.test_remote_write import deliver, payload, run_async, sample
from tests.server import free_port


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem; server.pem/.key for 127.0.0.1 and prom.test; client.pem/.key."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    _write(d / "ca.pem", _cert("test-ca", ca_key, None))
    for name, sans in (
        ("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("named", [x509.DNSName("prom.test")]),
        ("client", None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(d / f"{name}.pem", _cert(name, key, ("test-ca", ca_key), sans), key)
    (d / "token").write_text("t0ken\n")
    return d


class TlsReceiver:
    """An HTTPS remote-write receiver requiring a client certificate from ``pki``'s CA."""

    def __init__(self, pki: Path, cert: str) -> None:
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
        self.port = free_port()
        self.seen: list[tuple[str, str]] = []  # (Authorization, client certificate CN)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/api/v1/write"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else ""
        self.seen.append((request.headers.get("Authorization", ""), cn))
        return web.Response(status=200)

    async def __aenter__(self) -> TlsReceiver:
        app = web.Application()
        app.router.add_post("/api/v1/write", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ctx).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def _endpoint(pki: Path, url: str, **tls: object):  # noqa: ANN202 - a RemoteWriteEndpoint
    lines = [f"      - url: {url}", f"        bearer_token_file: {pki / 'token'}"]
    if tls:
        lines.append("        tls_config:")
        lines += [f"          {k}: {v}" for k, v in tls.items()]
    cfg = load(default_yaml() + "metrics_generator:\n  storage:\n    remote_write:\n"
               + "\n".join(lines) + "\n").metrics_generator  # fmt: skip
    assert cfg is not None
    (rw,) = cfg.remote_write
    return rw


def test_ca_client_certificate_and_bearer_token(pki: Path) -> None:
    async def main() -> None:
        async with TlsReceiver(pki, "server") as r:
            rw = _endpoint(pki, r.url, ca_file=pki / "ca.pem", cert_file=pki / "client.pem",
                           key_file=pki / "client.key")  # fmt: skip
            assert isinstance(rw.tls, TlsSettings)
            registry = await _async_send(rw, r.url)
            assert r.seen == [("Bearer t0ken", "client")]
            assert sample(registry, "samples_total", outcome="sent") == 1

    run_async(main)


def test_server_name_checked_against_the_certificate(pki: Path) -> None:
    async def main() -> None:
        async with TlsReceiver(pki, "named") as r:
            common = {"ca_file": pki / "ca.pem", "cert_file": pki / "client.pem",
                      "key_file": pki / "client.key"}  # fmt: skip
            # the certificate names prom.test, not 127.0.0.1: refused without server_name
            registry = await _async_send(_endpoint(pki, r.url, **common), r.url)
            assert r.seen == [] and sample(registry, "requests_total", code="error") >= 1
            await _async_send(_endpoint(pki, r.url, server_name="prom.test", **common), r.url)
            assert r.seen == [("Bearer t0ken", "client")]

    run_async(main)


def test_unverifiable_server_is_not_written_to_unless_told(pki: Path) -> None:
    async def main() -> None:
        async with TlsReceiver(pki, "server") as r:
            client = {"cert_file": pki / "client.pem", "key_file": pki / "client.key"}
            registry = await _async_send(_endpoint(pki, r.url, **client), r.url)  # system CAs
            assert r.seen == []
            assert sample(registry, "samples_total", outcome="sent") == 0
            await _async_send(_endpoint(pki, r.url, insecure_skip_verify="true", **client), r.url)
            assert len(r.seen) == 1

    run_async(main)


async def _async_send(rw, url: str) -> CollectorRegistry:  # noqa: ANN001
    registry = CollectorRegistry()
    target = RemoteWriteTarget(url, rw.headers, rw.basic_auth, 2.0, tls=rw.tls)
    writer = RemoteWriter(target, RemoteWriteMetrics(registry), tenant="t1")
    await deliver(writer, [(payload(1), 1)], flush=1.0)
    return registry


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "No such file"),
        ({"cert_file": "/x.pem"}, "needs both cert"),
        ({"min_version": "TLS9"}, "min_version"),
        ({"verify": "true"}, "unknown field\\(s\\) verify"),
    ],
)
def test_bad_tls_config_fails_the_load(pki: Path, tls: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _endpoint(pki, "https://prom:9090/api/v1/write", **tls)
