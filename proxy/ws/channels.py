"""The seam between the `/ws` endpoint and whatever serves public market channels.

The `/ws` handler (private streams, control protocol, connection rules) hands every
SUBSCRIPTION of a channel that is not private to the `PublicChannels` found under
`keys.PUBLIC_CHANNELS`, if the app has one: the relay of MEXC's public stream in normal
runs, the tape in replay. Without one, public channels are refused the way MEXC refuses a
channel it does not serve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# receives each binary frame of a channel, byte-identical to what MEXC sent; it must not
# block or raise (a connection queues the frame, bounded, and drops itself when full)
FrameSink = Callable[[bytes], None]


class PublicChannels(Protocol):
    def is_public(self, channel: str) -> bool:
        """Whether `channel` names a public channel MEXC serves (reference 9.3)."""
        ...

    async def subscribe(self, channel: str, sink: FrameSink) -> bool:
        """Start delivering `channel`'s frames to `sink`. N sinks of one channel share one
        upstream subscription. False when the channel could not be subscribed (the local
        client then gets MEXC's refusal)."""
        ...

    def unsubscribe(self, channel: str, sink: FrameSink) -> None:
        """Stop delivering to `sink`; the last sink of a channel ends its upstream
        subscription. Unknown pairs are ignored."""
        ...
