"""Storage: the database handle, the schema and its migrations. It imports only app.core."""
