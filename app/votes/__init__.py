"""The write path: the rules a vote must pass (acceptance.py), then the group commit that makes it
durable and signs its receipt, with its helper processes and SQLite's commit engine."""
