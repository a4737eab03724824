"""Where elections live in etcd: one leader key per election under the cluster root."""

DEFAULT_ROOT = "/ha-sc/"


def leader_key(election: str, root: str = DEFAULT_ROOT) -> str:
    """The key whose create revision is the election's epoch while a leader holds it."""
    return f"{root}election/{election}"
