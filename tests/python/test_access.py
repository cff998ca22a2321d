"""A shared instrument over TLS from the Python client: a certificate the test makes itself,
bearer tokens made by `microscoped token new`, and what happens without them."""

import datetime
import ipaddress
import os
import pathlib
import re
import subprocess

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = pathlib.Path(__file__).resolve().parents[2]


def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "microscoped test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_pem


def new_token(binary, user, role):
    """A token and its [users.NAME] table, from the CLI as a technician would make them."""
    out = subprocess.run(
        [binary, "token", "new", "--user", user, "--role", role],
        check=True, capture_output=True, text=True,
    ).stdout
    token = re.search(r"(msd_[0-9a-f]{64})", out).group(1)
    table = out[out.index(f"[users.{user}]"):]
    return token, table


@pytest.fixture()
def tls_daemon(tmp_path, serve):
    """A daemon serving TLS with users alice (operator) and tech (admin); no anonymous access."""
    binary = os.environ.get("MICROSCOPED_BIN", str(ROOT / "target" / "debug" / "microscoped"))
    cert_pem = self_signed(tmp_path)
    alice, alice_table = new_token(binary, "alice", "operator")
    tech, tech_table = new_token(binary, "tech", "admin")
    config = tmp_path / "shared.toml"
    config.write_text(f"""
[instrument]
name = "tls-test"

[server]
# Relative to this file.
tls_cert = "cert.pem"
tls_key = "key.pem"

[storage]
data_root = "{tmp_path / 'data'}"
ring_mb = 4

{alice_table}
{tech_table}

[devices.XY]
driver = "sim.xy_stage"

[devices.Camera]
driver = "sim.camera"
width = 64
height = 64
""")
    d = serve(config)
    return d.addr, cert_pem, {"alice": alice, "tech": tech}


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def test_tls_with_tokens(tls_daemon, pb):
    msgs, svcs = pb
    addr, cert_pem, tokens = tls_daemon
    creds = grpc.ssl_channel_credentials(root_certificates=cert_pem)
    with grpc.secure_channel(addr, creds) as ch:
        access = svcs.AccessStub(ch)
        scope = svcs.MicroscopeStub(ch)
        me = access.WhoAmI(msgs.WhoAmIRequest(), metadata=bearer(tokens["alice"]), timeout=10)
        assert me.user == "alice" and me.role == msgs.ROLE_OPERATOR
        devices = scope.ListDevices(msgs.ListDevicesRequest(), metadata=bearer(tokens["alice"]), timeout=5)
        assert {d.name for d in devices.devices} == {"XY", "Camera"}

        # Moving needs the lease.
        with pytest.raises(grpc.RpcError) as err:
            scope.MoveAbsolute(msgs.MoveRequest(device="XY", position_um=[10.0, 20.0]),
                               metadata=bearer(tokens["alice"]), timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        lease = access.AcquireLease(msgs.AcquireLeaseRequest(ttl_s=30), metadata=bearer(tokens["alice"]), timeout=5)
        assert lease.held and lease.holder == "alice"
        scope.MoveAbsolute(msgs.MoveRequest(device="XY", position_um=[10.0, 20.0]),
                           metadata=bearer(tokens["alice"]), timeout=5)
        scope.WaitForIdle(msgs.WaitForIdleRequest(device="XY", timeout_ms=10000),
                          metadata=bearer(tokens["alice"]), timeout=15)
        pos = scope.GetPosition(msgs.DeviceRef(device="XY"), metadata=bearer(tokens["alice"]), timeout=5)
        assert list(pos.position_um) == [10.0, 20.0]
        access.ReleaseLease(msgs.ReleaseLeaseRequest(), metadata=bearer(tokens["alice"]), timeout=5)

        # Wrong and missing tokens, over TLS too.
        for metadata in (bearer(tokens["alice"] + "0"), bearer("msd_nope"), None):
            with pytest.raises(grpc.RpcError) as err:
                scope.ListDevices(msgs.ListDevicesRequest(), metadata=metadata, timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "Bearer" in err.value.details()

        # The admin sees all of it in the audit log; alice may not.
        log = access.ReadAuditLog(msgs.ReadAuditLogRequest(), metadata=bearer(tokens["tech"]), timeout=5)
        seen = {(e.user, e.action, e.outcome) for e in log.entries}
        assert ("alice", "MoveAbsolute", "denied") in seen
        assert ("alice", "MoveAbsolute", "ok") in seen
        assert ("alice", "AcquireLease", "ok") in seen
        assert ("", "ListDevices", "denied") in seen
        with pytest.raises(grpc.RpcError) as err:
            access.ReadAuditLog(msgs.ReadAuditLogRequest(), metadata=bearer(tokens["alice"]), timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_plaintext_client_cannot_talk_to_a_tls_daemon(tls_daemon, pb):
    msgs, svcs = pb
    addr, _, tokens = tls_daemon
    with grpc.insecure_channel(addr) as ch:
        with pytest.raises(grpc.RpcError) as err:
            svcs.MicroscopeStub(ch).ListDevices(
                msgs.ListDevicesRequest(), metadata=bearer(tokens["alice"]), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_daemon, pb, tmp_path):
    msgs, svcs = pb
    addr, _, tokens = tls_daemon
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = self_signed(elsewhere)
    creds = grpc.ssl_channel_credentials(root_certificates=other)
    with grpc.secure_channel(addr, creds) as ch:
        with pytest.raises(grpc.RpcError) as err:
            svcs.MicroscopeStub(ch).ListDevices(
                msgs.ListDevicesRequest(), metadata=bearer(tokens["alice"]), timeout=5
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_cli_connects_over_tls_with_a_token(tls_daemon, tmp_path):
    binary = os.environ.get("MICROSCOPED_BIN", str(ROOT / "target" / "debug" / "microscoped"))
    addr, cert_pem, tokens = tls_daemon
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert_pem)
    env = {**os.environ, "MICROSCOPED_TOKEN": tokens["alice"], "MICROSCOPED_TLS_CA": str(ca)}
    out = subprocess.run([binary, "devices", "--addr", addr], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "XY" in out.stdout
    out = subprocess.run([binary, "lease", "show", "--addr", addr], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "nobody holds the lease" in out.stdout, out
    env.pop("MICROSCOPED_TOKEN")
    out = subprocess.run([binary, "devices", "--addr", addr], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "UNAUTHENTICATED" in out.stderr, out


def test_the_python_client_over_tls_holds_the_lease_while_it_works(tls_daemon, tmp_path):
    from microscoped_client import FailedPrecondition, Microscope, Unauthenticated

    addr, cert_pem, tokens = tls_daemon
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert_pem)
    with pytest.raises(Unauthenticated):
        Microscope(addr, token="msd_" + "0" * 64, tls_ca=ca)
    with Microscope(addr, token=tokens["alice"], tls_ca=ca) as scope:
        assert scope.whoami() == ("alice", "operator")
        start = scope.position("XY")
        # An operator changes hardware only while holding the lease.
        with pytest.raises(FailedPrecondition, match="lease"):
            scope.move("XY", 10, 20)
        assert scope.position("XY") == start
        with scope.lease(ttl_s=3) as lease:
            assert lease.holder == "alice"
            scope.move("XY", 10, 20)
            image = scope.snap()
            assert image.shape == (64, 64)
        assert scope.position("XY") == pytest.approx((10, 20))
        # Given back at the end of the block: the admin may now work without breaking it.
    with Microscope(addr, token=tokens["tech"], tls_ca=ca) as admin:
        admin.move("XY", 0, 0)
