"""The reference fixtures are the files listed in tests/fixtures/README.md, byte for byte.

A fixture folder (``cpu_isa/``) is listed by the sha256 of its ``SHA256SUMS``, which lists every file
in it (``sha256sum`` format); both levels are checked."""

from __future__ import annotations

import hashlib
import re

import pytest
from conftest import FIXTURES

README = FIXTURES / "README.md"

# A row of the README's file table: | `name` | bytes | `sha256` | what it is |
# A folder's row names it with a trailing slash and gives its total bytes.
ROW = re.compile(r"^\|\s*`(?P<name>[^`/]+/?)`\s*\|\s*(?P<size>\d+)\s*\|\s*`(?P<sha256>[0-9a-f]{64})`\s*\|")


def listed() -> dict[str, tuple[int, str]]:
    rows = [m for line in README.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]
    table = {m["name"]: (int(m["size"]), m["sha256"]) for m in rows}
    assert len(table) == len(rows), "a file is listed twice in tests/fixtures/README.md"
    return table


LISTED = listed()


def test_the_readme_lists_exactly_the_fixture_files() -> None:
    assert LISTED, "no file table found in tests/fixtures/README.md"
    present = sorted(p.name + ("/" if p.is_dir() else "") for p in FIXTURES.iterdir() if p.name != README.name)
    assert present == sorted(LISTED)


@pytest.mark.parametrize("name", sorted(LISTED))
def test_fixture_matches_its_listed_sha256(name: str) -> None:
    size, sha256 = LISTED[name]
    if name.endswith("/"):  # a folder: its SHA256SUMS is listed, and lists every file in it
        folder = FIXTURES / name
        sums = (folder / "SHA256SUMS").read_bytes()
        assert hashlib.sha256(sums).hexdigest() == sha256, f"{name}SHA256SUMS: sha256 differs from the README"
        files = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums.decode().splitlines()}
        present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert present == sorted([*files, "SHA256SUMS"]), f"{name}: files differ from its SHA256SUMS"
        for file, digest in files.items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, f"{name}{file}: sha256 differs"
        assert sum((folder / f).stat().st_size for f in files) == size, f"{name}: total bytes differ from the README"
        return
    data = (FIXTURES / name).read_bytes()
    assert len(data) == size, f"{name}: {len(data)} bytes, README lists {size}"
    assert hashlib.sha256(data).hexdigest() == sha256, f"{name}: sha256 differs from tests/fixtures/README.md"
