"""The SC <-> SPU control channel, sans-IO: message models, framing and addresses."""

from ha_sc.protocol.address import format_address, parse_address
from ha_sc.protocol.framing import (
    MAX_FRAME_SIZE,
    MessageDecoder,
    ProtocolError,
    encode_message,
    sc_message_decoder,
    spu_message_decoder,
)
from ha_sc.protocol.messages import (
    Delta,
    FullSync,
    LeaderNotice,
    Message,
    NotLeader,
    Refused,
    Register,
    ReplicaReport,
    ReplicaSpec,
    ReplicaStorage,
    ScMessage,
    SpecCursor,
    SpuMessage,
    StatusReport,
    Watch,
)

__all__ = [
    "MAX_FRAME_SIZE",
    "Delta",
    "FullSync",
    "LeaderNotice",
    "Message",
    "MessageDecoder",
    "NotLeader",
    "ProtocolError",
    "Refused",
    "Register",
    "ReplicaReport",
    "ReplicaSpec",
    "ReplicaStorage",
    "ScMessage",
    "SpecCursor",
    "SpuMessage",
    "StatusReport",
    "Watch",
    "encode_message",
    "format_address",
    "parse_address",
    "sc_message_decoder",
    "spu_message_decoder",
]
