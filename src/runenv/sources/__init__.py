"""Wheels built from sdists and git commits, and those carried from native runners."""
