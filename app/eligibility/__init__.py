"""Who may vote, checked at the edge of the vote's path: proof-of-work stamps, invitations, rate limits."""
