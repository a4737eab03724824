"""A local SC replica set with SPUs: ports, processes, and the cluster file that records them."""
