"""The command-line transport refuses secrets and percent-encodes every value (§1.2)."""

from __future__ import annotations

import pytest

from letsencrypt_cpanel.cpanel.commandline import encoded_argv, refuse_secrets
from letsencrypt_cpanel.errors import CpanelTransportError


def test_values_fully_percent_encoded() -> None:
    assert encoded_argv([("add", '{"data":["a+b c/="]}')]) == [
        "add=%7B%22data%22%3A%5B%22a%2Bb%20c%2F%3D%22%5D%7D"
    ]


@pytest.mark.parametrize(
    "pairs",
    [
        [("cert", "x")],
        [("key-1", "x")],
        [("token", "x")],
        [("friendly_name", "-----BEGIN CERTIFICATE-----")],
    ],
)
def test_secrets_refused(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(CpanelTransportError) as info:
        refuse_secrets("SSL", "install_ssl", pairs)
    assert "BEGIN" not in str(info.value)


def test_plain_arguments_pass() -> None:
    refuse_secrets("", "api_token_create", [("token_name", "letsencrypt-cpanel")])
    refuse_secrets("DomainInfo", "domains_data", [("format", "hash")])
