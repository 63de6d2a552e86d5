"""The async side's transport (aiohttp) on the wire: the same rules as the sync side's (httpx).

Resets, refused connections, read timeouts, 429, redirects across origins, query parameters and
TLS (verification on by default, a CA bundle, verification off), as the triggers meet them.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from airflow_provider_ogc.hooks import OGCProcessesHook
from airflow_provider_ogc.hooks.ogc_processes import aclose_shared_clients
from airflow_provider_ogc.models import JobStatus
from airflow_provider_ogc.retry import Failure, classify
from tests.support.replay_server import ReplayServer, Reply

JOB = "/ogc/jobs/j1"
RUNNING = {"jobID": "j1", "status": "running"}
FAST = {"retry_wait_min": 0, "retry_wait_max": 0}


def hook(make_conn: Any, url: str, **fields: Any) -> OGCProcessesHook:
    extra = {**FAST, **fields.pop("extra", {})}
    return OGCProcessesHook(ogc_conn_id=make_conn(url, extra=extra, **fields))


async def test_a_reset_is_retried_by_the_policy_alone(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, Reply(reset=True), Reply(200, RUNNING))
    assert (await hook(make_conn, f"{replay.url}/ogc").aget_job_status("j1")).status is JobStatus.RUNNING
    assert len(replay.hits("GET", JOB)) == 2
    # No retries allowed: one request only (aiohttp's own resend after a reset is off).
    replay.route("GET", "/ogc/jobs/j2", Reply(reset=True), Reply(200, RUNNING))
    with pytest.raises(aiohttp.ClientError) as caught:
        await hook(make_conn, f"{replay.url}/ogc", extra={"max_retries": 0}).aget_job_status("j2")
    assert classify(caught.value) is Failure.AMBIGUOUS
    assert len(replay.hits("GET", "/ogc/jobs/j2")) == 1
    await aclose_shared_clients()


async def test_a_refused_connection_is_retried_then_raised_as_not_sent(make_conn: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the block ends
    started = time.monotonic()
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await hook(make_conn, f"http://127.0.0.1:{port}/ogc", extra={"max_retries": 2}).aget_job_status("j1")
    assert classify(caught.value) is Failure.NOT_ACTED
    assert time.monotonic() - started < 5
    await aclose_shared_clients()


async def test_a_read_timeout_is_ambiguous(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, Reply(200, RUNNING, delay=1.5))
    slow = hook(make_conn, f"{replay.url}/ogc", extra={"max_retries": 0, "timeout": 0.3})
    with pytest.raises(aiohttp.ServerTimeoutError) as caught:
        await slow.aget_job_status("j1")
    assert classify(caught.value) is Failure.AMBIGUOUS
    await aclose_shared_clients()


async def test_429_retry_after_is_honoured(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", JOB, Reply(429, None, headers={"Retry-After": "1"}), Reply(200, RUNNING))
    started = time.monotonic()
    assert (await hook(make_conn, f"{replay.url}/ogc").aget_job_status("j1")).status is JobStatus.RUNNING
    assert time.monotonic() - started >= 0.9, "waited as the server asked"
    assert len(replay.hits("GET", JOB)) == 2
    await aclose_shared_clients()


async def test_redirects_keep_credentials_on_the_own_origin_only(make_conn: Any) -> None:
    own, other = ReplayServer().start(), ReplayServer().start()
    try:
        own.route("GET", "/ogc/jobs/moved", Reply(301, None, headers={"Location": "/ogc/v2/jobs/moved"}))
        own.route("GET", "/ogc/v2/jobs/moved", Reply(200, {"jobID": "moved", "status": "running"}))
        own.route("GET", JOB, Reply(302, None, headers={"Location": f"{other.url}/ogc/jobs/j1"}))
        other.route("GET", JOB, Reply(200, RUNNING))
        h = hook(
            make_conn,
            f"{own.url}/ogc",
            password="s3cr3t-token",
            extra={"auth_type": "api_key", "extra_headers": {"X-Tenant": "acme"}},
        )
        assert (await h.aget_job_status("moved")).status is JobStatus.RUNNING
        assert (await h.aget_job_status("j1")).status is JobStatus.RUNNING
        assert own.requests and all(r.headers.get("X-API-Key") == "s3cr3t-token" for r in own.requests)
        assert all(r.headers.get("X-Tenant") == "acme" for r in own.requests)
        assert len(other.requests) == 1
        assert not {"X-API-Key", "X-Tenant", "Authorization"} & set(other.requests[0].headers)
        assert own.requests[0].headers["User-Agent"].startswith("airflow-provider-ogc/")
    finally:
        own.stop()
        other.stop()
        await aclose_shared_clients()


async def test_a_requests_own_headers_read_as_on_the_sync_side(replay: ReplayServer, make_conn: Any) -> None:
    # A poll sends no headers of its own (the session's defaults carry Accept and the credentials);
    # a request's own Accept replaces the default, and the connection's credentials win over a
    # same-named header of the request's, on both sides.
    replay.route("GET", "/ogc/jobs", Reply(200, {"jobs": []}))
    h = hook(make_conn, f"{replay.url}/ogc", password="tok", extra={"auth_type": "bearer"})
    own = {"Authorization": "Bearer not-the-connections", "X-Trace": "t1"}
    h.request("GET", "jobs", headers=own, accept="application/geo+json")
    await h.arequest("GET", "jobs", headers=own, accept="application/geo+json")
    await h.arequest("GET", "jobs")
    sync_sent, async_sent, plain = ({k.lower(): v for k, v in r.headers.items()} for r in replay.requests)
    for sent in (sync_sent, async_sent):
        assert (sent["authorization"], sent["x-trace"], sent["accept"]) == (
            "Bearer tok",
            "t1",
            "application/geo+json",
        )
    assert (plain["authorization"], plain["accept"]) == ("Bearer tok", "application/json")
    assert "x-trace" not in plain
    h.close()
    await aclose_shared_clients()


async def test_a_303_after_a_delete_becomes_a_get(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("DELETE", JOB, Reply(303, None, headers={"Location": "/ogc/jobs/j1/gone"}))
    replay.route("GET", "/ogc/jobs/j1/gone", Reply(200, {"jobID": "j1", "status": "dismissed"}))
    dismissed = await hook(make_conn, f"{replay.url}/ogc").adismiss_job("j1")
    assert dismissed is not None and dismissed.status is JobStatus.DISMISSED
    await aclose_shared_clients()


async def test_query_parameters_are_encoded_as_httpx_does(replay: ReplayServer, make_conn: Any) -> None:
    replay.route("GET", "/ogc/jobs", Reply(200, {"jobs": []}))
    h = hook(make_conn, f"{replay.url}/ogc")
    await h.arequest(
        "GET", "jobs", params={"status": ["running", "failed"], "limit": 5, "x": True, "n": None}
    )
    assert replay.requests[-1].query == {"status": ["running", "failed"], "limit": ["5"], "x": ["true"]}
    await aclose_shared_clients()


async def test_error_bodies_and_non_json_answers_read_as_on_the_sync_side(
    replay: ReplayServer, make_conn: Any
) -> None:
    replay.route("GET", "/ogc/jobs/html", Reply(200, "<html><b>login</b></html>", content_type="text/html"))
    replay.route(
        "GET",
        "/ogc/jobs/latin",
        Reply(500, "d\xe9faut".encode("latin-1"), content_type="text/plain; charset=latin-1"),
    )
    h = hook(make_conn, f"{replay.url}/ogc", extra={"max_retries": 0})
    with pytest.raises(Exception, match=r"Expected JSON from GET http://127\.0\.0\.1:\d+/ogc/jobs/html"):
        await h.aget_job_status("html")
    with pytest.raises(Exception, match=r"HTTP 500 .*défaut"):
        await h.aget_job_status("latin")
    await aclose_shared_clients()


# ---------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA bundle) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[ReplayServer]:
    server = ReplayServer(tls=certificate).start()
    server.route("GET", JOB, Reply(200, RUNNING))
    yield server
    server.stop()


async def test_tls_is_verified_by_default_and_a_failure_is_permanent(
    tls_server: ReplayServer, make_conn: Any
) -> None:
    h = hook(make_conn, f"{tls_server.url}/ogc", password="tok", extra={"auth_type": "bearer"})
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await h.aget_job_status("j1")
    assert classify(caught.value) is Failure.PERMANENT
    assert tls_server.requests == [], "nothing, the token least of all, went to an unverified server"
    await aclose_shared_clients()


@pytest.mark.parametrize("trust", ["ca_bundle", "verify_off"])
async def test_a_ca_bundle_or_verification_off_reaches_the_server(
    tls_server: ReplayServer, certificate: tuple[Path, Path], make_conn: Any, trust: str
) -> None:
    extra: dict[str, Any] = (
        {"ca_bundle": str(certificate[0])} if trust == "ca_bundle" else {"verify": "false"}
    )
    h = hook(make_conn, f"{tls_server.url}/ogc", password="tok", extra={"auth_type": "bearer", **extra})
    assert (await h.aget_job_status("j1")).status is JobStatus.RUNNING
    assert tls_server.requests[0].headers["Authorization"] == "Bearer tok"
    await aclose_shared_clients()
