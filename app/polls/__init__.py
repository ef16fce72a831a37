"""Polls: creating and reading polls, the in-memory poll cache, and results from the counters."""
