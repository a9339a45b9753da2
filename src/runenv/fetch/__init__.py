"""Verified downloads: the interpreter (PBS), the wheels and sdists."""
