"""Algorithm hosts: the processes that run user code (see docs/hosts.md).

`supervisor` is the engine's side (starting, feeding, timing and replacing hosts); `process`
is what runs inside a host; `protocol` is what the two say to each other; `capture` is the
host's per-instance capture of printed and logged output.
"""
