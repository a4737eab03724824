"""Where a replica listens, as advertised through the election to the others."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaAddresses:
    """A replica's public API (clients) and private API (SPUs), each ``host:port``."""

    public: str
    private: str

    def encode(self) -> str:
        """The form carried as the candidate's address in the election."""
        return f"public={self.public};private={self.private}"

    @classmethod
    def decode(cls, text: str) -> ReplicaAddresses:
        """Parse ``encode``'s form; a bare ``host:port`` counts as both."""
        fields = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
        if not fields:
            return cls(text, text)
        return cls(fields.get("public", ""), fields.get("private", ""))
