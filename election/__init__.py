"""Leader election with fencing epochs. Knows nothing of the SC that uses it."""
