"""Shared fixtures: every test starts with a fresh default graph; the whole run
uses a private kernel-cache directory so tests never touch the user's cache."""
import os
import tempfile

import pytest

os.environ.setdefault("JITFLOW_CACHE_DIR", tempfile.mkdtemp(prefix="jitflow-test-cache-"))

import jitflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()
