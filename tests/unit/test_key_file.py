"""The master key file generated on first start, and which key the key ring uses."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flowplane.security.crypto import SecretKeyInvalid, generate_key, parse_key
from flowplane.security.key_file import create_key_file, key_file_path, read_key_file
from flowplane.services.credentials import keyring_from_settings
from flowplane.settings import Settings


def test_created_once_owner_only_then_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert read_key_file(data) is None
    key, path, created = create_key_file(data)
    assert created and path == key_file_path(data) == (data / "master.key").resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parse_key(key)  # a valid key
    again, _, created_again = create_key_file(data)
    assert again == key and not created_again
    assert read_key_file(data) == key


def test_a_damaged_file_is_an_error_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_text("not a key\n")
    with pytest.raises(SecretKeyInvalid):
        create_key_file(tmp_path)
    assert (tmp_path / "master.key").read_text() == "not a key\n"


def test_the_key_ring_prefers_the_setting_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWPLANE_SECRET_KEY", raising=False)
    assert keyring_from_settings(Settings(data_dir=tmp_path), environ={}) is None
    key, _, _ = create_key_file(tmp_path)
    from_file = keyring_from_settings(Settings(data_dir=tmp_path), environ={})
    assert from_file is not None and from_file.current == parse_key(key)
    own = generate_key()
    configured = keyring_from_settings(Settings(data_dir=tmp_path, secret_key=own), environ={})
    assert configured is not None and configured.current == parse_key(own)
    from_env = keyring_from_settings(
        Settings(data_dir=tmp_path), environ={"FLOWPLANE_SECRET_KEY": own}
    )
    assert from_env is not None and from_env.current == parse_key(own)
