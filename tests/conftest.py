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


@pytest.fixture(autouse=True, scope="session")
def stop_ray_at_the_end():
    """A test that started Ray implicitly (a README block) leaves no Ray processes behind."""
    yield
    import sys
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
