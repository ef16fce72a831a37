"""The shared core: the vote protocol, problem types, settings and keys. It imports nothing else of app/."""
