"""`vecdial serve` listens beyond loopback only with an API key, or when the operator says
a proxy or the network authenticates clients (allow_no_api_key)."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from vecdial.indexer.errors import InvalidInput
from vecdial.service.cli import main as vecdial_cli
from vecdial.service.server import check_exposure, is_loopback
from vecdial.service.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_are_recognised(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.5", "example.org"])
def test_every_other_address_is_beyond_loopback(host):
    assert not is_loopback(host)


def test_serving_on_loopback_needs_no_key(tmp_path):
    check_exposure(Settings(data_dir=tmp_path, host="127.0.0.1"))


def test_serving_beyond_loopback_without_a_key_is_refused_naming_the_ways_out(tmp_path):
    with pytest.raises(InvalidInput, match="VECDIAL_API_KEY.*127.0.0.1.*VECDIAL_ALLOW_NO_API_KEY=1"):
        check_exposure(Settings(data_dir=tmp_path, host="0.0.0.0"))


def test_serving_beyond_loopback_with_a_key_is_allowed(tmp_path):
    check_exposure(Settings(data_dir=tmp_path, host="0.0.0.0", api_key="a-key"))


def test_the_operator_can_opt_out_through_the_environment(tmp_path):
    with mock.patch.dict(os.environ, {"VECDIAL_ALLOW_NO_API_KEY": "1"}):
        check_exposure(Settings(data_dir=tmp_path, host="0.0.0.0"))


def test_the_cli_refuses_before_serving_with_one_line_and_exit_2(tmp_path, capsys):
    with mock.patch.dict(os.environ):  # serve hands its options to the workers through the environment
        os.environ.pop("VECDIAL_API_KEY", None)
        os.environ.pop("VECDIAL_ALLOW_NO_API_KEY", None)
        code = vecdial_cli(["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing to serve on 0.0.0.0 without an API key" in err and "VECDIAL_ALLOW_NO_API_KEY=1" in err
    assert "serving" not in err.replace("refusing to serve", "")
