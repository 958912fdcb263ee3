"""Shared fixtures: every test starts with a fresh default graph."""
import pytest

import jitflow as tf


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()
