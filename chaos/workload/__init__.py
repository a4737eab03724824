"""Producers and consumers that write unique records and read them back, recording
every operation to the history."""
