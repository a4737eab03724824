"""Faults: process signals, network impairments through the proxies, partitions, and
host-level faults where the host allows them. Each is injected, then always healed."""
