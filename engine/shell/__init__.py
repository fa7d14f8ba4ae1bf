"""The shell that drives the core: the clock, the per-canary driver (observe, decide, carry out),
the controller process (watches, leader election, /metrics, alerts, logs)."""
