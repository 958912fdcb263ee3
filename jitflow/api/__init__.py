"""The TF 1.x user API: op-building functions, variables, operators."""
