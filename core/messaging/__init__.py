"""The message pipeline: templates, response parsing, should-respond and the message service."""
