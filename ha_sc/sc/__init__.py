"""One SC replica: the KV, the warm cache, and (when leading) the controllers."""
