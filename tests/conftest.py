"""Shared fixtures: every test starts with a fresh default graph; the whole run
uses a private kernel-cache directory so tests never touch the user's cache, and
runs the IR verifier after every compiler pass."""
import os
import tempfile

import pytest

os.environ.setdefault("JITFLOW_CACHE_DIR", tempfile.mkdtemp(prefix="jitflow-test-cache-"))
os.environ.setdefault("JITFLOW_VERIFY", "1")   # the IR verifier runs after every pass in tests

import jitflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()
