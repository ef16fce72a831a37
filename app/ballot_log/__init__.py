"""The public ballot log: one append-only Merkle log per poll (docs/ballot-log.md)."""
