"""Function -> Function passes, one per module, and the pipeline that runs them."""
from .pipeline import run_pipeline  # noqa: F401
