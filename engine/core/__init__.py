"""The pure decision core: ``decide`` and the operator commands' semantics. No I/O, no clock:
every input is an argument, every output a value (the shell carries the effects out)."""
