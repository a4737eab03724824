"""The scenarios, their registry, and the random-fault soak."""
