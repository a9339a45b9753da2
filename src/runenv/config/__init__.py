"""Reading and merging the configs, a variant's package.json, the per-platform plan."""
