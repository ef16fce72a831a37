"""The ballot log on the web: its tlog-tiles routes and the voter's /verify page (docs/ballot-log.md)."""
