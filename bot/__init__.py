"""The running bot: configuration, engine, conversation state and the CLI."""
