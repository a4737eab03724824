"""What an etcd server allows one request, and the server flags for a store this big.

etcd refuses a transaction of more than ``--max-txn-ops`` operations in one branch (128
by default) and a request of more than ``--max-request-bytes`` (1.5 MiB by default), and
stops taking writes once its database reaches ``--quota-backend-bytes`` (2 GiB by
default; it then raises the NOSPACE alarm until compacted, defragmented and disarmed).
``EtcdKv`` cuts batch writes to fit the first two (the request limit at etcd's default,
which every server allows) and names the limit when etcd still refuses a request;
``MANAGED_SERVER`` is what the launcher's own etcd and the test servers run with, sized
for 100k partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_TXN_OPS = 128
"""etcd's own default for ``--max-txn-ops``: the most compares, or ops in one branch,
a transaction may carry."""
DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024
"""etcd's own default for ``--max-request-bytes``."""
TXN_BYTES_MARGIN = 64 * 1024
"""Room left under the request limit for what a transaction carries besides its keys and
values (the request's framing, each compare's and op's fields)."""
OP_OVERHEAD = 32
"""Bytes an op and its compare add to a transaction besides the key (twice) and value:
field tags, lengths and the compared revision."""

# etcd's own messages for the refusals below (etcdserver/api/v3rpc/rpctypes)
TOO_MANY_OPS = "too many operations in txn request"
TOO_LARGE = "request is too large"
NO_SPACE = "database space exceeded"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """An etcd server's request and storage limits (its command-line flags)."""

    max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    quota_backend_bytes: int = 2 * 1024**3

    def flags(self) -> list[str]:
        """The etcd command-line flags that set these limits."""
        return [
            f"--max-txn-ops={self.max_txn_ops}",
            f"--max-request-bytes={self.max_request_bytes}",
            f"--quota-backend-bytes={self.quota_backend_bytes}",
        ]

    @property
    def txn_bytes(self) -> int:
        """The most key and value bytes (with OP_OVERHEAD per op) a transaction carries."""
        return max(self.max_request_bytes - TXN_BYTES_MARGIN, self.max_request_bytes // 2)


MANAGED_SERVER = ServerLimits(max_txn_ops=1024, quota_backend_bytes=8 * 1024**3)
"""A 100k-partition store filled through the API writes a topic's 1000 partitions (about
300 KB with their keys) as one transaction: one Raft entry and one fsync on etcd's side
instead of eight. Its database holds every revision of every object until compacted, a
few hundred MB, well inside 8 GiB (etcd's recommended ceiling)."""


def refusal(message: str, limits: ServerLimits) -> str | None:
    """What an etcd refusal ``message`` means in this client's terms; None if it is not one
    of the limits above."""
    if TOO_MANY_OPS in message:
        return (
            f"the transaction has more operations than the server's --max-txn-ops allows "
            f"(this client sends at most {limits.max_txn_ops}: set --etcd-max-txn-ops to the "
            "servers' value)"
        )
    if TOO_LARGE in message:
        return (
            f"the request is larger than the server's --max-request-bytes (this client "
            f"keeps a transaction's keys and values under {limits.txn_bytes} bytes, so a "
            "single object this large, or a server limit below etcd's default of 1.5 MiB)"
        )
    if NO_SPACE in message:
        return (
            "etcd's database reached its --quota-backend-bytes and takes no more writes "
            "until compacted, defragmented and the NOSPACE alarm disarmed"
        )
    return None
