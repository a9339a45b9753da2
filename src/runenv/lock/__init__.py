"""Resolution with uv into pylock.<platform>.toml, and uv's failures explained."""
