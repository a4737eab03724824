"""The topic controller: a topic spec validated, its replicas assigned, its
partitions created and its status reduced (``reducer.reduce_topic``)."""
