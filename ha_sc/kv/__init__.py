"""The key-value backends under the store: Raft (pysyncobj), etcd and memory, behind
one interface (``api.KvStore``)."""
