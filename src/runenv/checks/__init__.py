"""The checks: binaries and tags, imports, the consumer's block venv."""
