"""Commands beside the build: check, clean, catalogue, new, import, requirements."""
