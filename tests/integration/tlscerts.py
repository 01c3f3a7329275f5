"""Test certificates made with the `openssl` command line, at test time.

    pki = Pki(tmp_dir)
    pki.ca                      the trusted test CA (PEM path)
    pki.leaf("good")            cert and key for localhost and 127.0.0.1,
                                signed by the CA -> (cert, key)
    pki.leaf("wronghost", names=["DNS:other.example"])
    pki.leaf("expired", expired=True)
    pki.leaf("unknown", ca="other")   signed by a CA nobody trusts
    pki.self_signed("self")     a self-signed cert for localhost

Every leaf is made with `openssl ca`, which can set validity dates in the
past (for the expired one) without touching the clock.
"""

import subprocess
from pathlib import Path

CA_CONF = """
[ca]
default_ca = ca_default
[ca_default]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[v3_leaf]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
"""


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Pki:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cas = {}
        self.ca = self._make_ca("ca")

    def _make_ca(self, name):
        d = self.dir / name
        d.mkdir()
        (d / "index.txt").write_text("")
        (d / "serial").write_text("1000\n")
        (d / "ca.cnf").write_text(CA_CONF.format(dir=d))
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                "-subj", "/CN=kagami test %s" % name,
                "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
        self.cas[name] = d
        return str(d / "ca.pem")

    def leaf(self, name, names=("DNS:localhost", "IP:127.0.0.1"),
             ca="ca", expired=False):
        if ca not in self.cas:
            self._make_ca(ca)
        d = self.cas[ca]
        key = self.dir / (name + ".key")
        csr = self.dir / (name + ".csr")
        cert = self.dir / (name + ".pem")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name,
                "-addext", "subjectAltName=" + ",".join(names),
                "-keyout", str(key), "-out", str(csr))
        dates = (["-startdate", "20200101000000Z", "-enddate",
                  "20200201000000Z"] if expired else ["-days", "30"])
        openssl("ca", "-batch", "-config", str(d / "ca.cnf"), "-extensions",
                "v3_leaf", "-cert", str(d / "ca.pem"), "-keyfile",
                str(d / "ca.key"), *dates, "-in", str(csr), "-out", str(cert))
        return str(cert), str(key)

    def self_signed(self, name):
        key = self.dir / (name + ".key")
        cert = self.dir / (name + ".pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert))
        return str(cert), str(key)
