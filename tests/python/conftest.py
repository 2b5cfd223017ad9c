"""galvani's tests run on the module built in the tree (CTest sets
PYTHONPATH to <build>/python); a stray installed copy must not be tested
instead."""

import gc
import os

import pytest

import galvani


def pytest_report_header(config):
    return f"galvani from {os.path.dirname(galvani.__file__)}"


@pytest.fixture(autouse=True)
def no_leaked_nodes():
    """Every test releases what it made: libgalvani's live-node counters are
    back where they started once the test's objects are gone."""
    gc.collect()
    before = galvani._core._stats()
    yield
    gc.collect()
    after = galvani._core._stats()
    for key in ("signals", "computeds", "effects", "links"):
        assert after[key] <= before[key], f"{key}: {before[key]} -> {after[key]}"
