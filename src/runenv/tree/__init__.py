"""Stages over the assembled tree: copied files, bytecode, signing, its modules."""
