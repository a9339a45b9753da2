"""Wheels into a runtime tree through cached images; the wheelhouse layout."""
