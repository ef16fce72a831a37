"""The voter's pages. Placeholder until the page lands."""

page_handlers: list = []
