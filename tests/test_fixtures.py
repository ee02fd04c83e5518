"""The reference fixtures are the files listed in tests/fixtures/README.md, byte for byte."""

from __future__ import annotations

import hashlib
import re

import pytest
from conftest import FIXTURES

README = FIXTURES / "README.md"

# A row of the README's file table: | `name` | bytes | `sha256` | what it is |
ROW = re.compile(r"^\|\s*`(?P<name>[^`/]+)`\s*\|\s*(?P<size>\d+)\s*\|\s*`(?P<sha256>[0-9a-f]{64})`\s*\|")


def listed() -> dict[str, tuple[int, str]]:
    rows = [m for line in README.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]
    table = {m["name"]: (int(m["size"]), m["sha256"]) for m in rows}
    assert len(table) == len(rows), "a file is listed twice in tests/fixtures/README.md"
    return table


LISTED = listed()


def test_the_readme_lists_exactly_the_fixture_files() -> None:
    assert LISTED, "no file table found in tests/fixtures/README.md"
    present = sorted(p.name for p in FIXTURES.iterdir() if p.name != README.name)
    assert present == sorted(LISTED)


@pytest.mark.parametrize("name", sorted(LISTED))
def test_fixture_matches_its_listed_sha256(name: str) -> None:
    size, sha256 = LISTED[name]
    data = (FIXTURES / name).read_bytes()
    assert len(data) == size, f"{name}: {len(data)} bytes, README lists {size}"
    assert hashlib.sha256(data).hexdigest() == sha256, f"{name}: sha256 differs from tests/fixtures/README.md"
