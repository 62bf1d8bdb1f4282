"""Certificates and keys for the test control plane.

One self-signed CA signs two leaf certificates:

- the kube-apiserver serving certificate, valid for 127.0.0.1 / localhost and the
  in-cluster names of the `kubernetes` Service, so clients verify the server;
- the admin client certificate (CN ``kubernetes-admin``, O ``system:masters``): with
  RBAC on, the ``system:masters`` group is bound to cluster-admin by the bootstrap
  policy, so the admin kubeconfig can do everything. kube-controller-manager,
  kube-scheduler and kwok use it too (they run with the same trust as the test).

A separate RSA key pair signs service-account tokens: kube-apiserver signs with the
private key and verifies with the public key, and kube-controller-manager (with
``--use-service-account-credentials``) requests tokens for each controller, which the
apiserver must then accept; a key mismatch shows up as 401s in the controller logs.

``cryptography`` is used when importable; otherwise the ``openssl`` CLI does the same.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

#: Subject alternative names of the apiserver serving certificate.
SERVER_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVER_IPS = ("127.0.0.1", "10.96.0.1")


@dataclass(frozen=True, kw_only=True)
class Pki:
    """Paths of the generated PEM files (all inside one folder)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path  # service-account token signing key (private, PKCS#8 PEM)
    sa_pub: Path  # its public key (SubjectPublicKeyInfo PEM)


def generate(folder: Path) -> Pki:
    """Write the CA, the server and admin certificates and the SA key pair to folder."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=folder / "ca.crt",
        ca_key=folder / "ca.key",
        server_cert=folder / "apiserver.crt",
        server_key=folder / "apiserver.key",
        admin_cert=folder / "admin.crt",
        admin_key=folder / "admin.key",
        sa_key=folder / "sa.key",
        sa_pub=folder / "sa.pub",
    )
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _generate_openssl(pki)
    else:
        _generate_cryptography(pki)
    return pki


def sign_client(pki: Pki, cn: str, org: str, cert: Path, key: Path) -> None:
    """A client certificate for (CN, O) signed by the CA, e.g. a kubelet's identity
    ``system:node:<name>`` in ``system:nodes``, which the Node authorizer checks."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl CLI is needed to sign a node certificate")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    csr, ext = cert.with_suffix(".csr"), cert.with_suffix(".ext")
    ext.write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n")
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    run("req", "-new", "-key", str(key), "-subj", f"/O={org}/CN={cn}", "-out", str(csr))
    run(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-CAcreateserial", "-days", "7", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def write_kubeconfig(
    pki: Pki, server: str, path: Path, cert: Path | None = None, key: Path | None = None
) -> Path:
    """A kubeconfig with the CA and a client certificate embedded (portable): the admin
    certificate unless cert/key name another one."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sailvl-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": b64(pki.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(cert or pki.admin_cert),
                    "client-key-data": b64(key or pki.admin_key),
                },
            }
        ],
        "contexts": [
            {"name": "sailvl-test", "context": {"cluster": "sailvl-test", "user": "admin"}}
        ],
        "current-context": "sailvl-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _generate_cryptography(pki: Pki) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    def name(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("sailvl-test-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_key(pki.ca_key, ca_key)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in SERVER_DNS]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in SERVER_IPS]
    for subject, usage, san, cert_path, key_path in (
        (
            name("kube-apiserver"),
            ExtendedKeyUsageOID.SERVER_AUTH,
            sans,
            pki.server_cert,
            pki.server_key,
        ),
        (
            name("kubernetes-admin", "system:masters"),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            None,
            pki.admin_cert,
            pki.admin_key,
        ),
    ):
        key, cert = leaf(subject, usage, san)
        write_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_key(pki.sa_key, sa)
    pki.sa_pub.write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _generate_openssl(pki: Pki) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither the cryptography package nor the openssl CLI is available")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    folder = pki.ca_cert.parent
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(pki.ca_key))
    run(
        "req", "-x509", "-new", "-key", str(pki.ca_key), "-subj", "/CN=sailvl-test-ca",
        "-days", "7", "-out", str(pki.ca_cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
    )  # fmt: skip
    san = ",".join([f"DNS:{d}" for d in SERVER_DNS] + [f"IP:{i}" for i in SERVER_IPS])
    for subj, ext, cert, key in (
        ("/CN=kube-apiserver", f"extendedKeyUsage=serverAuth\nsubjectAltName={san}",
         pki.server_cert, pki.server_key),
        ("/O=system:masters/CN=kubernetes-admin", "extendedKeyUsage=clientAuth",
         pki.admin_cert, pki.admin_key),
    ):  # fmt: skip
        csr, extfile = folder / "leaf.csr", folder / "leaf.ext"
        extfile.write_text("basicConstraints=critical,CA:FALSE\n" + ext + "\n")
        run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        run("req", "-new", "-key", str(key), "-subj", subj, "-out", str(csr))
        run(
            "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
            "-CAcreateserial", "-days", "7", "-extfile", str(extfile), "-out", str(cert),
        )  # fmt: skip
        csr.unlink()
        extfile.unlink()
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(pki.sa_key))
    run("pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub))
