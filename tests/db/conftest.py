"""Fixtures for the PostgreSQL/MariaDB tests: interop with the Python server, several of our
servers on one database, a database restart under load. They share tests/e2e's helpers;
tests/db/setup.sh makes sure both database servers answer on loopback."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))



@pytest.fixture
def workdir():
    d = Path(tempfile.mkdtemp(prefix="mlflow-db-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)
