"""The build of one (variant, platform), stage by stage, and of several."""
