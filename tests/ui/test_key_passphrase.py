"""An encrypted client key: the interactive shell asks for its passphrase without echo."""

from __future__ import annotations

from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from smtpshell.sandbox import Sandbox
from tests.ptyshell import PtyShell


def test_passphrase_prompt_for_encrypted_client_key(sandbox: Sandbox, tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("client.test")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"open sesame"),
    )
    cert, keyfile = tmp_path / "client.pem", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    keyfile.write_bytes(encrypted)
    shell = PtyShell(["--tls", "--cafile", str(sandbox.ca_file), "--cert", str(cert), "--key",
                      str(keyfile), "--no-history", "127.0.0.1", str(sandbox.tls_port)],
                     {"NO_COLOR": "1"})
    try:
        shell.expect(r"Passphrase for .*client\.key: ")
        shell.sendline("open sesame")
        shell.expect(r"220 sandbox\.smtpshell\.test")
        assert "open sesame" not in shell.text  # not echoed
        shell.expect(r"TLS>")
        shell.send("\x04")
        assert shell.wait() == 0
    finally:
        shell.close()
