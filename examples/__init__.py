"""Runnable examples; each has a `main()` that tests call with small sizes."""
