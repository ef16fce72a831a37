"""The organiser's pages: create a poll from a form, and manage it with its manage link."""
