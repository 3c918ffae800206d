"""The master key file: the key generated on first start when ``FLOWPLANE_SECRET_KEY`` is unset.

``flowplane serve`` on SQLite (the embedded default) writes a new key to
``<data dir>/master.key`` the first time it starts without ``FLOWPLANE_SECRET_KEY``, readable
by its owner only (mode 0600), as n8n does with its encryption key. Every process that shares
the data folder (``serve``, ``worker``, ``flowplane secrets``, ``flowplane run``) then reads it.
``FLOWPLANE_SECRET_KEY``, when set, always wins and the file is ignored.

Back the file up with the database: credentials sealed under it cannot be read without it.
"""

from __future__ import annotations

import os
from pathlib import Path

from flowplane.security.crypto import generate_key, parse_key

KEY_FILE_NAME = "master.key"
KEY_FILE_MODE = 0o600


def key_file_path(data_dir: Path | str) -> Path:
    """Where the generated master key lives: ``<data_dir>/master.key`` (absolute)."""
    return (Path(data_dir) / KEY_FILE_NAME).resolve()


def read_key_file(data_dir: Path | str) -> str | None:
    """Return the key stored in ``<data_dir>/master.key``, or ``None`` when there is none.

    Raises:
        SecretKeyInvalid: the file holds something that is not a key.
    """
    path = key_file_path(data_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    parse_key(text)  # a damaged file is an error, never silently replaced
    return text


def create_key_file(data_dir: Path | str) -> tuple[str, Path, bool]:
    """Return the key of ``<data_dir>/master.key``, generating the file when it is absent.

    The file is created with mode 0600 (owner read/write) in one step (``O_EXCL``), so two
    processes starting together agree on one key.

    Returns:
        ``(key, path, created)``: ``created`` is true when this call wrote the file.
    """
    existing = read_key_file(data_dir)
    path = key_file_path(data_dir)
    if existing is not None:
        return existing, path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:  # another process won the race (or wrote an empty file)
        again = read_key_file(data_dir)
        if again is None:
            raise
        return again, path, False
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    os.chmod(path, KEY_FILE_MODE)  # whatever the umask
    return key, path, True
