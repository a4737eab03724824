"""The history of a chaos run: its events, their recorder, and the views checkers use."""
