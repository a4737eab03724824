"""A run's report: the JSON summary, the one-screen table, the timeline plot."""
