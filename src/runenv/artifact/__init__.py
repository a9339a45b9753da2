"""The reproducible archive, its parts and its manifest with the build hash."""
