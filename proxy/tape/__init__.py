"""Replay on the tape's own clock (bot CI).

A cassette (recorded with `--record`, or written by hand) is loaded into a `Tape`: the
REST answers it holds, each at its tape time, and the market it describes as one ordered
timeline of steps (a symbol's public trades and book at one tape millisecond) plus stream
frames per channel. In replay:

  clock.py     TapeClock: the market's time (real time, N x real time, or stepped)
  client.py    TapeClient: the upstream, answered from the tape at the clock's time
  feeder.py    TapeFeeder: moves the clock and matches resting orders against every step
               passed, in tape order, whatever the bot's request pattern
  channels.py  TapeChannels: public WebSocket channels served from the tape's frames
  script.py    the hand-written (scripted) cassette format
"""
