"""The TLS context of a connector: a custom CA bundle, and a client certificate for mutual TLS.

Built once, when the connector is built, so a certificate that cannot be loaded makes the
connector broken (reported in /readyz) rather than fail every call. Python's ssl module loads a
certificate chain only from files: the PEM text is written to a private temporary directory
(mode 0700, files 0600), loaded, and removed before this function returns.
"""

from __future__ import annotations

import os
import ssl
import tempfile

from registry.connector_settings import ConnectorTls


def ssl_context(tls: ConnectorTls) -> ssl.SSLContext:
    """Verification on (hostname included), against `ca_bundle` when given, else the system's
    CAs; the client certificate and key presented when the provider asks for one."""
    context = (
        ssl.create_default_context(cadata=tls.ca_bundle)
        if tls.ca_bundle
        else (ssl.create_default_context())
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.client_cert is not None and tls.client_key is not None:
        with tempfile.TemporaryDirectory(prefix="lgsp-tls-") as directory:
            cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
            _write_private(cert, tls.client_cert)
            _write_private(key, tls.client_key.get_secret_value())
            context.load_cert_chain(cert, key)
    return context


def _write_private(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text)
