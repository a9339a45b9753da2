"""The CI plan by capability and the native wheels job."""
