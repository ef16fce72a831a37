"""Live results: snapshots of each poll's counts fanned out to every stream, across workers via Redis."""
