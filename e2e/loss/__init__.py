"""The zero-loss proof: votes survive lost networks, lost responses and lost services (issue 4)."""
