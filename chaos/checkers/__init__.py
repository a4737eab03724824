"""Checkers over a history: pure functions, each for one kind of wrong, and the figures."""
