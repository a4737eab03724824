"""A cluster of real processes with fault-injecting proxies on its links."""
