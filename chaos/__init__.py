"""Fault injection, workloads, checkers and scenarios; drives the system only from outside."""
